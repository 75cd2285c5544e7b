"""Seconds per training epoch of the notes' VAE: the notes' way versus the trial engine.

Variants, each in its own Python process (thread settings and dtype policies are per process):

* ``a-notes``: the researcher's way. ``sweep.train.plan.build_vae`` (the same architecture
  and custom ``train_step`` as the Keras VAE example, Keras' own Adam, no XLA) fed
  ``X_train.astype("float32")`` numpy arrays to ``model.fit(batch_size=32, shuffle=True)``, with
  float32 numpy validation data.
* ``b-*``: ``sweep.train.engine.run_trial`` on the same data (uint8 rows through ``tf.data``,
  cast per batch) with one :class:`sweep.train.engine.EngineOptions` change each; ``b-default``
  is the
  engine's defaults.

Every variant trains ``--warmup`` + ``--epochs`` epochs from the same seed (0) and is scored on the
same validation split with the engine's scoring; s/epoch is the mean wall time of the epochs
after the warm-up, validation pass included. The matmul ceiling is a 4096^3 float32
``tf.matmul`` in a ``tf.function``; the achieved rate counts 6 x batch x (Dense kernel weights)
FLOPs per training step.

``b-xla`` is left out of the default list: on the 2-core CPU it ran about 5x slower than the
defaults (name it in ``--variants`` to measure it).

Usage: ``.venv/bin/python benchmarks/trial_speed.py [--rows 10000] [--epochs 1] [--warmup 1]
[--variants a-notes,b-default] [--write benchmarks/RESULTS.md]``. The default run writes the
``trial_speed`` block of RESULTS.md; a run with other arguments writes its own block, keyed by
those arguments (:func:`block_key`), so a repeat never replaces the main table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import _records  # noqa: E402  (benchmarks/, beside this script)

VARIANTS: dict[str, dict[str, Any]] = {
    "a-notes": {},
    "b-plain": {"fused_adam": False},
    "b-default": {},
    "b-threads": {"intra_op_threads": 2, "inter_op_threads": 1},
    "b-xla": {"jit_compile": True},
    "b-sparse": {"sparse_input": True},
    "b-bf16": {"mixed_bfloat16": True},
    "b-spe8": {"steps_per_execution": 8},
}
DESCRIPTIONS = {
    "a-notes": "(a) notes: float32 numpy into fit, Keras Adam",
    "b-plain": "(b) engine, uint8 tf.data, Keras Adam (before this work)",
    "b-default": "(b) engine defaults: uint8 tf.data + FusedAdam",
    "b-threads": "(b) defaults + intra_op=2, inter_op=1",
    "b-xla": "(b) defaults + jit_compile=True (XLA)",
    "b-sparse": "(b) defaults + sparse first layer",
    "b-bf16": "(b) defaults + mixed_bfloat16",
    "b-spe8": "(b) defaults + steps_per_execution=8",
}
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v != "b-xla")
SECTION = "## Trial speed"
BLOCK = "trial_speed"
DEFAULTS = {"rows": 10_000, "epochs": 1, "warmup": 1, "variants": ",".join(DEFAULT_VARIANTS)}


def variant_args(args: argparse.Namespace) -> str:
    """The arguments that differ from the defaults, e.g. ``--epochs 2 --variants a,b``."""
    parts = []
    for name, default in DEFAULTS.items():
        value = getattr(args, name)
        if name == "variants":
            value = ",".join(v.strip() for v in str(value).split(",") if v.strip())
        if value != default:
            parts.append(f"--{name} {value}")
    return " ".join(parts)


def block_key(args: argparse.Namespace) -> str:
    """``trial_speed`` for the default run; ``trial_speed/<changed arguments>`` for a variant,
    which gets its own block in RESULTS.md (rerunning it replaces only that block)."""
    changed = variant_args(args)
    return f"{BLOCK}/{changed}" if changed else BLOCK


def dense_kernel_weights(n_features: int) -> int:
    """Weights in the Dense kernels of the notes' VAE (``TrialParams()`` defaults)."""
    from sweep.params import TrialParams

    p = TrialParams()
    enc = [n_features, *p.encoder_units]
    total = sum(a * b for a, b in zip(enc, enc[1:], strict=False))
    total += 2 * p.encoder_units[-1] * p.coding_size
    dec = [p.coding_size, *p.resolved_decoder_units, n_features]
    total += sum(a * b for a, b in zip(dec, dec[1:], strict=False))
    return total


