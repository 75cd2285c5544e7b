"""The GPU check: what one GPU gives sweep (run by ``benchmarks/gpu_check.sh``).

1. The matmul ceiling, float32 and bfloat16 (TFLOP/s of a large square matmul).
2. One default trial's breakdown (``benchmarks/trial_breakdown.py``, bundled data, spare on).
3. Trials per hour on the bundled data with K = 1, 2, 4 trials per GPU
   (``sweep launch --gpus 0 --trials-per-gpu K``, memory growth).
4. Mixed precision (bfloat16 Dense layers, ``EngineOptions.mixed_bfloat16``) off and on: seconds
   and the validation metrics of the same trial side by side.

``--cpu-smoke`` runs the same steps on the CPU at toy sizes (CPU workers instead of
``--gpus``), to prove the script end to end where no GPU is; its block is marked as such. Writes
the ``gpu_check`` block (``gpu_check/cpu-smoke`` for the smoke run) of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TINY = REPO / "search_spaces" / "tiny.yaml"


def matmul_ceiling(size: int, repeats: int) -> dict[str, float]:
    """TFLOP/s of ``size`` x ``size`` matmuls, float32 and bfloat16, on the default device."""
    import tensorflow as tf

    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.uniform((size, size), dtype=tf.float32)
        a = tf.cast(a, dtype)

        @tf.function
        def chain(x: Any, b: Any) -> Any:
            for _ in range(repeats):
                x = tf.matmul(x, b) / size
            return x

        chain(a, a).numpy()  # trace and warm up
        started = time.perf_counter()
        chain(a, a).numpy()
        seconds = time.perf_counter() - started
        out[dtype.name] = 2 * size**3 * repeats / seconds / 1e12
    return out


def mixed_precision(data: str | None, epochs: int, smoke: bool) -> list[dict[str, Any]]:
    """The same trial with bfloat16 Dense layers off and on: seconds and validation metrics."""
    code = (
        "import json, sys\n"
        "from sweep.params import TrialParams\n"
        "from sweep.train.engine import EngineOptions, run_trial\n"
        "from sweep.train.data import load_dataset, BUNDLED_DATA\n"
        "args = json.loads(sys.argv[1])\n"
        "params = TrialParams(**args['params'])\n"
        "data = load_dataset(args['data'] or BUNDLED_DATA)\n"
        "r = run_trial(params, data, options=EngineOptions(mixed_bfloat16=args['bf16']))\n"
        "print('RESULT', json.dumps({'seconds': r.seconds, 'training': r.timing['training'],"
        " 'metrics': r.metrics}))\n"
    )
    params: dict[str, Any] = {"epochs": epochs}
    if smoke:
        params.update(encoder_units=[32, 16], coding_size=4)
    rows = []
    for bf16 in (False, True):
        argument = json.dumps({"params": params, "data": data, "bf16": bf16})
        out = subprocess.run(
            [sys.executable, "-c", code, argument], capture_output=True, text=True, check=True
        )
        line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
        rows.append({"bf16": bf16, **json.loads(line.split(" ", 1)[1])})
    return rows


def trials_per_hour(
    tmp: Path, k: int, trials: int, epochs: int, smoke: bool, data: str | None
) -> dict[str, Any]:
    """``sweep launch`` with K trials per GPU (CPU workers when ``smoke``); trials per hour."""
    import optuna

    url = f"sqlite:///{tmp / f'k{k}.db'}"
    command = [
        sys.executable, "-m", "sweep", "-q", "launch", "--study", f"k{k}", "--n-trials",
        str(trials), "--set", f"epochs={epochs}", "--storage", url, "--baseline", "none",
        "--max-seeds", "1",
    ]  # fmt: skip
    command += ["--workers", str(k)] if smoke else ["--gpus", "0", "--trials-per-gpu", str(k)]
    if smoke:
        command += ["--space", str(TINY)]
    if data:
        command += ["--data", data]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - started
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=f"k{k}", storage=url)
    done = sorted(
        t.datetime_complete.timestamp()
        for t in study.trials
        if t.state.name in ("COMPLETE", "PRUNED")
    )
    steady = None
    if len(done) > k:
        steady = 3600 * (len(done) - k) / max(done[-1] - done[k - 1], 1e-9)
    ks = {t.user_attrs.get("trials_per_gpu") for t in study.trials}
    return {"k": k, "trials": len(done), "whole": 3600 * len(done) / wall, "steady": steady,
            "recorded_k": sorted(map(str, ks))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU")
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    smoke = args.cpu_smoke
    block = "gpu_check/cpu-smoke" if smoke else "gpu_check"
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    load = _records.LoadMonitor()
    load.__enter__()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-gpu-check-"))
    data: str | None = None
    if smoke:
        from sweep.train.synth import write_synthetic

        data = str(write_synthetic(tmp / "synthetic.npz", 240, seed=0))

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {name}", flush=True)

    step("matmul ceiling")
    ceiling = matmul_ceiling(256 if smoke else 8192, 2 if smoke else 20)
    step("one default trial's breakdown")
    breakdown = [
        sys.executable, str(HERE / "trial_breakdown.py"), "--trials", "3" if smoke else "4",
        "--bundled-only", "--block", f"{block}/breakdown", "--results", str(args.results),
    ]  # fmt: skip
    if smoke:
        breakdown += ["--quick", "--epochs", "2", "--tiny"]
    if args.no_write:
        breakdown.append("--no-write")
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_TEST_POSTGRES_URL"}
    subprocess.run(breakdown, check=True, env=env)
    rates = []
    for k in (1, 2, 4):
        step(f"trials per hour, K = {k}")
        trials = 2 * k if smoke else 4 * k + k
        rates.append(trials_per_hour(tmp, k, trials, 1 if smoke else 10, smoke, data))
    step("mixed precision off / on")
    mixed = mixed_precision(data, 1 if smoke else 10, smoke)
    load.__exit__(None, None, None)
    step("done")
    command = " ".join(["benchmarks/gpu_check.sh", *_records.script_argv()])
    what = "GPU check" + (" (CPU smoke run: toy sizes, no GPU; not GPU figures)" if smoke else "")
    lines = [
        f"## {what}",
        "",
        _records.provenance(
            command, load, started=started_at, seconds=time.perf_counter() - started
        ),
        f"Matmul ceiling: float32 {ceiling['float32']:.2f} TFLOP/s, bfloat16 "
        f"{ceiling['bfloat16']:.2f} TFLOP/s. The default trial's breakdown is the block "
        f"`{block}/breakdown`.",
        "",
        "| trials per GPU (K) | trials | whole run (trials/h) | steady state (trials/h) | "
        "recorded K |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rates:
        steady = f"{r['steady']:.0f}" if r["steady"] else "-"
        label = f"{r['k']} CPU workers" if smoke else str(r["k"])
        lines.append(
            f"| {label} | {r['trials']} | {r['whole']:.0f} | {steady} | "
            f"{', '.join(r['recorded_k'])} |"
        )
    keys = ("expression_hidden.auroc", "expression.auroc", "sections.mean_auprc_lift")
    lines += [
        "",
        "| mixed precision | trial seconds | training seconds | " + " | ".join(keys) + " |",
        "| --- | --- | --- |" + " --- |" * len(keys),
    ]
    for row in mixed:
        values = " | ".join(
            f"{row['metrics'][k]:.4f}" if row["metrics"].get(k) is not None else "-" for k in keys
        )
        lines.append(
            f"| {'bfloat16' if row['bf16'] else 'float32'} | {row['seconds']:.1f} | "
            f"{row['training']:.1f} | {values} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        _records.write_block(block, text, args.results)
        print(f"wrote block {block!r} of {args.results}")


if __name__ == "__main__":
    main()
