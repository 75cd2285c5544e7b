"""The one module that knows Optuna's RDB internals: tables, private methods, stored formats.

Everything `sweep` relies on that Optuna does not promise as public API lives here: the
SQLAlchemy Core declarations of Optuna's tables (read by :mod:`sweep.store.read`), the
``RDBStorage`` methods, private ones included, that :mod:`sweep.store.rdb` wraps with reconnect
retries, how values, directions and failure reasons are stored, and how stored times are meant.

**Supported schema.** Optuna records its schema twice: alembic's ``alembic_version.version_num``
(the revision, ``v3.2.0.a`` since Optuna 3.2) and ``version_info.schema_version`` (``12`` since
alembic took over), next to ``version_info.library_version`` (the Optuna that created the
database). `sweep` is tested against Optuna 5.0 only (``optuna>=5.0,<5.1`` in ``pyproject.toml``;
the worker needs ``RetryHeartbeatStaleTrialCallback``, new in 5.0), whose head revision is
``v3.2.0.a``. Databases created by Optuna 3.2 to 4.x carry the same revision and are read too.
:func:`check_schema` refuses any other revision or schema version in one line, before anything
reads or writes the database; a database whose version rows do not exist yet (empty, or being
created by another process right now) passes, and Optuna stamps it with its head revision.

**Times.** Optuna 4.x and earlier store ``datetime_start``/``datetime_complete`` as naive *local*
time (``datetime.now()``); Optuna 5.0 stores naive *UTC* (``TrialModel``'s setters), with no
schema change. :meth:`StoredSchema.to_utc` tells them apart by ``library_version`` (local times
are read in this machine's time zone, so reader and writer must share one). Heartbeats are
written by the database's own ``now()`` in both, so their age is measured against the database's
``now()`` and needs no conversion. A database created by 4.x and later written by 5.x workers holds
both kinds; it is read as 4.x (its ``library_version`` is not updated without a migration).

Nothing here imports Optuna or SQLAlchemy at import time: both are imported inside the functions
that need them.

**Stalls this module helps to cure.** :func:`add_first_heartbeat` gives every trial a worker
creates RUNNING its heartbeat row at once, so Optuna's stale check sees it;
:func:`with_claim_token` and :func:`claimed_trial` make trial creation idempotent under retries
(see :mod:`sweep.store.rdb`).
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import SchemaVersionError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

#: Alembic revisions of Optuna's schema that sweep is tested against (Optuna 5.0's head).
SUPPORTED_REVISIONS = ("v3.2.0.a",)
#: ``version_info.schema_version`` of those revisions.
SUPPORTED_SCHEMA_VERSIONS = (12,)
#: The Optuna releases tested (mirrors the bound in ``pyproject.toml``).
TESTED_OPTUNA = "optuna>=5.0,<5.1"
#: The first Optuna release that stores trial times as naive UTC.
UTC_TIMES_SINCE = (5, 0)

#: Optuna's system attribute with the exception of a crashed trial (written before Optuna 3.0;
#: sweep's workers write their own ``fail_reason`` user attribute).
FAIL_REASON_KEY = "fail_reason"

#: Substrings of the errors two processes get when both create Optuna's tables in one new
#: database at once (the loser's insert of the schema version fails); retrying is safe.
SCHEMA_RACE_MESSAGES = ("alembic_version", "already exists", "duplicate key")

#: ``RDBStorage`` methods that talk to the database, wrapped with reconnect retries. The public
#: ``create_new_trial`` is not among them: it calls ``_create_new_trial``, which is retried with
#: a claim token (:data:`CREATE_METHOD`), so a retry never inserts a second trial.
RETRIED_METHODS = (
    "create_new_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "record_heartbeat",
    "_get_stale_trial_ids",
    # optuna.load_study wraps the storage in _CachedStorage, which calls these directly:
    "_create_new_trial",
    "_set_trial_param",
    "_get_trials",
    "_get_best_trial_id",
)
#: The heartbeat method among :data:`RETRIED_METHODS` (it runs in a side thread).
HEARTBEAT_METHOD = "record_heartbeat"
#: The state change that turns a popped WAITING trial RUNNING.
STATE_METHOD = "set_trial_state_values"
#: The method every trial creation goes through (``create_new_trial``, ``_CachedStorage``).
CREATE_METHOD = "_create_new_trial"
#: Called inside the creating transaction, once per attempt (Optuna itself retries deadlocks).
PREPARE_TRIAL_METHOD = "_get_prepared_new_trial"
#: The trial system attribute holding the claim token of the call that created the trial.
CLAIM_KEY = "sweep:claim"


@dataclass(frozen=True)
class StoredSchema:
    """The schema version rows of one database (``None`` where a row does not exist yet)."""

    revision: str | None = None
    schema_version: int | None = None
    library_version: str | None = None

    @property
    def utc_times(self) -> bool:
        """Whether trial times are stored as naive UTC (Optuna 5.0+) or naive local time."""
        return _release(self.library_version) >= UTC_TIMES_SINCE

    def to_utc(self, value: datetime.datetime | None) -> datetime.datetime | None:
        """A stored ``datetime_start``/``datetime_complete`` as an aware UTC datetime."""
        return stored_time_to_utc(value, utc=self.utc_times)

    def describe(self) -> str:
        """``alembic revision X, schema_version N (written by optuna V)``."""
        text = f"alembic revision {self.revision or 'none'}, schema_version {self.schema_version}"
        return text + (
            f" (written by optuna {self.library_version})" if self.library_version else ""
        )


def stored_time_to_utc(value: datetime.datetime | None, *, utc: bool) -> datetime.datetime | None:
    """An aware UTC datetime for a stored naive one.

    Args:
        value: As read from ``trials.datetime_start``/``datetime_complete``.
        utc: The value is naive UTC (Optuna 5.0+); otherwise naive local time (Optuna 4.x),
            read in this machine's time zone.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        if utc:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)  # naive: taken as local time
    return value.astimezone(datetime.timezone.utc)


