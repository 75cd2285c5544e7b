"""``sweep show NAME N``: one trial's full table, flags and figures."""

from __future__ import annotations

import json
from pathlib import Path

from sweep.errors import TrialNotFoundError
from sweep.errors import UsageError
from sweep.present.plotting import make_out_dir
from sweep.present.plotting import prepare_out_dir
from sweep.store.artifacts import locate
from sweep.store.artifacts import where


def show_trial(
    url: str,
    name: str,
    number: int,
    out: str | Path | None = None,
    *,
    force: bool = False,
    artifacts: str | None = None,
) -> str:
    """Write trial ``number``'s figures into ``out`` and return its text.

    The text is the notes' table for the trial, its state, flags, every parameter (fixed ones
    included), the failure or pruning reason if any, and the figures written (or why some were
    not). Everything is read, on one connection, before anything is written. A trial of a
    KerasTuner hypermodel shows its own Keras history and no VAE collapse flags.

    Args:
        url: Storage URL.
        name: Study name.
        number: Trial number.
        out: The folder for the figures; ``None``: ``./NAME-trial-N``.
        force: Write into a non-empty folder.
        artifacts: ``--artifacts DIR``: where to look first for the study's artifact folder.

    Raises:
        UsageError: no such trial; ``out`` is a file, or a non-empty folder without ``force``.
        StudyNotFoundError: no study of that name.
        StorageError: the database cannot be reached or used.
    """
    from sweep.present.formatting import render
    from sweep.store.read import WEIGHTS_ATTR
    from sweep.store.read import StudyReader

    target = prepare_out_dir(out if out is not None else f"{name}-trial-{number}", force)
    with StudyReader(url) as reader:
        try:
            trial = reader.trial(name, number)
        except TrialNotFoundError as e:
            raise UsageError(str(e)) from None
        study = reader.config(name)

    from sweep.present.trial_figures import write_trial_figures

    make_out_dir(target)
    figures, notes = write_trial_figures(trial.to_dict(), target, hypermodel=study.is_hypermodel)

    baseline = f" (baseline: {trial.baseline})" if trial.baseline else ""
    lines = [f"study {name}, trial #{number}: {trial.state}" + baseline]
    if trial.fail_reason:
        lines.append(f"fail reason: {trial.fail_reason}")
    prune = trial.user_attrs.get("prune_reason")
    if prune:
        lines.append(f"prune reason: {prune}")
    lines.append("")
    table = render([trial.to_dict()], "table", kind="best", objectives=study.objectives)
    lines.append(table.rstrip("\n"))
    lines.append("")
    if not study.is_hypermodel:  # collapse flags are the VAE's
        lines.append("flags: " + ("none" if not trial.flags else ""))
        lines += [f"  - {flag}" for flag in trial.flags]
    lines.append("parameters (searched and fixed):")
    params = trial.all_params
    width = max((len(k) for k in params), default=0)
    lines += [f"  {k.ljust(width)}  {json.dumps(v)}" for k, v in params.items()]
    for label, value in (
        ("seconds", trial.seconds),
        ("epochs run", trial.epochs_run),
        ("worker", trial.worker),
    ):
        if value is not None:
            lines.append(f"{label}: {value}")
    stored = (study.config or {}).get("artifacts_dir")
    located, weights = locate(url, stored, artifacts), trial.user_attrs.get(WEIGHTS_ATTR)
    kept = located is not None and bool(weights) and (located.folder / str(weights)).is_file()
    lines.append(
        f"artifacts: {where(url, stored, artifacts)}" + (", weights kept" if kept else "")
    )
    lines.append(f"figures in {target}:")
    lines += [f"  {f.file}: {f.title}" for f in figures]
    lines += [f"  (not drawn) {note}" for note in notes]
    return "\n".join(lines) + "\n"
