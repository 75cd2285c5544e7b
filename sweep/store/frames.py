"""The notebook API: a study's trials and a trial's per-epoch history as pandas DataFrames.

``sweep.load_trials(name)`` has one row per trial and the columns of ``sweep trials --format
csv``: ``number``, ``state``, ``value`` (``value_0``... for several objectives, as Optuna's
``trials_dataframe()``), flat ``param.*`` and ``metric.*``, then
``confirmed.*`` (seed-confirmed metrics, only when some trial has them), ``baseline``,
``seconds``, ``flags``, ``started``, ``completed`` and ``fail_reason``. It reads with one
:class:`sweep.store.read.StudyReader` (no ``optuna.load_study``): 10,000 trials in about 4 s on
a busy 2-core machine, a quarter of Optuna's ``trials_dataframe()`` (``benchmarks/RESULTS.md``).
pandas is an extra (``pip install 'sweep[notebook]'``), imported only here, when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import SweepError
from sweep.errors import TrialNotFoundError
from sweep.names import value_columns

if TYPE_CHECKING:
    import pandas as pd

#: Trial user attribute (or trial-row key) holding seed-confirmed metrics (``sweep confirm``).
CONFIRMED_KEY = "confirmed"


def load_trials(name: str, storage: str | None = None) -> pd.DataFrame:
    """Every trial of study ``name`` as a DataFrame, one row per trial, in number order.

    Args:
        name: The study.
        storage: Storage URL; default ``$SWEEP_STORAGE``, else ``sqlite:///sweep.db``.

    Raises:
        SweepError: pandas is not installed (one line: how to install it).
        StudyNotFoundError, StorageError.
    """
    pd = _pandas("load_trials")
    from sweep.store.read import StudyReader
    from sweep.store.urls import resolve_url

    with StudyReader(resolve_url(storage)) as reader:
        rows = reader.trials(name)
    n_values = max((len(r.values or ()) for r in rows), default=0)
    records = []
    for r in rows:
        record: dict[str, Any] = {"number": r.number, "state": r.state}
        values = list(r.values or ())
        for i, column in enumerate(value_columns(n_values)):
            record[column] = values[i] if i < len(values) else None
        record.update(_flat("param", r.params))
        record.update(_flat("metric", r.metrics))
        confirmed = r.user_attrs.get(CONFIRMED_KEY)
        if isinstance(confirmed, Mapping) and confirmed:
            record.update(_flat("confirmed", confirmed))
        record["baseline"] = r.baseline
        record["seconds"] = r.seconds
        record["flags"] = ";".join(str(f) for f in r.flags)
        record["started"] = r.started
        record["completed"] = r.completed
        record["fail_reason"] = r.fail_reason
        records.append(record)
    columns = _columns(records, n_values)
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in ("started", "completed"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def load_history(name: str, trial: int, storage: str | None = None) -> pd.DataFrame:
    """Trial ``trial``'s per-epoch curves: one row per epoch (index ``epoch``, from 1), one
    column per curve (``loss``, ``val_reconstruction_loss``, ``kl_loss``...).

    Raises:
        SweepError: pandas is not installed.
        TrialNotFoundError: no such trial, or it has no history (it never finished training).
        StudyNotFoundError, StorageError.
    """
    pd = _pandas("load_history")
    from sweep.store.read import StudyReader
    from sweep.store.urls import resolve_url

    with StudyReader(resolve_url(storage)) as reader:
        row = reader.trial(name, int(trial), history=True)
    history = row.history
    if not isinstance(history, Mapping) or not history:
        raise TrialNotFoundError(
            f"trial {trial} of study {name!r} ({row.state}) has no per-epoch history"
        )
    epochs = max(len(v) for v in history.values() if isinstance(v, list))
    data = {
        key: list(values) + [None] * (epochs - len(values))
        for key, values in history.items()
        if isinstance(values, list)
    }
    frame = pd.DataFrame(data, index=pd.RangeIndex(1, epochs + 1, name="epoch"), dtype=float)
    return frame


def _pandas(what: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise SweepError(f"sweep.{what} needs pandas: pip install 'sweep[notebook]'") from None
    return pd


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{prefix.key: value}``, nested mappings joined with dots; lists stay as they are."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flat(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = value
    return out


def _columns(records: list[dict[str, Any]], n_values: int) -> list[str]:
    """Column order: as the CSV (fixed ones, then each group in first-seen order)."""
    groups: dict[str, dict[str, None]] = {"param": {}, "metric": {}, "confirmed": {}}
    for record in records:
        for key in record:
            group = key.split(".", 1)[0]
            if group in groups and "." in key:
                groups[group].setdefault(key)
    return [
        "number",
        "state",
        *value_columns(n_values),
        *groups["param"],
        *groups["metric"],
        *groups["confirmed"],
        "baseline",
        "seconds",
        "flags",
        "started",
        "completed",
        "fail_reason",
    ]
