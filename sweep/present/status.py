"""``sweep status``: a study's progress (counts, best so far, running trials), throughput and
ETA, assembled from one :class:`~sweep.store.read.StudyReader`. TensorFlow-free."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from sweep.store.read import StudyReader


def study_status(url: str, name: str) -> dict[str, Any]:
    """:func:`status_view` on a reader of its own."""
    from sweep.store.read import StudyReader

    with StudyReader(url) as reader:
        return status_view(reader, name)


def status_view(reader: StudyReader, name: str) -> dict[str, Any]:
    """Progress of one study.

    Returns:
        ``name``, ``storage`` (masked URL), ``objectives`` (``[{metric, direction}]``),
        ``budget`` (``None`` when not a sweep study), ``counts`` (every state), ``finished``
        (COMPLETE + PRUNED, what the budget counts), ``best`` (``{number, values}`` of the best
        COMPLETE trial for one objective, else ``None``; a racing study's best seed mean, with
        ``seeds`` and ``value_sd``), ``extra_seeds``, ``pareto_size`` (size of the Pareto
        set for several objectives, else ``None``), ``running`` (``[{number, started,
        heartbeat_age_s}]``, the age ``None`` without a heartbeat), ``created``,
        ``last_completed``, ``throughput_per_hour`` (finished trials per hour from the first
        start to the last completion; ``None`` until one finished) and ``eta_s`` (remaining
        budget over throughput; ``0`` when the budget is met, ``None`` when unknown).

    Raises:
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    from sweep.store.urls import mask_url

    study = reader.study(name)
    best = None
    pareto_size = None
    if len(study.directions) == 1 and (study.config or {}).get("max_seeds", 1) > 1:
        top_config = reader.best(name, 1)  # racing: the configuration with the best seed mean
        if top_config and top_config[0].seeds:
            seeds = top_config[0].seeds
            best = {
                "number": top_config[0].number,
                "values": [seeds["value_mean"]],
                "seeds": seeds["seeds"],
                "value_sd": seeds["value_sd"],
            }
    elif len(study.directions) == 1:
        top = reader.top_values(name, 1)
        if top:
            best = {"number": top[0][0], "values": [top[0][1]]}
    elif study.directions:
        pareto_size = reader.pareto_size(name)
    running = [
        {"number": r.number, "started": r.started, "heartbeat_age_s": r.heartbeat_age_s}
        for r in reader.running(name)
    ]
    throughput, eta_s = throughput_eta(
        study.finished, study.created, study.last_completed, study.budget
    )
    return {
        "name": study.name,
        "storage": mask_url(reader.url),
        "objectives": study.objectives,
        "budget": study.budget,
        "counts": dict(study.counts),
        "finished": study.finished,
        "extra_seeds": study.extra_seeds,
        "best": best,
        "pareto_size": pareto_size,
        "running": running,
        "created": study.created,
        "last_completed": study.last_completed,
        "throughput_per_hour": throughput,
        "eta_s": eta_s,
    }


def throughput_eta(
    finished: int, first_start: str | None, last_complete: str | None, budget: int | None
) -> tuple[float | None, float | None]:
    """Finished trials per hour from the first start to the last completion (ISO times), and
    the seconds left for the rest of the budget at that rate (``0`` when met, else ``None``
    when unknown)."""
    throughput = None
    if finished and first_start and last_complete:
        span_s = (
            datetime.datetime.fromisoformat(last_complete)
            - datetime.datetime.fromisoformat(first_start)
        ).total_seconds()
        if span_s > 0:
            throughput = finished / span_s * 3600.0
    eta_s = None
    if budget is not None:
        remaining = max(0, budget - finished)
        if remaining == 0:
            eta_s = 0.0
        elif throughput:
            eta_s = remaining / throughput * 3600.0
    return throughput, eta_s
