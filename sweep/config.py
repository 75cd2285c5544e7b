"""Configuration, once: names, defaults, option rules and the frozen study and run settings.

Shared names (states, samplers, attribute keys, timing); :data:`OPTIONS`, each shared option's
flag, default and range check (:mod:`sweep.cli_options` adds the help); :class:`StudySettings`,
:class:`StudyConfig` (settings + space + data, stored in the study) and :class:`RunOptions`
(workers on this machine), frozen and checked on construction by the CLI's rules.
Standard library only at import time (the CLI imports it before any command runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sweep._option import Option
from sweep._option import OptionError
from sweep._version import __version__
from sweep.errors import UsageError

if TYPE_CHECKING:
    from sweep.space import SearchSpace

#: Optuna's trial states, in the order reports list them.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: States that count towards a study's budget.
FINISHED_STATES = ("COMPLETE", "PRUNED")
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "none")
#: The share of a trial's epochs it reports before the median pruner may stop it
#: (``n_warmup_steps``). Measured in benchmarks/search_efficiency.py (B2, 4-epoch trials of the
#: notes' grid): the objective after epoch 1 and 2 ranks trials unlike the final one (Spearman
#: -0.12 and 0.27), and pruning after epoch 1 lost the grid's best in 18 of 20 runs; waiting
#: half the epochs found it in 20 of 20.
MEDIAN_WARMUP_SHARE = 0.5

#: The study user attribute that holds a sweep's :class:`StudyConfig`.
STUDY_ATTR = "sweep"

#: The trial user attribute that marks a study's baseline trial; its value is the baseline's name.
BASELINE_ATTR = "baseline"

#: The confirmation companion of study ``NAME`` is ``NAME`` + this suffix (``sweep confirm``).
CONFIRM_SUFFIX = ".confirm"
#: The companion's study user attribute: ``{"source": NAME, "jobs": [job, ...]}``.
CONFIRM_ATTR = "sweep_confirm"
#: A confirmation run's trial user attribute: its job's key, ``"SOURCE:SEED_INDEX"``.
CONFIRM_JOB_ATTR = "confirm_job"

#: The study user attribute that holds the supervised reference fitted at launch (JSON: see
#: :func:`sweep.train.reference.reference_result`), absent when launched with ``--reference none``.
REFERENCE_ATTR = "reference"
#: The supervised reference: L2-regularised logistic regression with this inverse strength C, on
#: the mean of each bin of this many columns (base pairs) of every mark section.
REFERENCE_C = 0.1
REFERENCE_BIN_WIDTH = 100
#: How ``sweep best`` names the reference (a column beside the notes' baseline).
REFERENCE_LABEL = "logistic, 100-bp bins"
#: Seconds the reference's child process may take at launch before it is given up (a warning).
REFERENCE_TIMEOUT_S = 600.0

#: Trial user attributes a worker writes (all JSON).
TRIAL_ATTRS = (
    "params_full",  # every TrialParams value, searched and fixed
    "metrics",  # flat scalar metrics on the validation split (sweep.train.metrics)
    "history",  # per-epoch curves: losses, KL, learning rate, objective per epoch
    "diagnostics",  # KL per latent dimension, latent normality, collapse flags
    "flags",  # collapse flags as text
    "seconds",  # wall time of the trial, child start-up included
    "train_seconds",  # the engine's own time: training and scoring
    "elbo_beta",  # kl_beta * n_features
    "epochs_run",
    "fail_reason",  # why a FAIL trial failed
    "prune_reason",  # why a PRUNED trial was pruned
    "worker",  # host:pid of the worker that ran it
    "cuda_visible_devices",  # the GPU(s) its worker was given (None: not set)
    "gpu",  # the same, as the GPU id its worker ran on (None: no --gpus)
    "trials_per_gpu",  # workers sharing that GPU (None: not started with --gpus)
    "timing",  # seconds per stage of the trial (benchmarks/trial_breakdown.py)
    "samples_artifact",  # artifact id of the latent/reconstruction sample
    "test_metrics",  # confirmation runs only: "test." + the metrics, on the test split
    "figure_sample",  # a small sample of codes and reconstructions (sweep.figure_data)
    "race_of",  # racing: an extra seed's configuration (trial number; sweep.seeds)
    "seed_index",  # racing: the extra seed's index; "seed" holds the seed it ran with
)
#: Large attributes that reports load only when asked.
BIG_ATTRS = ("history", "diagnostics", "figure_sample")

#: Heartbeat and reconnect defaults (seconds), the same for launch, worker and containers. The
#: reconnect timeout is the longest the default grace period covers (max_reconnect_timeout).
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
MAX_RETRY = 3
RECONNECT_TIMEOUT_S = float(GRACE_PERIOD_S - 2 * HEARTBEAT_INTERVAL_S)
WAIT_FOR_DB_S = 60.0


@dataclass(frozen=True)
class Heartbeat:
    """Optuna heartbeat settings shared by every worker of a study (stored with the study)."""

    interval_s: int = HEARTBEAT_INTERVAL_S
    grace_period_s: int = GRACE_PERIOD_S
    max_retry: int = MAX_RETRY


def max_reconnect_timeout(heartbeat: Heartbeat) -> float:
    """The longest reconnect timeout a study's grace period covers: grace - 2 x interval.

    During a database outage shorter than a worker's reconnect timeout its trial must not look
    stale to the others. The gap between two recorded heartbeats is then at most one interval
    (since the last beat) + the outage + one pause between retries (capped at the interval by
    :func:`sweep.store.rdb._retrying`), which stays below the grace period exactly when the
    reconnect timeout is at most ``grace - 2 * interval``.
    """
    return float(heartbeat.grace_period_s - 2 * heartbeat.interval_s)


def reconnect_timeout(requested: float | None, heartbeat: Heartbeat, study_name: str) -> float:
    """A worker's reconnect timeout: ``requested``, or the longest the study allows.

    Raises:
        OptionError: ``requested`` is longer than the study's grace period covers (exit 2).
    """
    limit = max_reconnect_timeout(heartbeat)
    if requested is None:
        return limit
    if requested > limit:
        raise OptionError(
            OPTIONS["reconnect_timeout_s"],
            f"{requested:g} is too long for study {study_name!r}: its grace period "
            f"({heartbeat.grace_period_s} s) must cover the reconnect timeout plus two heartbeat "
            f"intervals (2 x {heartbeat.interval_s} s); use at most {limit:g} s, or a study with "
            "a longer --grace-period",
        )
    return requested


#: Environment variables the CLI reads (``--storage``, the study ``NAME``/``--study``, ``--data``,
#: ``--max-seeds``).
STORAGE_ENV = "SWEEP_STORAGE"
STUDY_ENV = "SWEEP_STUDY"
DATA_ENV = "SWEEP_DATA"
MAX_SEEDS_ENV = "SWEEP_MAX_SEEDS"


# --- option rules: each default and range check, once ------------------------------------------

#: The rules of the options that settings, requests or readers share, by key: a settings field
#: where there is one (``n_trials``), else ``command.name`` (``confirm.top``). Options of one
#: command only, and every option's help text, are in :mod:`sweep.cli_options`.
OPTIONS: dict[str, Option] = {
    # what a study is (sweep.run.launch.LaunchRequest)
    "study_name": Option("--study", "study_name", "notes"),
    "space": Option("--space", "space", "notes"),
    "objective": Option("--objective", "objective", None),
    "reference": Option("--reference", "reference", "logistic", choices=("logistic", "none")),
    # None: 1 where weights can be kept (sweep.run.launch.LaunchRequest.keep_weights), else 0
    "keep_weights": Option("--keep-weights", "keep_weights", None, int, minimum=0),
    # the study's settings (StudySettings)
    "n_trials": Option("--n-trials", "n_trials", 8, int, minimum=1),
    "sampler": Option("--sampler", "sampler", "tpe", choices=SAMPLERS),
    "pruner": Option("--pruner", "pruner", "median", choices=PRUNERS),
    "seed": Option("--seed", "seed", 0, int),
    "val_fraction": Option("--val-fraction", "val_fraction", 0.2, float),
    "test_fraction": Option("--test-fraction", "test_fraction", 0.2, float, minimum=0.0),
    "split_seed": Option("--split-seed", "split_seed", 0, int),
    "heartbeat_interval_s": Option(
        "--heartbeat-interval", "heartbeat_interval_s", HEARTBEAT_INTERVAL_S, int
    ),
    "grace_period_s": Option("--grace-period", "grace_period_s", GRACE_PERIOD_S, int),
    "max_consecutive_failures": Option(
        "--max-consecutive-failures", "max_consecutive_failures", 5, int, minimum=1
    ),
    "max_seeds": Option("--max-seeds", "max_seeds", 3, int, minimum=1),
    "budget_epochs": Option("--budget-epochs", "budget_epochs", None, int, minimum=1),
    # how workers run here (RunOptions) and one worker process
    "workers": Option("--workers", "workers", 1, int, minimum=1),
    "trials_per_gpu": Option("--trials-per-gpu", "trials_per_gpu", 1, int, minimum=1),
    "gpu_memory_mb": Option("--gpu-memory-mb", "gpu_memory_mb", None, int, minimum=1),
    "timeout_s": Option("--timeout", "timeout_s", None, float, minimum=0, positive=True),
    "reconnect_timeout_s": Option(
        "--reconnect-timeout", "reconnect_timeout_s", None, float, minimum=0, positive=True
    ),
    # read-only commands and confirmation runs (sweep.store.read, sweep.store.confirm)
    "top": Option("--top", "top", 5, int, minimum=1),
    "confirm.top": Option("--top", "top", 3, int, minimum=1),
    "confirm.seeds": Option("--seeds", "seeds", 3, int, minimum=1),
}


def check(key: str, value: Any) -> None:
    """Check ``value`` against option ``key``'s rule.

    Raises:
        OptionError: naming the option's flag, the rule and the value.
    """
    OPTIONS[key].check(value)


def _default(key: str) -> Any:
    return OPTIONS[key].default


# --- frozen settings ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StudySettings:
    """What a user chooses about a study: budget, sampler, pruner, split and heartbeat.

    Defaults come from :data:`OPTIONS`; each field that has an option is checked by that
    option's rule on construction (also by :meth:`dataclasses.replace`).

    Raises:
        OptionError: a value breaks its option's rule (e.g. ``n_trials < 1``).
        UsageError: the grace period is not longer than two heartbeat intervals (it must leave
            a worker some reconnect timeout: :func:`max_reconnect_timeout`).
    """

    n_trials: int = _default("n_trials")
    seed: int = _default("seed")
    sampler: str = _default("sampler")
    pruner: str = _default("pruner")
    val_fraction: float = _default("val_fraction")
    test_fraction: float = _default("test_fraction")
    split_seed: int = _default("split_seed")
    heartbeat_interval_s: int = _default("heartbeat_interval_s")
    grace_period_s: int = _default("grace_period_s")
    max_retry: int = MAX_RETRY
    max_consecutive_failures: int = _default("max_consecutive_failures")
    max_seeds: int = _default("max_seeds")
    budget_epochs: int | None = _default("budget_epochs")

    def __post_init__(self) -> None:
        for name in _SETTING_NAMES:
            if name in OPTIONS:
                OPTIONS[name].check(getattr(self, name))
        if self.heartbeat_interval_s < 1 or self.grace_period_s <= 2 * self.heartbeat_interval_s:
            raise UsageError(
                "the heartbeat interval must be >= 1 s and the grace period longer than two "
                "intervals (the rest is the workers' reconnect timeout), got "
                f"--heartbeat-interval {self.heartbeat_interval_s} and --grace-period "
                f"{self.grace_period_s}"
            )

    def settings(self) -> StudySettings:
        """Only the settings (drops what a :class:`StudyConfig` adds)."""
        return StudySettings(**{name: getattr(self, name) for name in _SETTING_NAMES})


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(StudySettings))


@dataclass(frozen=True, kw_only=True)
class StudyConfig(StudySettings):
    """Everything a worker needs to run trials of a study, stored in the study itself.

    Saved as JSON under the study user attribute :data:`STUDY_ATTR`; any worker that reaches
    the storage rebuilds the sweep from it.

    Attributes:
        space: The search space's JSON form (:meth:`sweep.space.SearchSpace.to_json`), with
            any ``--set`` values already applied as fixed values.
        space_fingerprint: Its SHA-256; ``resume`` and ``launch`` refuse a changed space.
        data_path: The data file's absolute path when the study was created.
        data_sha256: The data file's SHA-256; workers refuse a different file.
        data_summary: Rows, features and split sizes (:meth:`sweep.train.data.Dataset.summary`).
        split_sha256: Hash of the split's row indices (:func:`sweep.train.data.split_digest`);
            workers refuse to run trials on a different split. Empty for older studies.
        artifacts_dir: The study's artifact folder (per-trial samples, kept weights): a key
            relative to the artifact root beside the SQLite file (``NAME`` for
            ``sweep.db.artifacts/NAME``), or an absolute path (``--artifacts DIR``, and older
            studies); read through :func:`sweep.store.artifacts.locate`. ``None``: not kept.
        baseline: The baseline enqueued as trial 0 (a :data:`sweep.params.BASELINES` name,
            marked on its trial by the user attribute :data:`BASELINE_ATTR`), or ``None``.
        baseline_params: The searched values it was enqueued with (switches included).
        baseline_differs: ``{name: [study value, baseline value]}`` for the fixed values of the
            space (``--set`` included) that the baseline takes as the study says, not as the
            baseline has them; empty when the study runs it exactly.
        keep_weights: How many of the best trials keep their weights in the artifact store
            (``launch --keep-weights K``; 0: none).
        sweep_version: The version of `sweep` that created the study.
        hypermodel: For a study of a user's KerasTuner hypermodel (``launch --hypermodel``):
            its reference, file SHA-256, objective, ``--set`` values, fit settings and the space
            its dry build declared (:mod:`sweep.run.hypermodel`); ``None`` for the built-in VAE.
    """

    space: dict[str, Any]
    space_fingerprint: str
    data_path: str
    data_sha256: str
    data_summary: dict[str, Any] = field(default_factory=dict)
    split_sha256: str = ""
    artifacts_dir: str | None = None
    baseline: str | None = None
    baseline_params: dict[str, Any] = field(default_factory=dict)
    baseline_differs: dict[str, Any] = field(default_factory=dict)
    keep_weights: int = 0
    sweep_version: str = __version__
    hypermodel: dict[str, Any] | None = None

    @property
    def search_space(self) -> SearchSpace:
        """The space, parsed and validated again."""
        from sweep.space import SearchSpace

        return SearchSpace.from_mapping(self.space, source="the study's search space")

    @property
    def heartbeat(self) -> Heartbeat:
        """The study's Optuna heartbeat settings."""
        return Heartbeat(self.heartbeat_interval_s, self.grace_period_s, self.max_retry)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the study user attribute holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudyConfig:
        """Rebuild from :meth:`to_json` output; unknown keys (e.g. the old ``overrides``) are
        ignored, and a study from before racing keeps one seed per trial."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{"max_seeds": 1, **{k: v for k, v in data.items() if k in names}})

    def replace(self, **changes: Any) -> StudyConfig:
        """A copy with ``changes`` applied (and checked again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunOptions:
    """How to run a study's workers on this machine (not stored with the study).

    Raises:
        OptionError: ``workers < 1``, ``timeout_s <= 0``, ``trials_per_gpu < 1`` or
            ``gpu_memory_mb < 1``.
    """

    workers: int = _default("workers")
    gpus: tuple[str, ...] = ()
    timeout_s: float | None = _default("timeout_s")
    data_path: str | None = None
    trials_per_gpu: int = _default("trials_per_gpu")
    gpu_memory_mb: int | None = None
    spare: bool = True

    def __post_init__(self) -> None:
        OPTIONS["workers"].check(self.workers)
        OPTIONS["timeout_s"].check(self.timeout_s)
        OPTIONS["trials_per_gpu"].check(self.trials_per_gpu)
        OPTIONS["gpu_memory_mb"].check(self.gpu_memory_mb)


def study_config(space: Mapping[str, Any] | SearchSpace, **fields: Any) -> StudyConfig:
    """A complete :class:`StudyConfig` for ``space``, for tests and benchmarks.

    The fingerprint is computed from ``space``; every other field not given takes its
    default: the :class:`StudySettings` defaults, ``data_path="data.npz"``,
    ``data_sha256="0" * 64``, an empty ``data_summary`` and no artifacts directory.

    Args:
        space: A :class:`sweep.space.SearchSpace` or a mapping in the space-file form.
        **fields: Any :class:`StudyConfig` field, e.g. ``n_trials=20, pruner="none"``.

    Raises:
        SpaceError: ``space`` is not a valid search space.
        OptionError, UsageError: a field breaks its rule.
    """
    from sweep.space import SearchSpace

    parsed = (
        space
        if isinstance(space, SearchSpace)
        else SearchSpace.from_mapping(space, source="study_config")
    )
    values: dict[str, Any] = {
        "space": parsed.to_json(),
        "space_fingerprint": parsed.fingerprint(),
        "data_path": "data.npz",
        "data_sha256": "0" * 64,
        **fields,
    }
    return StudyConfig(**values)
