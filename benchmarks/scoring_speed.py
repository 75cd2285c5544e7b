"""Benchmark: what scoring a trial costs, through full reconstructions and through the label head.

Run by hand, not a test::

    .venv/bin/python benchmarks/scoring_speed.py [--rows 120,2000,6000] [--repeat 5] [--no-append]

Every trial is scored after training, and (for the pruner) after each epoch:

* **a split** (validation or test): the reconstruction, the codes and the label-hidden probe.
  Generic path (what the engine ran before, and still runs for a model it cannot read):
  :func:`sweep.train.metrics.reconstruction_and_probe` (two full decoder passes, the label bit
  at 0 and at 1) and ``encode``. Label-head path: ``VAE.scoring_outputs``, one pass in which the
  first encoder layer's product is shared by the row and both bits and only the row's own
  input is decoded in full.
* **the threshold** on the training rows: the probe alone. Generic:
  :func:`sweep.train.metrics.symmetric_label_probe` (two full passes). Label head:
  ``VAE.label_outputs`` (one shared first-layer product, the label's output column only).

Both paths run on the same model (the notes' defaults, 12,001 columns, float32, as a trial
builds it) and the same synthetic rows (:func:`sweep.train.synth.synthesize`, the notes'
densities); the time is the median of ``--repeat`` calls after one warm-up call each. The
largest absolute difference between the two paths' probes is printed beside the times (the
paths differ only in floating-point summation order). Writes the ``scoring_speed`` block of
``benchmarks/RESULTS.md`` unless ``--no-append``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import _records  # benchmarks/, beside this script

BLOCK = "scoring_speed"
SECTION = "## Scoring a trial: full reconstructions against the label head"


def median_seconds(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median wall time of ``repeat`` calls after one warm-up, and the last result."""
    result = call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(rows: int, repeat: int) -> dict[str, float]:
    import numpy as np

    from sweep.params import TrialParams
    from sweep.train.metrics import label_hidden_probe
    from sweep.train.metrics import reconstruction_and_probe
    from sweep.train.metrics import symmetric_label_probe
    from sweep.train.plan import build_vae
    from sweep.train.synth import synthesize

    x = synthesize(rows, seed=1)
    label = x.shape[1] - 1
    vae = build_vae(TrialParams(), x.shape[1], jit_compile=False)
    assert vae.decodes_label_alone

    def split_generic() -> Any:
        probs, probe = reconstruction_and_probe(vae.reconstruct, x, label)
        return probs, probe, vae.encode(x)

    def split_head() -> Any:
        probs, z_mean, z_log_var, off, on = vae.scoring_outputs(x)
        return probs, label_hidden_probe(off, on), (z_mean, z_log_var)

    split_old, (_, probe_old, _) = median_seconds(split_generic, repeat)
    split_new, (_, probe_new, _) = median_seconds(split_head, repeat)
    threshold_old, threshold_probe_old = median_seconds(
        lambda: symmetric_label_probe(vae.reconstruct, x, label), repeat
    )
    threshold_new, threshold_probe_new = median_seconds(
        lambda: label_hidden_probe(*vae.label_outputs(x)), repeat
    )
    return {
        "split_old": split_old,
        "split_new": split_new,
        "threshold_old": threshold_old,
        "threshold_new": threshold_new,
        "probe_diff": float(
            max(
                np.abs(probe_old - probe_new).max(),
                np.abs(threshold_probe_old - threshold_probe_new).max(),
            )
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="120,2000,6000", help="comma-separated row counts")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    try:
        counts = [int(v) for v in args.rows.split(",")]
    except ValueError:
        parser.error(f"--rows: expected comma-separated integers, got {args.rows!r}")
    if not counts or min(counts) < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started_at = datetime.datetime.now().astimezone()
    t0 = time.perf_counter()
    results = []
    with _records.LoadMonitor() as load:
        for rows in counts:
            result = measure(rows, args.repeat)
            results.append((rows, result))
            print(rows, result, file=sys.stderr)
    lines = [
        "| rows | a split: full passes | a split: label head | speed-up | threshold: full "
        "passes | threshold: label head | speed-up | largest probe difference |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows, r in results:
        lines.append(
            f"| {rows} | {r['split_old']:.3f} s | {r['split_new']:.3f} s "
            f"| {r['split_old'] / r['split_new']:.2f}x | {r['threshold_old']:.3f} s "
            f"| {r['threshold_new']:.3f} s | {r['threshold_old'] / r['threshold_new']:.2f}x "
            f"| {r['probe_diff']:.1e} |"
        )
    text = (
        f"{SECTION}\n\n"
        + _records.provenance(
            _records.command_line("scoring_speed.py", sys.argv[1:]),
            load,
            started=started_at,
            seconds=time.perf_counter() - t0,
        )
        + "\nThe notes' default model (float32, 12,001 columns, untrained: the cost does not "
        "depend on the weights) on synthetic rows with the notes' densities; median of "
        f"{args.repeat} calls after a warm-up. *A split*: reconstruction, codes and label-hidden "
        "probe (validation or test, and the pruner's per-epoch scoring without the codes); "
        "full passes = two decoder passes and an encoder pass, label head = "
        "`VAE.scoring_outputs`. *Threshold*: the probe alone on the training rows; full passes "
        "= two decoder passes, label head = `VAE.label_outputs`. The probe difference is the "
        "largest absolute difference between the two paths' probes (rounded to 1e-6).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print(text)
    if not args.no_append:
        _records.write_block(BLOCK, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
