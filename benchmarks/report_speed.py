"""Benchmark: ``sweep report`` on a study of 200 finished trials, figures included, written both
ways: a folder (``index.html`` + ``figures/``) and one self-contained ``.html`` file.

Run by hand, not a test::

    .venv/bin/python benchmarks/report_speed.py               # 200 trials, SQLite
    .venv/bin/python benchmarks/report_speed.py --trials 50 --no-append

The study is made cheaply, without training: ``sweep launch --no-run`` creates a real sweep study
of the notes' space on the bundled data, then ``--trials`` finished trials are added through
Optuna (``Study.add_trials``) with parameters the space suggests (a seeded random sampler) and
the attributes a worker writes, at realistic sizes: every metric of the notes' layout, a
10-epoch history, the objective per epoch as the pruner gets it (Optuna intermediate values),
diagnostics over the trial's latent dimensions and a figure sample of 256 rows
(:mod:`sweep.figure_data`); about 1 in 10 trials is PRUNED (after 5 epochs) or FAIL, and
high-beta trials collapse. The metrics follow the parameters (KL falls and distortion rises
with beta), so the rate-distortion and collapse figures have shape. Then ``sweep report`` runs
as a fresh process (interpreter start-up included), ``--repeat`` times per output (the folder,
then ``--out report.html``); each median wall time is compared with the goal (30 s) and, unless
``--no-append``, written as the ``report_speed`` block of ``benchmarks/RESULTS.md``
(:mod:`_records`).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "report_speed"
SECTION = "## sweep report on a 200-trial study"
GOAL_S = 30.0
STUDY = "bench-report"


def make_study(url: str, trials: int, seed: int) -> None:
    """A sweep study of the notes' space with ``trials`` finished trials (no training)."""
    import numpy as np
    import optuna

    from sweep import figure_data
    from sweep.config import HEADLINE_ATTRS
    from sweep.names import metric_names
    from sweep.store.rdb import open_storage
    from sweep.store.study import load_config

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("SWEEP_STUDY", None)
    subprocess.run(
        [sys.executable, "-m", "sweep", "launch", "--space", "notes", "--study", STUDY,
         "--n-trials", str(trials), "--baseline", "none", "--no-run", "--storage", url],
        check=True, env=env, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    config = load_config(storage, STUDY)
    space = config.search_space
    sections = [(s["name"], s["start"], s["stop"]) for s in _sections(config.data_summary)]
    names = metric_names([name for name, _, _ in sections])
    rng = np.random.default_rng(seed)
    sample = _figure_sample(rng, sections)
    scratch = optuna.create_study(
        directions=space.directions, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    frozen = []
    for number in range(trials):
        trial = scratch.ask()
        params = space.suggest(trial)
        beta = params.kl_beta
        collapse = float(np.clip((math.log10(beta) + 3.0) / 1.2, 0.0, 1.0))  # 1: beta ~ 1e-2
        active = int(round(params.coding_size * (1.0 - 0.95 * collapse) * rng.uniform(0.3, 0.6)))
        kl = float(40.0 * (1.0 - collapse) + rng.gamma(2.0, 1.0))
        mse = float(0.030 + 0.012 * collapse + rng.normal(0, 0.002))
        auroc = float(np.clip(0.82 - 0.2 * collapse + rng.normal(0, 0.03), 0.4, 0.95))
        metrics: dict[str, Any] = {key: float(rng.uniform(0, 1)) for key in names}
        metrics.update(
            {
                "expression_hidden.auroc": auroc,
                "latent.kl_mean": kl,
                "latent.active_units": active,
                "sections.mean_output_mse": mse,
                "sections.mean_auprc_lift": float(rng.uniform(1.0, 6.0) * (1.0 - collapse)),
            }
        )
        flags = []
        for name, _, _ in sections[:-1]:
            zero = collapse > 0.8 and rng.uniform() < 0.5
            rate = 0.0 if zero else float(rng.uniform(0, 0.05))
            metrics[f"section.{name}.predicted_rate"] = rate
            metrics[f"section.{name}.actual_rate"] = 0.04
            if zero:
                flags.append(f"section {name} predicted all zeros (actual rate 0.04)")
        metrics["collapse.any"] = int(bool(flags))
        metrics["collapse.n_flags"] = len(flags)
        epochs = 10
        curve = np.linspace(1.0, 0.3, epochs) + rng.normal(0, 0.01, epochs)
        history = {
            key: [float(v) for v in curve * scale]
            for key, scale in (
                ("loss", 0.2), ("reconstruction_loss", 0.18), ("kl_loss", 30.0),
                ("val_loss", 0.21), ("val_reconstruction_loss", 0.19), ("val_kl_loss", 31.0),
            )
        }  # fmt: skip
        kl_dims = rng.gamma(1.0, 0.2, params.coding_size)
        diagnostics = {
            "kl_per_dim": [float(v) for v in kl_dims],
            "latent_variance": [float(v) for v in kl_dims / 5],
            "latent_normality": {"active": [bool(v > 0.05) for v in kl_dims / 5]},
            "flags": flags,
        }
        attrs: dict[str, Any] = {
            "params_full": params.to_dict(),
            "metrics": metrics,
            "history": history,
            "diagnostics": diagnostics,
            "flags": flags,
            "seconds": float(rng.uniform(60, 600)),
            "train_seconds": float(rng.uniform(50, 550)),
            "elbo_beta": beta * 12001,
            "epochs_run": epochs,
            "worker": f"bench:{number % 4}",
            figure_data.ATTR: sample,
        }
        attrs.update({a: metrics[m] for a, m in HEADLINE_ATTRS.items() if m in metrics})
        state = optuna.trial.TrialState.COMPLETE
        values: list[float] | None = [auroc]
        rising = auroc - 0.15 * np.exp(-np.arange(epochs) / 3.0) + rng.normal(0, 0.005, epochs)
        reported = {e: float(v) for e, v in enumerate(rising)}
        reported[epochs - 1] = auroc
        if number % 10 == 7:
            state, values = optuna.trial.TrialState.PRUNED, None
            reported = {e: v for e, v in reported.items() if e < epochs // 2}
        elif number % 20 == 3:
            state, values = optuna.trial.TrialState.FAIL, None
            attrs = {"params_full": params.to_dict(), "fail_reason": "non-finite kl_loss"}
            reported = {}
        frozen.append(
            optuna.trial.create_trial(
                state=state,
                values=values,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=attrs,
                intermediate_values=reported,
            )
        )
        scratch.tell(trial, auroc)
    optuna.load_study(study_name=STUDY, storage=storage).add_trials(frozen)


def _sections(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: s[k] for k in ("name", "start", "stop")} for s in summary["sections"]]


def _figure_sample(rng: Any, sections: list[tuple[str, int, int]]) -> dict[str, Any]:
    import numpy as np

    from sweep import figure_data

    width = sections[-1][2]
    x = (rng.uniform(size=(figure_data.SAMPLE_ROWS, width)) < 0.04).astype(np.uint8)
    probs = np.clip(x * 0.3 + rng.uniform(0, 0.1, x.shape), 0, 1).astype(np.float32)
    z = rng.normal(size=(len(x), 300)).astype(np.float32)
    return figure_data.build(x, probs, z, z * 0 - 1.0, sections, z.var(axis=0))


def time_report(url: str, out: Path) -> float:
    env = {**os.environ, "SWEEP_STORAGE": url, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sweep", "report", STUDY, "--out", str(out), "--force"],
        check=True, env=env, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="runs of sweep report (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else argv
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    load = _records.LoadMonitor()
    load.__enter__()
    workdir = Path(tempfile.mkdtemp(prefix="sweep_report_bench_"))
    try:
        url = f"sqlite:///{workdir / 'bench.db'}"
        t0 = time.perf_counter()
        make_study(url, args.trials, args.seed)
        setup_s = time.perf_counter() - t0
        rows = []
        for label, out in (("folder", workdir / "report"), ("one file", workdir / "report.html")):
            walls = [time_report(url, out) for _ in range(args.repeat)]
            if out.is_dir():
                pngs = len(list((out / "figures").glob("*.png")))
                page = (out / "index.html").read_text(encoding="utf-8")
            else:
                page = out.read_text(encoding="utf-8")
                pngs = page.count('src="data:image/png;base64,')
                beside = sorted(p.name for p in workdir.iterdir() if p.name.startswith("report"))
                assert beside == ["report", "report.html"], beside  # nothing but the file
            size_kb = len(page.encode("utf-8")) / 1024
            rows.append((label, statistics.median(walls), pngs, size_kb))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load.__exit__(None, None, None)
    text = "\n".join(
        [
            SECTION,
            "",
            _records.provenance(
                _records.command_line("report_speed.py", argv_used),
                load,
                started=started_at,
                seconds=time.perf_counter() - started,
            ),
            f"A SQLite study of the notes' space with {args.trials} finished trials written "
            f"through Optuna without training ({setup_s:.0f} s to build), then `sweep report` "
            f"as a fresh process, {args.repeat} run(s) per output, median wall time (interpreter "
            "start-up, every query and every figure included). Folder: `--out report` "
            "(index.html + figures/*.png); one file: `--out report.html` (every figure inline "
            "as a base64 data URI).",
            "",
            "| --out | trials | wall (s) | goal (s) | figures | page (kB) | within goal |",
            "|---|---:|---:|---:|---:|---:|---|",
            *(
                f"| {label} | {args.trials} | {wall:.1f} | {GOAL_S:.0f} | {pngs} | "
                f"{size_kb:.0f} | {'yes' if wall < GOAL_S else 'NO'} |"
                for label, wall, pngs, size_kb in rows
            ),
            "",
        ]
    )
    print(text)
    if not args.no_append:
        _records.write_block(BLOCK, text, _records.RESULTS)
        print(f"wrote block {BLOCK!r} of {_records.RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