def read_schema(conn: Connection) -> StoredSchema | None:
    """The version rows of the database, or ``None`` when it holds no Optuna tables."""
    from sqlalchemy import inspect
    from sqlalchemy import select

    inspector = inspect(conn)
    if not inspector.has_table("studies"):
        return None
    revision = None
    if inspector.has_table("alembic_version"):
        alembic = _alembic_table()
        revision = conn.execute(select(alembic.c.version_num)).scalar()
    schema_version = library_version = None
    if inspector.has_table("version_info"):
        info = tables().version_info
        row = conn.execute(select(info.c.schema_version, info.c.library_version)).first()
        if row is not None:
            schema_version, library_version = row
    return StoredSchema(revision, schema_version, library_version)


def check_schema(conn: Connection, url: URL | str) -> StoredSchema | None:
    """The database's schema versions, if sweep supports them.

    Args:
        conn: An open connection to the database.
        url: Its URL, for the message (masked there).

    Returns:
        ``None`` for a database without Optuna's tables; else the version rows, all ``None``
        when not stamped yet (being created right now; read as Optuna 5.0 writes).

    Raises:
        SchemaVersionError: the revision or schema version is not one sweep was tested against.
    """
    from sweep.store.urls import mask_url

    schema = read_schema(conn)
    if schema is None:
        return None
    bad_revision = schema.revision is not None and schema.revision not in SUPPORTED_REVISIONS
    bad_version = (
        schema.schema_version is not None
        and schema.schema_version not in SUPPORTED_SCHEMA_VERSIONS
    )
    if bad_revision or bad_version:
        supported = ", ".join(SUPPORTED_REVISIONS)
        versions = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise SchemaVersionError(
            f"storage {mask_url(url)} holds an Optuna schema sweep does not support: "
            f"{schema.describe()}; supported: alembic revision {supported}, schema_version "
            f"{versions} ({TESTED_OPTUNA}); nothing was read or changed"
        )
    return schema


def with_claim_token(template: Any, token: str) -> Any:
    """A creation template (``FrozenTrial``) carrying ``token`` as :data:`CLAIM_KEY`.

    ``None`` becomes the template of a plain new trial: RUNNING, started now, nothing else set,
    which Optuna creates exactly as it creates a trial without a template. The token is written in
    the same transaction as the trial, so a retry can find the trial a lost commit created.
    """
    import copy

    from optuna.trial import FrozenTrial
    from optuna.trial import TrialState

    if template is None:
        return FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=datetime.datetime.now(datetime.timezone.utc),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={CLAIM_KEY: token},
            intermediate_values={},
            trial_id=-1,
        )
    claimed = copy.copy(template)
    claimed.system_attrs = {**template.system_attrs, CLAIM_KEY: token}
    return claimed


def claim_token(template: Any) -> str | None:
    """The claim token a creation template carries, if any."""
    if template is None:
        return None
    token = template.system_attrs.get(CLAIM_KEY)
    return token if isinstance(token, str) else None


def claimed_trial(session: Any, study_id: int, token: str) -> Any:
    """The ``TrialModel`` of ``study_id`` whose claim token is ``token``, or ``None``."""
    import json

    from optuna.storages._rdb import models

    attr = models.TrialSystemAttributeModel
    trial = models.TrialModel
    return (
        session.query(trial)
        .join(attr, attr.trial_id == trial.trial_id)
        .filter(trial.study_id == study_id)
        .filter(attr.key == CLAIM_KEY)
        .filter(attr.value_json == json.dumps(token))
        .one_or_none()
    )


