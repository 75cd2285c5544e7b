"""Read confirmation runs: mean ± sd over seeds per confirmed trial, the gain over the baseline.

Read-only and TensorFlow-free, like :mod:`sweep.store.read` (whose connection and trial loading
it uses). :func:`confirmed_results` answers with one plain dict, the JSON schema ``sweep
confirm``, ``sweep best`` and scripts rely on::

    {"study", "companion", "objectives": [{metric, direction}], "metrics": [names summarised],
     "jobs", "counts": {state: n}, "complete", "seeds": [seed, ...], "baseline": number | None,
     "trials": [{"number", "baseline", "planned", "seeds", "val": {metric: stat},
                 "test": {metric: stat}, "gain": {metric: {"val": diff, "test": diff}} | None}],
     "reference": None}

A ``stat`` is ``{"mean", "sd", "n", "values"}`` (``values`` in seed order; ``sd`` ``None`` below
two seeds); a ``diff`` is ``{"mean", "se", "vs"}``: the difference of the trial's and the
baseline's means and its standard error, sqrt(sd1²/n1 + sd2²/n2), against baseline trial
``vs``. ``reference`` is the place for a supervised reference scored on the same split (a
``{"label", "val": {metric: value}, "test": {metric: value}}`` dict; :func:`with_reference`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sweep.config import STATES
from sweep.errors import StudyNotFoundError
from sweep.store.confirm import CONFIRM_ATTR
from sweep.store.confirm import JOB_ATTR
from sweep.store.confirm import companion_name
from sweep.store.confirm import mean_sd

#: Metrics summarised besides the objectives (when the trials have them).
HEADLINE_METRICS = (
    "expression_hidden.auroc",
    "expression_hidden.f1",
    "expression_hidden.f1_at_threshold",
    "expression.auroc",
    "expression.f1",
    "expression.accuracy",
    "sections.mean_auprc_lift",
    "latent.active_units",
)


def confirmed_results(url: str, name: str) -> dict[str, Any] | None:
    """The confirmation runs of study ``name``, summarised; ``None`` when it has none.

    Raises:
        StudyNotFoundError: no study ``name``.
        StorageError: the database cannot be reached or used.
    """
    from sqlalchemy import select

    from sweep.store._optuna_schema import tables
    from sweep.store.read import find_study
    from sweep.store.read import load_trial_rows
    from sweep.store.read import loads_json
    from sweep.store.read import objectives_of
    from sweep.store.read import read_connection

    companion = companion_name(name)
    with read_connection(url) as (conn, schema):
        main = find_study(conn, schema, url, name)
        try:
            study = find_study(conn, schema, url, companion)
        except StudyNotFoundError:
            return None
        attrs_t = tables().study_user_attributes
        raw = conn.execute(
            select(attrs_t.c.value_json).where(
                attrs_t.c.study_id == study.study_id, attrs_t.c.key == CONFIRM_ATTR
            )
        ).scalar()
        stored = loads_json(raw) if raw is not None else None
        if not isinstance(stored, dict) or stored.get("source") != name:
            return None
        trials = load_trial_rows(conn, study.study_id, study.schema)
    objectives = objectives_of(main.config, main.directions)
    return summarise(name, stored.get("jobs") or [], list(trials.values()), objectives)


def summarise(
    name: str,
    jobs: Sequence[Mapping[str, Any]],
    trials: Sequence[Mapping[str, Any]],
    objectives: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The summary dict (module docstring) from the companion's jobs and trial dicts."""
    counts = dict.fromkeys(STATES, 0)
    for t in trials:
        counts[str(t["state"])] = counts.get(str(t["state"]), 0) + 1
    done: dict[str, Mapping[str, Any]] = {}
    for t in sorted(trials, key=lambda t: t["number"]):
        key = (t.get("user_attrs") or {}).get(JOB_ATTR)
        if t["state"] == "COMPLETE" and key is not None and key not in done:
            done[key] = t
    objective_metrics = [str(o["metric"]) for o in objectives if o.get("metric")]
    present = set().union(*(set(t.get("metrics") or {}) for t in done.values()))
    metrics = objective_metrics + [
        m for m in HEADLINE_METRICS if m in present and m not in objective_metrics
    ]
    by_source: dict[int, list[Mapping[str, Any]]] = {}
    for job in jobs:
        by_source.setdefault(int(job["source"]), []).append(job)
    rows: list[dict[str, Any]] = []
    baseline_number = None
    for source, source_jobs in by_source.items():
        source_jobs = sorted(source_jobs, key=lambda j: int(j["seed_index"]))
        runs = [done[j["key"]] for j in source_jobs if j["key"] in done]
        baseline = next((j.get("baseline") for j in source_jobs if j.get("baseline")), None)
        if baseline:
            baseline_number = source
        rows.append(
            {
                "number": source,
                "baseline": baseline,
                "planned": len(source_jobs),
                "seeds": len(runs),
                "val": {
                    m: _stat([(r.get("metrics") or {}).get(m) for r in runs]) for m in metrics
                },
                "test": {m: _stat([_test(r).get(f"test.{m}") for r in runs]) for m in metrics},
                "gain": None,
            }
        )
    base = next((r for r in rows if r["number"] == baseline_number), None)
    if base is not None:
        for row in rows:
            if row is not base:
                row["gain"] = {
                    m: {
                        split: _diff(row[split][m], base[split][m], base["number"])
                        for split in ("val", "test")
                    }
                    for m in metrics
                }
    seeds = sorted({int(j["seed"]) for j in jobs})
    return {
        "study": name,
        "companion": companion_name(name),
        "objectives": [dict(o) for o in objectives],
        "metrics": metrics,
        "jobs": len(jobs),
        "counts": counts,
        "complete": len(done),
        "seeds": seeds,
        "baseline": baseline_number,
        "trials": rows,
        "reference": None,
    }