def child(variant: str, data_path: str, epochs: int, warmup: int) -> dict[str, Any]:
    """Train one variant in this process and return its timings and validation metrics."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sweep.params import TrialParams
    from sweep.train.data import load_dataset
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import run_trial

    data = load_dataset(data_path)
    params = TrialParams(epochs=warmup + epochs)
    stamps: list[float] = []
    load = os.getloadavg()[0]
    if variant == "a-notes":
        metrics = _notes_way(params, data, stamps)
    else:
        options = EngineOptions(**VARIANTS[variant])
        started = time.perf_counter()
        stamps.append(started)
        result = run_trial(
            params, data, options=options, on_epoch=lambda e, v: stamps.append(time.perf_counter())
        )
        metrics = result.metrics
    epoch_seconds = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    timed = epoch_seconds[warmup:]
    return {
        "variant": variant,
        "epoch_seconds": epoch_seconds,
        "s_per_epoch": sum(timed) / len(timed),
        "steps_per_epoch": math.ceil(data.train.shape[0] / params.batch_size),
        "auroc": metrics.get("expression.auroc"),
        "output_mse": metrics.get("sections.mean_output_mse"),
        "loadavg": [load, os.getloadavg()[0]],
    }


def _notes_way(params: Any, data: Any, stamps: list[float]) -> dict[str, Any]:
    """Train as the notes do: float32 numpy arrays into ``model.fit``; score like the engine."""
    import keras

    from sweep.train.engine import hidden_threshold
    from sweep.train.engine import score_split
    from sweep.train.plan import build_vae

    keras.backend.clear_session()
    model = build_vae(params, data.n_features, jit_compile=False, fused_adam=False)
    x_train = data.train.astype("float32")
    x_val = data.val.astype("float32")

    class Stamp(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6, verbose=0
    )
    stamps.append(time.perf_counter())
    model.fit(
        x_train,
        validation_data=(x_val,),
        epochs=params.epochs,
        batch_size=params.batch_size,
        shuffle=True,
        callbacks=[plateau, Stamp()],
        verbose=0,
    )
    threshold = hidden_threshold(model, data)
    return score_split(model, data, data.val, threshold, "validation").metrics


def matmul_ceiling(n: int = 4096, reps: int = 5) -> dict[str, float]:
    """Best and median GFLOP/s of an ``n x n @ n x n`` float32 matmul in TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=0)
    b = tf.random.normal((n, n), seed=1)
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    fn().numpy()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn().numpy()
        times.append(time.perf_counter() - t)
    times.sort()
    flops = 2.0 * n**3
    return {"best_gflops": flops / times[0] / 1e9, "median_gflops": flops / times[reps // 2] / 1e9}


def _run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_flags() -> str:
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx512f", "avx512_bf16", "amx_bf16")
    return " ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)


def render(
    rows: list[dict[str, Any]],
    ceiling: dict[str, float],
    args: argparse.Namespace,
    kernel_weights: int,
    seconds: float,
    load: _records.LoadMonitor | None,
) -> str:
    """The markdown block for RESULTS.md (a ``###`` subsection for a non-default run)."""
    base = next((r for r in rows if r["variant"] == "a-notes" and "error" not in r), None)
    chosen = ",".join(r["variant"] for r in rows)
    variants = "" if chosen == ",".join(DEFAULT_VARIANTS) else f" --variants {chosen}"
    changed = variant_args(args)
    heading = f"### Trial speed, variant: {changed}" if changed else SECTION
    command = (
        f".venv/bin/python benchmarks/trial_speed.py --rows {args.rows} "
        f"--epochs {args.epochs} --warmup {args.warmup}{variants} --write benchmarks/RESULTS.md"
    )
    lines = [
        heading,
        "",
        _records.provenance(
            command, load, seconds=seconds, extra_versions={"CPU flags": _cpu_flags()}
        ),
        f"{args.rows} synthetic rows (`sweep.train.synth`, 12001 columns, seed 0), 80/20 split; "
        "notes' "
        f"model (`TrialParams()`: 1280-1024-768-512, coding 300, focal, Adam 1e-3), batch 32. "
        f"Each variant: {args.warmup} warm-up epoch(s), then the mean of {args.epochs} timed "
        "epoch(s) (validation pass included); validation metrics after all "
        f"{args.warmup + args.epochs} epochs, seed 0. loadavg = 1-min load average before/after "
        "each variant.",
        "",
        "| variant | s/epoch | speed-up vs (a) | GFLOP/s | val AUROC | val output MSE | loadavg |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = DESCRIPTIONS[r["variant"]]
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} | | | | | |")
            continue
        flops = 6.0 * 32 * kernel_weights * r["steps_per_epoch"]
        gflops = flops / r["s_per_epoch"] / 1e9
        speed = f"{base['s_per_epoch'] / r['s_per_epoch']:.2f}x" if base else "n/a"
        lines.append(
            f"| {name} | {r['s_per_epoch']:.1f} | {speed} | {gflops:.0f} | "
            f"{_fmt(r['auroc'], 4)} | {_fmt(r['output_mse'], 5)} | "
            f"{r['loadavg'][0]:.1f}/{r['loadavg'][1]:.1f} |"
        )
    best = ceiling["best_gflops"]
    lines += [
        "",
        f"Matmul ceiling (4096^3 float32 `tf.matmul`, best of 5): {best:.0f} GFLOP/s "
        f"(median {ceiling['median_gflops']:.0f}). Model FLOPs per step: 6 x 32 x "
        f"{kernel_weights / 1e6:.1f}M Dense weights = {6 * 32 * kernel_weights / 1e9:.2f} GFLOP.",
    ]
    default = next((r for r in rows if r["variant"] == "b-default" and "error" not in r), None)
    if default:
        flops = 6.0 * 32 * kernel_weights * default["steps_per_epoch"]
        achieved = flops / default["s_per_epoch"] / 1e9
        lines.append(
            f"Engine defaults achieve {achieved:.0f} GFLOP/s = {100 * achieved / best:.0f}% of "
            "the ceiling."
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--write", type=Path, default=None, help="RESULTS.md to update")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ceiling:
        print(json.dumps(matmul_ceiling()))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.data, args.epochs, args.warmup)))
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    from sweep.train.synth import write_synthetic

    started = time.perf_counter()
    load = _records.LoadMonitor()
    with load, tempfile.TemporaryDirectory() as tmp:
        path = write_synthetic(Path(tmp) / "synthetic.npz", args.rows, seed=0)
        ceiling = _run_child(["--ceiling"])
        if "error" in ceiling:
            ceiling = {"best_gflops": float("nan"), "median_gflops": float("nan")}
        print(f"matmul ceiling: {ceiling}", flush=True)
        rows = []
        for name in names:
            common = ["--data", str(path), "--epochs", str(args.epochs)]
            result = _run_child(["--child", name, *common, "--warmup", str(args.warmup)])
            result.setdefault("variant", name)
            print(json.dumps(result), flush=True)
            rows.append(result)
    section = render(
        rows, ceiling, args, dense_kernel_weights(12001), time.perf_counter() - started, load
    )
    print(section)
    if args.write is not None:
        _records.write_block(block_key(args), section, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
