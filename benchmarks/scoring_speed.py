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
* **the metrics** of a split from those outputs (:func:`sweep.train.metrics.evaluate`), and
  within them the average precision over every cell of one mark section:
  :func:`sweep.train.metrics.cell_average_precision` against scikit-learn's
  ``average_precision_score`` (which it must equal to the bit; checked here too).

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
    from sklearn.metrics import average_precision_score

    from sweep.train.metrics import cell_average_precision
    from sweep.train.metrics import evaluate

    sections = _sections(x.shape[1])
    probs, z_mean, z_log_var, off, on = vae.scoring_outputs(x)
    hidden = label_hidden_probe(off, on)
    metrics_s, _ = median_seconds(
        lambda: evaluate(x, probs, hidden, z_mean, z_log_var, sections), repeat
    )
    cells, scores = x[:, : sections[0].stop], probs[:, : sections[0].stop]
    auprc_ours, ours = median_seconds(lambda: cell_average_precision(cells, scores), repeat)
    auprc_sklearn, reference = median_seconds(
        lambda: average_precision_score(cells.ravel(), scores.ravel().astype(np.float64)), repeat
    )
    if ours != reference:
        raise SystemExit(f"cell_average_precision {ours!r} != scikit-learn's {reference!r}")
    return {
        "metrics": metrics_s,
        "cells": float(cells.size),
        "auprc_ours": auprc_ours,
        "auprc_sklearn": auprc_sklearn,
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


def _sections(width: int) -> list[Any]:
    """The notes' layout: three mark sections of equal width, then the label."""
    from sweep.train.data import Section

    mark = (width - 1) // 3
    names = ("DNA_methylation", "H3K9me3", "H3K27me3")
    marks = [Section(name, i * mark, (i + 1) * mark) for i, name in enumerate(names)]
    return [*marks, Section("expressed", width - 1, width)]


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
    metric_lines = [
        "| rows | `evaluate` (all metrics of a split) | one section's cell AUPRC: ours "
        "| scikit-learn's | speed-up | cells |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rows, r in results:
        metric_lines.append(
            f"| {rows} | {r['metrics']:.3f} s | {r['auprc_ours']:.3f} s "
            f"| {r['auprc_sklearn']:.3f} s | {r['auprc_sklearn'] / r['auprc_ours']:.2f}x "
            f"| {int(r['cells']):,} |"
        )
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
        + "\n\nThe metrics of a split from the label head's outputs (`evaluate`), and the "
        "average precision over every cell of the first mark section, ours against "
        "scikit-learn's (equal to the bit, checked on every run):\n\n"
        + "\n".join(metric_lines)
        + "\n"
    )
    print(text)
    if not args.no_append:
        _records.write_block(BLOCK, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
