"""Confirmation runs summarised: mean ± sd over seeds per confirmed trial, the gain over the
baseline. Standard library only; the runs are read by :meth:`sweep.store.read.StudyReader.
confirmations`.

:func:`summarise` answers with one plain dict, the JSON schema ``sweep confirm``, ``sweep best``
and scripts rely on::

    {"study", "companion", "objectives": [{metric, direction}], "metrics": [names summarised],
     "jobs", "counts": {state: n}, "complete", "seeds": [seed, ...], "baseline": number | None,
     "trials": [{"number", "baseline", "planned", "seeds", "val": {metric: stat},
                 "test": {metric: stat}, "gain": {metric: {"val": diff, "test": diff}} | None,
                 "front": bool | None (several objectives only)}],
     "reference": None}

A ``stat`` is ``{"mean", "sd", "n", "values"}`` (``values`` in seed order; ``sd`` ``None`` below
two seeds); a ``diff`` is ``{"mean", "se", "vs"}``: the difference of the trial's and the
baseline's means and its standard error, sqrt(sd1²/n1 + sd2²/n2), against baseline trial
``vs``. ``front`` (several objectives) says whether the trial stays non-dominated once the
confirmed validation means are compared: single-seed Pareto points often do not. ``reference``
is the place for a supervised reference scored on the same split (a
``{"label", "val": {metric: value}, "test": {metric: value}}`` dict; :func:`with_reference`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import CONFIRM_JOB_ATTR
from sweep.config import STATES

if TYPE_CHECKING:
    from sweep.store.read import StudyReader
    from sweep.store.records import ConfirmationRecord
    from sweep.store.records import ReferenceRecord

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


def confirmed_view(
    reader: StudyReader, name: str, *, reference: bool = True
) -> dict[str, Any] | None:
    """The confirmation runs of study ``name`` summarised (module docstring), with the study's
    supervised reference in the ``reference`` slot when ``reference``; ``None`` without runs.

    Raises:
        StudyNotFoundError: no study ``name``.
    """
    record = reader.confirmations(name)
    if record is None:
        return None
    summary = summarise_record(record, reader.config(name).objectives)
    if reference:
        summary = with_reference_record(summary, reader.reference(name))
    return summary


def confirmed_results(url: str, name: str) -> dict[str, Any] | None:
    """:func:`confirmed_view` without the reference, on a reader of its own."""
    from sweep.store.read import StudyReader

    with StudyReader(url) as reader:
        return confirmed_view(reader, name, reference=False)


def confirmed_with_reference(url: str, name: str) -> dict[str, Any] | None:
    """:func:`confirmed_view` with the supervised reference, on a reader of its own."""
    from sweep.store.read import StudyReader

    with StudyReader(url) as reader:
        return confirmed_view(reader, name)


def summarise_record(
    record: ConfirmationRecord, objectives: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """:func:`summarise` of a :class:`~sweep.store.records.ConfirmationRecord`."""
    trials = [t.to_dict() for t in record.trials]
    return summarise(record.study, record.jobs, trials, objectives)


def summarise(
    name: str,
    jobs: Sequence[Mapping[str, Any]],
    trials: Sequence[Mapping[str, Any]],
    objectives: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The summary dict (module docstring) from the companion's jobs and trial dicts."""
    from sweep.config import CONFIRM_SUFFIX

    counts = dict.fromkeys(STATES, 0)
    for t in trials:
        counts[str(t["state"])] = counts.get(str(t["state"]), 0) + 1
    done: dict[str, Mapping[str, Any]] = {}
    for t in sorted(trials, key=lambda t: t["number"]):
        key = (t.get("user_attrs") or {}).get(CONFIRM_JOB_ATTR)
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
    _mark_confirmed_front(rows, objectives)
    seeds = sorted({int(j["seed"]) for j in jobs})
    return {
        "study": name,
        "companion": name + CONFIRM_SUFFIX,
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


def _mark_confirmed_front(
    rows: Sequence[dict[str, Any]], objectives: Sequence[Mapping[str, Any]]
) -> None:
    """Several objectives: set each row's ``front`` to whether it stays non-dominated once the
    confirmed *validation* seed means are compared (the baseline competes too; ``None`` without
    a mean for every objective). One objective: no ``front`` key."""
    if len(objectives) < 2:
        return
    from sweep.pareto import pareto_front

    scored = []
    for row in rows:
        means = [row["val"].get(str(o.get("metric")), {}).get("mean") for o in objectives]
        row["front"] = None
        if all(m is not None for m in means):
            signs = [-1.0 if o.get("direction") == "maximize" else 1.0 for o in objectives]
            scored.append((row, [sign * m for sign, m in zip(signs, means, strict=True)]))
    kept = set(pareto_front([losses for _, losses in scored]))
    for i, (row, _) in enumerate(scored):
        row["front"] = i in kept


FRONT_PICK_RULE = (
    "among the confirmed front's points (validation seed means), those whose label-hidden AUROC "
    "mean plus one sd reaches the reference's; of them, the best mean section lift"
)


def pick_front_point(summary: Mapping[str, Any]) -> int | None:
    """The confirmed front point a user takes by :data:`FRONT_PICK_RULE`, on validation only.

    The first objective plays the AUROC, the second the lift. Without a reference every front
    point qualifies; ``None`` when no point qualifies or the summary has no ``front``.
    """
    objectives = summary.get("objectives") or []
    if len(objectives) < 2:
        return None
    first, second = (str(o.get("metric")) for o in objectives[:2])
    signs = [1.0 if o.get("direction") == "maximize" else -1.0 for o in objectives[:2]]
    reference = (summary.get("reference") or {}).get("val") or {}
    bar = reference.get(first)
    best: tuple[float, int] | None = None
    for row in summary.get("trials") or []:
        if not row.get("front"):
            continue
        auroc, lift = row["val"].get(first) or {}, row["val"].get(second) or {}
        if auroc.get("mean") is None or lift.get("mean") is None:
            continue
        reach = signs[0] * auroc["mean"] + (auroc.get("sd") or 0.0)
        if bar is not None and reach < signs[0] * float(bar):
            continue
        score = signs[1] * lift["mean"]
        if best is None or score > best[0]:
            best = (score, int(row["number"]))
    return None if best is None else best[1]


def rank_by_confirmed(summary: Mapping[str, Any], top: int) -> list[int]:
    """Source trial numbers ranked by the confirmed validation mean of the first objective.

    Trials without a confirmed run are left out; ties by number.
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


def with_confirmed(
    rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any] | None
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
    beside the confirmed trials)."""
    return {**summary, "reference": {"label": label, "val": dict(val), "test": dict(test)}}


def with_reference_record(
    summary: dict[str, Any], reference: ReferenceRecord | None
) -> dict[str, Any]:
    """``summary`` with the study's supervised reference; unchanged without one, or when it
    failed at launch."""
    if reference is None or reference.error:
        return summary
    return with_reference(
        summary, f"reference ({reference.label})", reference.metrics, reference.test_metrics
    )


def reference_test_metrics(reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A reference row's (``ReferenceRecord.to_dict``) test metrics, keys without ``test.``."""
    details = (reference or {}).get("details") or {}
    test = details.get("test_metrics") if isinstance(details, dict) else None
    return {k.removeprefix("test."): v for k, v in test.items()} if isinstance(test, dict) else {}


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (``None`` for the sd of one)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(var)


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