def add_first_heartbeat(session: Any, trial: Any) -> None:
    """Give a new RUNNING trial its heartbeat row in the transaction that creates it.

    Optuna's stale check skips trials without a heartbeat row, and the row is otherwise written
    by the worker's heartbeat thread a moment after the trial exists: a worker killed in between
    would leave a RUNNING trial no check ever fails, holding a budget slot forever. With the row
    written at creation (the database's ``now()``), such a trial goes stale like any other.
    """
    from optuna.storages._rdb import models

    session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))


def write_user_attrs(storage: Any, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Upsert several user attributes of a running trial in one committed transaction.

    ``storage`` is an :class:`optuna.storages.RDBStorage`. Its own
    :meth:`~optuna.storages.RDBStorage.set_trial_user_attr` opens a transaction (and, without a
    pool, a connection) per attribute; this is the same upsert for each, in one.
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        for key, value in attrs.items():
            storage._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial_id, key, value
            )


def unwatched_running_trials(conn: Connection, study_id: int) -> list[tuple[int, int, Any]]:
    """``(trial_id, number, datetime_start)`` of the study's RUNNING trials with no heartbeat row.

    Optuna's stale check never fails such a trial: it comes from a client that does not beat
    (``study.ask()`` in a plain Optuna script, an older `sweep`, a restored backup).
    """
    from sqlalchemy import select

    m = tables()
    trials_t, beats_t = m.trials, m.trial_heartbeats
    rows = conn.execute(
        select(trials_t.c.trial_id, trials_t.c.number, trials_t.c.datetime_start)
        .select_from(trials_t.outerjoin(beats_t, beats_t.c.trial_id == trials_t.c.trial_id))
        .where(
            trials_t.c.study_id == study_id,
            trials_t.c.state == "RUNNING",
            beats_t.c.trial_heartbeat_id.is_(None),
        )
        .order_by(trials_t.c.number)
    ).all()
    return [(r.trial_id, r.number, r.datetime_start) for r in rows]


def trial_state_counts(conn: Connection, study_id: int) -> dict[str, int]:
    """Number of the study's trials per state name, in one ``GROUP BY`` query.

    What a budget claim needs under the lock, without loading any trial (Optuna's
    ``get_all_trials`` reads every unfinished trial with its parameters and attributes).
    """
    from sqlalchemy import func
    from sqlalchemy import select

    trials_t = tables().trials
    rows = conn.execute(
        select(trials_t.c.state, func.count())
        .where(trials_t.c.study_id == study_id)
        .group_by(trials_t.c.state)
    ).all()
    return {str(getattr(state, "name", state)): int(n) for state, n in rows}


def study_user_attr_json(conn: Connection, study_id: int, key: str) -> Any:
    """One study user attribute, decoded from its JSON (``None`` when it is not set)."""
    import json

    from sqlalchemy import select

    attrs_t = tables().study_user_attributes
    value = conn.execute(
        select(attrs_t.c.value_json).where(attrs_t.c.study_id == study_id, attrs_t.c.key == key)
    ).scalar()
    return None if value is None else json.loads(value)


