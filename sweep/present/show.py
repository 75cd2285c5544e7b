"""``sweep show NAME N``: one trial's full table, flags and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweep.present.plotting import make_out_dir
from sweep.present.plotting import prepare_out_dir


def show_trial(
    url: str, name: str, number: int, out: str | Path | None = None, *, force: bool = False
) -> str:
    """Write trial ``number``'s figures into ``out`` and return its text.

    The text is the notes' table for the trial, its state, flags, every parameter (fixed ones
    included), the failure or pruning reason if any, and the figures written (or why some were
    not). Everything is read before anything is written.

    Args:
        url: Storage URL.
        name: Study name.
        number: Trial number.
        out: The folder for the figures; ``None``: ``./NAME-trial-N``.
        force: Write into a non-empty folder.

    Raises:
        UsageError: no such trial; ``out`` is a file, or a non-empty folder without ``force``.
        StudyNotFoundError: no study of that name.
        StorageError: the database cannot be reached or used.
    """
    from sweep.present.formatting import render
    from sweep.store.read import study_status
    from sweep.store.read import trial_by_number

    target = prepare_out_dir(out if out is not None else f"{name}-trial-{number}", force)
    trial = trial_by_number(url, name, number)
    objectives = study_status(url, name)["objectives"]

    from sweep.present.trial_figures import write_trial_figures

    make_out_dir(target)
    figures, notes = write_trial_figures(trial, target)

    lines = [f"study {name}, trial #{number}: {trial['state']}" + _baseline(trial)]
    for key in ("fail_reason",):
        if trial.get(key):
            lines.append(f"fail reason: {trial[key]}")
    prune = (trial.get("user_attrs") or {}).get("prune_reason")
    if prune:
        lines.append(f"prune reason: {prune}")
    lines.append("")
    lines.append(render([trial], "table", kind="best", objectives=objectives).rstrip("\n"))
    lines.append("")
    flags = trial.get("flags") or []
    lines.append("flags: " + ("none" if not flags else ""))
    lines += [f"  - {flag}" for flag in flags]
    lines.append("parameters (searched and fixed):")
    params: dict[str, Any] = trial.get("params_full") or trial.get("params") or {}
    width = max((len(k) for k in params), default=0)
    lines += [f"  {k.ljust(width)}  {json.dumps(v)}" for k, v in params.items()]
    for label, key in (("seconds", "seconds"), ("epochs run", "epochs_run"), ("worker", "worker")):
        if trial.get(key) is not None:
            lines.append(f"{label}: {trial[key]}")
    lines.append(f"figures in {target}:")
    lines += [f"  {f.file}: {f.title}" for f in figures]
    lines += [f"  (not drawn) {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _baseline(trial: dict[str, Any]) -> str:
    return f" (baseline: {trial['baseline']})" if trial.get("baseline") else ""
