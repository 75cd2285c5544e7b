"""What the read-only commands show, assembled from the store: one function per view.

Each returns a :class:`View`: the text for stdout, and notes for stderr (a failed reference,
a file written). :mod:`sweep.cli` only prints them. Optuna and SQLAlchemy only: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import UsageError

if TYPE_CHECKING:
    from sweep.run.single import SingleTrial


@dataclass(frozen=True)
class View:
    """A command's output.

    Attributes:
        text: For stdout, newline-terminated (empty: nothing to print).
        notes: One-line messages for stderr, in order.
    """

    text: str
    notes: tuple[str, ...] = ()


def best_view(
    url: str,
    name: str,
    top: int = 5,
    fmt: str = "table",
    by: str = "value",
    as_hyperparameters: str | None = None,
) -> View:
    """``sweep best``: the best trials (the Pareto set for several objectives), then the
    baseline and the supervised reference, with confirmed values where ``confirm`` ran.

    Args:
        url: Storage URL.
        name: Study name.
        top: How many best trials.
        fmt: ``table``, ``json`` or ``csv``; JSON lists the best set only.
        by: ``value`` (the trials' own) or ``confirmed`` (the confirmed validation mean).
        as_hyperparameters: Also write the best trial as a KerasTuner ``HyperParameters``
            config to this file.

    Raises:
        UsageError: ``by="confirmed"`` before a confirmation run completed; an unknown ``fmt``.
        StudyNotFoundError, StorageError: as the readers of :mod:`sweep.store.read`.
    """
    from sweep.present.confirmed import confirmed_results
    from sweep.present.confirmed import rank_by_confirmed
    from sweep.present.confirmed import with_confirmed
    from sweep.present.formatting import render
    from sweep.present.status import study_status
    from sweep.store.read import baseline_trial
    from sweep.store.read import best_trials
    from sweep.store.read import trials_by_number

    notes: list[str] = []
    if as_hyperparameters:
        from sweep.store.hyperparameters import write_best_hyperparameters

        number = write_best_hyperparameters(url, name, as_hyperparameters)
        notes.append(f"wrote trial {number}'s hyperparameters to {as_hyperparameters}")
    confirmed = confirmed_results(url, name)
    if by == "confirmed":
        if confirmed is None or not confirmed["complete"]:
            raise UsageError(
                f"--by confirmed: study {name!r} has no complete confirmation run yet; run "
                f"`sweep confirm {name}` first"
            )
        rows = trials_by_number(url, name, rank_by_confirmed(confirmed, top))
    else:
        rows = best_trials(url, name, top)
    if fmt != "json":  # JSON lists the best set only; `trials` marks the baseline there
        baseline = baseline_trial(url, name)
        if baseline is not None and baseline["number"] not in {r["number"] for r in rows}:
            rows.append(baseline)
    rows = with_confirmed(rows, confirmed)
    reference = _reference_row(url, name, notes) if rows and fmt != "json" else None
    if reference is not None:
        rows.append(reference)
    objectives = study_status(url, name)["objectives"] if fmt == "table" else None
    text = ""
    if by == "confirmed" and fmt == "table":
        metric = (objectives or [{}])[0].get("metric") or "the first objective"
        text = (
            f"ranked by the confirmed validation mean of {metric} over seeds "
            "(not by the trials' single-seed values)\n"
        )
    if rows or fmt != "table":
        text += render(rows, fmt, kind="best", objectives=objectives)
    return View(text, tuple(notes))


def _reference_row(url: str, name: str, notes: list[str]) -> dict[str, Any] | None:
    """The study's supervised reference for ``best``; a failed one is a note (for stderr).

    Once ``confirm`` has scored it on test, it carries a ``confirmed`` entry (one fit: its
    validation and test values) for the Confirmed rows.
    """
    from sweep.present.confirmed import reference_test_metrics
    from sweep.store.read import reference_row

    reference = reference_row(url, name)
    if reference is not None and reference.get("error"):
        notes.append(f"reference ({reference['reference']}) failed: {reference['error']}")
        return None
    test = reference_test_metrics(reference)
    if reference is not None and test:
        val = {k: _one_fit(v) for k, v in (reference.get("metrics") or {}).items()}
        reference["confirmed"] = {
            "number": None, "seeds": 1, "planned": 1, "gain": None,
            "val": val, "test": {k: _one_fit(v) for k, v in test.items()},
        }  # fmt: skip
    return reference


def _one_fit(value: Any) -> dict[str, Any]:
    """A value as a confirmed statistic of one run (no spread)."""
    return {"mean": value, "sd": None, "n": 1, "values": [value]}


def status_view(url: str, name: str, fmt: str = "table") -> View:
    """``sweep status``: trials by state, best so far, heartbeats, ETA, and the confirmation
    run's progress when there is one (a ``confirm`` key in JSON, a last line in the table).

    Raises:
        StudyNotFoundError, StorageError: as :func:`sweep.store.read.study_status`.
    """
    from sweep.present.confirmed import confirmed_results
    from sweep.present.formatting import render_status
    from sweep.present.status import study_status

    info = study_status(url, name)
    confirmed = confirmed_results(url, name)
    if fmt == "json":
        info["confirm"] = None
        if confirmed is not None:
            info["confirm"] = {
                k: confirmed[k] for k in ("companion", "jobs", "complete", "counts")
            }
    text = render_status(info, fmt)
    if confirmed is not None and fmt == "table":
        running = confirmed["counts"].get("RUNNING", 0)
        text += (
            f"confirm: {confirmed['complete']}/{confirmed['jobs']} runs complete, {running} "
            f"running ({confirmed['companion']}; `sweep best {name}` shows them)\n"
        )
    return View(text)


def single_trial_view(trial: SingleTrial) -> View:
    """``sweep trial``: the notes' table for the validation split (and the test split when it
    was scored), then how it trained and any collapse flags."""
    from sweep.present.formatting import render

    result = trial.result
    row = {
        "number": 0,
        "state": "COMPLETE",
        "values": None,
        "params": trial.values,
        "params_full": trial.params.to_dict(),
        "metrics": result.metrics,
        "flags": list(result.flags),
        "seconds": result.seconds,
        "fail_reason": None,
    }
    text = render([row], "table", kind="best")
    test_rows = trial.rows.get("test")
    if result.test_metrics and test_rows is not None:
        test = {k.removeprefix("test."): v for k, v in result.test_metrics.items()}
        text += f"test split ({test_rows} rows, never used by a sweep):\n"
        text += render([{**row, "metrics": test}], "table", kind="best")
    tested = f" / {test_rows} test" if test_rows is not None else ""
    text += (
        f"trained {result.epochs_run} epochs in {result.seconds:.1f}s on {trial.data_name}"
        f" ({trial.rows['train']} train / {trial.rows['val']} validation{tested} rows);"
        f" ELBO-scale beta {result.elbo_beta:.4g}\n"
    )
    text += "".join(f"collapse: {flag}\n" for flag in result.flags)
    return View(text)
