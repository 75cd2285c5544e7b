"""The exceptions `sweep` raises on purpose.

Every error a user can cause is a :class:`SweepError`; the CLI turns one into a single line on
stderr and a non-zero exit code. Leaves also subclass a builtin where one fits, so callers that
catch ``ValueError`` keep working.
"""

from __future__ import annotations


class SweepError(Exception):
    """Root of every error raised on purpose by `sweep`."""

    exit_code = 1


class UsageError(SweepError, ValueError):
    """A value is out of range or inconsistent with the study, the data or the machine.

    Exit code 1, like every :class:`SweepError` (input sweep refuses); 2 is for what Click's
    parser refuses (an unknown option, a missing argument).
    """


class ParamError(SweepError, ValueError):
    """A hyperparameter name or value is not valid for :class:`sweep.params.TrialParams`."""


class SpaceError(SweepError, ValueError):
    """A search-space file is missing, malformed or inconsistent."""


class DataError(SweepError, ValueError):
    """A data file is missing, malformed, or not the one a study was created with."""


class StorageError(SweepError):
    """The study database cannot be reached or used. Messages carry masked URLs only."""


class SchemaVersionError(StorageError):
    """The database holds an Optuna schema `sweep` was not tested against (not transient)."""


class StudyNotFoundError(SweepError, LookupError):
    """No study of that name exists in the storage."""


class StudyConflictError(SweepError):
    """A study of that name exists but does not match what was asked (space, data, budget)."""


class StudyComplete(StudyConflictError):
    """The study already met its budget: there is nothing to resume (``sweep resume`` says so
    and exits 0, as a worker joining a finished study does)."""


class TrialFailed(SweepError):
    """This trial failed (non-finite loss, crash, out of memory); the sweep goes on.

    The worker records the trial as FAIL with this message as its reason.
    """


class SweepStopped(SweepError):
    """The sweep stopped early on purpose (too many consecutive failures, interruption)."""


class HypermodelError(SweepError, ValueError):
    """A KerasTuner hypermodel cannot be found, differs from the study's, or makes an ``hp``
    call a sweep cannot search (``sweep launch --hypermodel``)."""


class TrialNotFoundError(SweepError, LookupError):
    """No trial of that number in the study (or no finished trial to pick as the best)."""


class NoWeightsError(SweepError, LookupError):
    """The trial's weights were not kept (``launch --keep-weights K`` keeps the K best)."""


class ArtifactsNotFoundError(SweepError, LookupError):
    """A study's artifact folder is missing (the message says where it was looked for)."""


class PreflightError(SweepError):
    """A launch's check failed: the model did not build or train one step on one batch."""