def rank_by_confirmed(summary: Mapping[str, Any], top: int) -> list[int]:
    """Source trial numbers ranked by the confirmed validation mean of the first objective.

    Trials without a confirmed run come last (not at all: they are left out); ties by number.
    """
    objectives = summary.get("objectives") or []
    if not objectives or not objectives[0].get("metric"):
        return []
    metric = objectives[0]["metric"]
    sign = -1.0 if objectives[0].get("direction") == "maximize" else 1.0
    scored = [
        (sign * row["val"][metric]["mean"], row["number"])
        for row in summary.get("trials") or []
        if row["val"].get(metric, {}).get("mean") is not None
    ]
    return [number for _, number in sorted(scored)[:top]]


def trials_by_number(url: str, name: str, numbers: Sequence[int]) -> list[dict[str, Any]]:
    """Trial dicts (as :func:`sweep.store.read.best_trials`) of study ``name``, in ``numbers``'
    order; numbers that do not exist are left out.
    """
    from sqlalchemy import select

    from sweep.store._optuna_schema import tables
    from sweep.store.read import find_study
    from sweep.store.read import load_trial_rows
    from sweep.store.read import read_connection

    if not numbers:
        return []
    trials_t = tables().trials
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        ids = {
            row.number: row.trial_id
            for row in conn.execute(
                select(trials_t.c.trial_id, trials_t.c.number).where(
                    trials_t.c.study_id == study.study_id,
                    trials_t.c.number.in_(list(numbers)),
                )
            )
        }
        loaded = load_trial_rows(
            conn, study.study_id, study.schema, ids=[ids[n] for n in numbers if n in ids]
        )
    by_number = {t["number"]: t for t in loaded.values()}
    return [by_number[n] for n in numbers if n in by_number]


def with_confirmed(
    rows: Sequence[dict[str, Any]], summary: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Copies of trial dicts, each confirmed one with a ``confirmed`` key (its summary row)."""
    if not summary:
        return [dict(r) for r in rows]
    by_number = {row["number"]: row for row in summary.get("trials") or []}
    out = []
    for r in rows:
        row = dict(r)
        confirmed = by_number.get(r.get("number"))
        if confirmed is not None:
            row["confirmed"] = confirmed
        out.append(row)
    return out


def with_reference(
    summary: dict[str, Any], label: str, val: Mapping[str, float], test: Mapping[str, float]
) -> dict[str, Any]:
    """``summary`` with a reference model's validation and test scores (the formatter shows it
    beside the confirmed trials); the hook for the supervised reference."""
    return {**summary, "reference": {"label": label, "val": dict(val), "test": dict(test)}}


def reference_test_metrics(reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A :func:`sweep.store.read.reference_row`'s test metrics (keys without ``test.``), once
    ``confirm`` scored them; empty before."""
    details = (reference or {}).get("details") or {}
    test = details.get("test_metrics") if isinstance(details, dict) else None
    return {k.removeprefix("test."): v for k, v in test.items()} if isinstance(test, dict) else {}


def confirmed_with_reference(url: str, name: str) -> dict[str, Any] | None:
    """:func:`confirmed_results` with the study's supervised reference in its ``reference``
    slot (validation from launch, test once ``confirm`` scored it); ``None`` without runs."""
    from sweep.store.read import reference_row

    summary = confirmed_results(url, name)
    if summary is None:
        return None
    reference = reference_row(url, name)
    if reference is None or reference.get("error"):
        return summary
    return with_reference(
        summary,
        f"reference ({reference['reference']})",
        reference.get("metrics") or {},
        reference_test_metrics(reference),
    )


def _test(trial: Mapping[str, Any]) -> Mapping[str, Any]:
    value = (trial.get("user_attrs") or {}).get("test_metrics")
    return value if isinstance(value, dict) else {}


def _stat(values: Sequence[Any]) -> dict[str, Any]:
    kept = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    kept = [v for v in kept if math.isfinite(v)]
    mean, sd = mean_sd(kept)
    return {"mean": mean, "sd": sd, "n": len(kept), "values": kept}


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], vs: int) -> dict[str, Any] | None:
    if a.get("mean") is None or b.get("mean") is None:
        return None
    se = None
    if a.get("sd") is not None and b.get("sd") is not None:
        se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"])
    return {"mean": a["mean"] - b["mean"], "se": se, "vs": vs}