def database_utc_now(conn: Connection) -> datetime.datetime:
    """The database server's clock, as an aware UTC datetime."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar()
    else:  # SQLite's CURRENT_TIMESTAMP is UTC
        value = datetime.datetime.fromisoformat(
            str(conn.execute(text("SELECT CURRENT_TIMESTAMP")).scalar())
        )
    assert isinstance(value, datetime.datetime)
    return value.replace(tzinfo=datetime.timezone.utc)


def add_stale_heartbeat(conn: Connection, trial_id: int, grace_period_s: float) -> None:
    """Give a trial a heartbeat row already older than the grace period, by the database's clock.

    Optuna's ``fail_stale_trials`` then fails it and runs the study's retry callback, exactly as
    for a worker that died: the retry follows the study's rules. The row is written and compared
    in the database's own ``now()``, as Optuna's heartbeats are.
    """
    from sqlalchemy import func
    from sqlalchemy import insert
    from sqlalchemy import select

    now = conn.execute(select(func.now())).scalar()
    assert now is not None
    stale = now - datetime.timedelta(seconds=grace_period_s + 1)
    conn.execute(insert(tables().trial_heartbeats).values(trial_id=trial_id, heartbeat=stale))


def decode_value(value: float | None, value_type: Any) -> float:
    """An objective value from its stored ``(value, value_type)`` pair (infinities apart)."""
    name = getattr(value_type, "name", str(value_type))
    if name == "INF_POS":
        return math.inf
    if name == "INF_NEG":
        return -math.inf
    return float(value) if value is not None else math.nan


def value_rank(values_t: Any) -> ColumnElement[Any]:
    """SQL: ``-inf`` < finite < ``+inf`` as 0, 1, 2, to order by before the stored value."""
    from sqlalchemy import case

    return case(
        (values_t.c.value_type == "INF_POS", 2),
        (values_t.c.value_type == "FINITE", 1),
        else_=0,
    )


def infinity_sign(values_t: Any) -> ColumnElement[Any]:
    """SQL: the infinity of a stored value as 1, -1, or 0 when finite (no enum decoding)."""
    from sqlalchemy import case

    return case(
        (values_t.c.value_type == "INF_POS", 1), (values_t.c.value_type == "INF_NEG", -1), else_=0
    )


def direction_name(direction: Any) -> str:
    """``"maximize"``/``"minimize"`` (``"not_set"``) from a stored study direction."""
    return str(getattr(direction, "name", direction)).lower()


@functools.cache
def tables() -> Any:
    """The tables of Optuna's RDB schema that sweep reads, as SQLAlchemy Core tables.

    Declared here rather than imported from ``optuna.storages._rdb.models`` so that a report
    needs neither ``sqlalchemy.orm`` nor the ORM mapping at start-up (about 0.15 s of a
    one-second budget). Names, columns and enum types are those of Optuna's models for the
    :data:`SUPPORTED_REVISIONS`; ``tests/test_report.py`` checks them against Optuna's own.
    """
    from types import SimpleNamespace

    from sqlalchemy import Column
    from sqlalchemy import DateTime
    from sqlalchemy import Enum
    from sqlalchemy import Float
    from sqlalchemy import Integer
    from sqlalchemy import MetaData
    from sqlalchemy import String
    from sqlalchemy import Table
    from sqlalchemy import Text

    def enum(name: str, *values: str) -> Enum:
        return Enum(*values, name=name, native_enum=True, create_constraint=False)

    meta = MetaData()
    key = String(512)

    def table(name: str, *columns: Column[Any]) -> Table:
        return Table(name, meta, *columns)

    return SimpleNamespace(
        studies=table(
            "studies", Column("study_id", Integer, primary_key=True), Column("study_name", key)
        ),
        study_directions=table(
            "study_directions",
            Column("study_direction_id", Integer, primary_key=True),
            Column("direction", enum("studydirection", "NOT_SET", "MINIMIZE", "MAXIMIZE")),
            Column("study_id", Integer),
            Column("objective", Integer),
        ),
        study_user_attributes=table(
            "study_user_attributes",
            Column("study_user_attribute_id", Integer, primary_key=True),
            Column("study_id", Integer),
            Column("key", key),
            Column("value_json", Text),
        ),
        trials=table(
            "trials",
            Column("trial_id", Integer, primary_key=True),
            Column("number", Integer),
            Column("study_id", Integer),
            Column(
                "state", enum("trialstate", "RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING")
            ),
            Column("datetime_start", DateTime),
            Column("datetime_complete", DateTime),
        ),
        trial_values=table(
            "trial_values",
            Column("trial_value_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("objective", Integer),
            Column("value", Float(precision=53)),
            Column("value_type", enum("trialvaluetype", "FINITE", "INF_POS", "INF_NEG")),
        ),
        trial_params=table(
            "trial_params",
            Column("param_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("param_name", key),
            Column("param_value", Float(precision=53)),
            Column("distribution_json", Text),
        ),
        trial_intermediate_values=table(
            "trial_intermediate_values",
            Column("trial_intermediate_value_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("step", Integer),
            Column("intermediate_value", Float(precision=53)),
            Column(
                "intermediate_value_type",
                enum("trialintermediatevaluetype", "FINITE", "INF_POS", "INF_NEG", "NAN"),
            ),
        ),
        trial_user_attributes=table(
            "trial_user_attributes",
            Column("trial_user_attribute_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("key", key),
            Column("value_json", Text),
        ),
        trial_system_attributes=table(
            "trial_system_attributes",
            Column("trial_system_attribute_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("key", key),
            Column("value_json", Text),
        ),
        trial_heartbeats=table(
            "trial_heartbeats",
            Column("trial_heartbeat_id", Integer, primary_key=True),
            Column("trial_id", Integer),
            Column("heartbeat", DateTime),
        ),
        version_info=table(
            "version_info",
            Column("version_info_id", Integer, primary_key=True, autoincrement=False),
            Column("schema_version", Integer),
            Column("library_version", String(256)),
        ),
    )


@functools.cache
def _alembic_table() -> Any:
    """Alembic's own one-row table (not one of Optuna's models)."""
    from sqlalchemy import Column
    from sqlalchemy import MetaData
    from sqlalchemy import String
    from sqlalchemy import Table

    return Table("alembic_version", MetaData(), Column("version_num", String(32)))


def _release(version: str | None) -> tuple[int, int]:
    """``(major, minor)`` of an Optuna version string; the installed convention if unknown."""
    match = re.match(r"\s*(\d+)\.(\d+)", version or "")
    if match is None:
        return UTC_TIMES_SINCE
    return int(match.group(1)), int(match.group(2))
