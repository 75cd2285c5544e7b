"""Configuration, once: names, defaults, option rules and the frozen study and run settings.

* Names every layer shares: trial states, samplers, pruners, attribute keys, timing defaults.
* :data:`OPTIONS`: each command-line option's flag, default, help text and range check.
  :mod:`sweep.cli` builds its Click options from this table; nothing restates a default.
* :class:`StudySettings` (what a user chooses about a study), :class:`StudyConfig` (those
  settings plus the space and the data, stored in the study itself) and :class:`RunOptions`
  (how workers run on this machine): frozen, defaults from :data:`OPTIONS`, checked on
  construction by the same rules the CLI applies.
* :func:`study_config`: a complete :class:`StudyConfig` from a space and a few fields (tests,
  benchmarks).

Standard library only at import time (the CLI imports this module before any command runs);
:mod:`sweep.space` and :mod:`sweep.store.rdb` are imported inside the methods that need them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sweep import __version__
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

#: The study user attribute that holds the supervised reference fitted at launch (JSON: see
#: :func:`sweep.train.reference.reference_result`), absent when launched with ``--reference none``.
REFERENCE_ATTR = "reference"
#: A companion study's user attribute: ``{"source": NAME, "jobs": [job, ...]}`` (sweep confirm).
CONFIRM_ATTR = "sweep_confirm"
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
)
#: The attributes the engine's result provides (recorded as they come from the child).
RESULT_ATTRS = (
    "metrics",
    "history",
    "diagnostics",
    "flags",
    "seconds",
    "train_seconds",
    "elbo_beta",
    "epochs_run",
    "figure_sample",
)
#: Large attributes that reports load only when asked.
BIG_ATTRS = ("history", "diagnostics", "figure_sample")

#: Headline metrics also stored as scalar trial user attributes (so optuna-dashboard can list
#: and plot them): attribute name -> metric key.
HEADLINE_ATTRS = {
    "f1": "expression.f1",
    "f1_hidden": "expression_hidden.f1_at_threshold",
    "section_score": "sections.mean_auprc_lift",
    "active_units": "latent.active_units",
    "kl": "latent.kl_mean",
}

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


#: Environment variables the CLI reads (``--storage``, the study ``NAME``/``--study``, ``--data``).
STORAGE_ENV = "SWEEP_STORAGE"
STUDY_ENV = "SWEEP_STUDY"
DATA_ENV = "SWEEP_DATA"
#: Output formats of the read-only commands (``status`` has no CSV).
FORMATS = ("table", "json", "csv")


# --- options: each default, help text and range check, once ------------------------------------


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag, default, help and the one check of its value.

    The CLI turns each into a Click option (:mod:`sweep.cli`); the frozen settings below take
    their defaults from here and run :meth:`check` on construction, so a value set from Python
    meets the same rule as one typed on the command line.

    Attributes:
        flag: The option's name on the command line, e.g. ``--n-trials``.
        dest: The Python name the value is passed as (a settings field where there is one).
        default: Its default (``None``: not given).
        help: Help text (``--help``).
        type: ``int``, ``float``, ``str`` or ``bool`` (``bool`` makes a flag).
        minimum: Smallest accepted value (with ``positive``: values must be above it).
        positive: The value must be > ``minimum`` rather than >=.
        choices: The accepted values, if a fixed list.
        envvar: Environment variable read when the option is not given.
        metavar: Placeholder shown by ``--help``.
        show_default: Whether ``--help`` shows the default.
        required: The option must be given.
        multiple: The option may repeat (the value is a tuple).
        hidden: Left out of ``--help``.
        case_sensitive: Whether ``choices`` match case-sensitively.
        file: The value is a file path (not a directory).
    """

    flag: str
    dest: str
    default: Any = None
    help: str | None = None
    type: type = str
    minimum: float | None = None
    positive: bool = False
    choices: tuple[str, ...] | None = None
    envvar: str | None = None
    metavar: str | None = None
    show_default: bool = False
    required: bool = False
    multiple: bool = False
    hidden: bool = False
    case_sensitive: bool = True
    file: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not accepted (without the flag), or ``None`` when it is."""
        if value is None:
            return None
        if self.multiple:
            return next((p for p in map(self._problem, value) if p is not None), None)
        return self._problem(value)

    def _problem(self, value: Any) -> str | None:
        if self.choices is not None and not self._is_choice(value):
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.minimum is None:
            return None
        if self.positive and not value > self.minimum:
            return f"must be a positive number of seconds, got {value}"
        if not self.positive and value < self.minimum:
            return f"must be at least {self.minimum:g}, got {value}"
        return None

    def _is_choice(self, value: Any) -> bool:
        assert self.choices is not None
        if self.case_sensitive:
            return value in self.choices
        return str(value).upper() in {c.upper() for c in self.choices}

    def check(self, value: Any) -> None:
        """Raise :class:`OptionError` when ``value`` is out of range or not a choice."""
        reason = self.problem(value)
        if reason is not None:
            raise OptionError(self, reason)


class OptionError(UsageError):
    """A value breaks its option's rule; the message starts with the option's flag.

    Attributes:
        option: The option whose rule was broken.
        reason: The rule and the received value, e.g. ``must be at least 1, got 0``.
    """

    def __init__(self, option: Option, reason: str) -> None:
        super().__init__(f"{option.flag} {reason}")
        self.option = option
        self.reason = reason


_SECONDS = "SECONDS"
_BUNDLED_DATA_HELP = "Data file (.npz; env SWEEP_DATA); default: the bundled K562 data."
_COPY_DATA_HELP = "Local copy of the study's data file (same SHA-256; env SWEEP_DATA)."

#: Every option of every command, by key. A key names a settings field where there is one
#: (``n_trials``), else ``command.name`` when commands differ (``resume.n_trials``).
OPTIONS: dict[str, Option] = {
    # where
    "storage": Option(
        "--storage",
        "storage",
        envvar=STORAGE_ENV,
        metavar="URL",
        help="Study database (default sqlite:///sweep.db; env SWEEP_STORAGE). Put passwords "
        "in the environment variable, not on the command line.",
    ),
    "study_name": Option(
        "--study",
        "study_name",
        default="notes",
        envvar=STUDY_ENV,
        show_default=True,
        help="Study name (env SWEEP_STUDY).",
    ),
    "space": Option(
        "--space",
        "space",
        default="notes",
        show_default=True,
        help="Search-space YAML file, or a bundled one: notes, notes_wide, notes_pareto, tiny.",
    ),
    "data": Option("--data", "data", envvar=DATA_ENV, help=_BUNDLED_DATA_HELP, file=True),
    "worker.data": Option("--data", "data", envvar=DATA_ENV, help=_COPY_DATA_HELP, file=True),
    # a user's KerasTuner hypermodel (sweep.run.hypermodel)
    "hypermodel": Option(
        "--hypermodel",
        "hypermodel",
        metavar="MODULE:ATTR",
        help="Sweep a KerasTuner build_model(hp) function or HyperModel (module:attr or "
        "path/to/file.py:attr) instead of the built-in VAE; --space is then ignored.",
    ),
    "objective": Option(
        "--objective",
        "objective",
        default="val_loss",
        show_default=True,
        help="With --hypermodel: the Keras metric to optimise, as KerasTuner's objective=.",
    ),
    "direction": Option(
        "--direction",
        "direction",
        choices=("minimize", "maximize"),
        help="With --hypermodel: the objective's direction (default: maximize for metrics "
        "named like accuracy/auc, else minimize).",
    ),
    # the study's settings (StudySettings)
    "n_trials": Option(
        "--n-trials",
        "n_trials",
        default=8,
        type=int,
        minimum=1,
        show_default=True,
        help="Budget: finished trials across all workers.",
    ),
    "resume.n_trials": Option(
        "--n-trials", "n_trials", type=int, minimum=1, help="Raise the study's budget to N."
    ),
    "sampler": Option("--sampler", "sampler", default="tpe", choices=SAMPLERS, show_default=True),
    "pruner": Option("--pruner", "pruner", default="median", choices=PRUNERS, show_default=True),
    "seed": Option("--seed", "seed", default=0, type=int, show_default=True, help="Sampler seed."),
    "val_fraction": Option(
        "--val-fraction",
        "val_fraction",
        default=0.2,
        type=float,
        show_default=True,
        help="Validation share when the data file has no split.",
    ),
    "test_fraction": Option(
        "--test-fraction",
        "test_fraction",
        default=0.2,
        type=float,
        minimum=0.0,
        show_default=True,
        help="Test share held out from every trial when the data file has no split (0: none).",
    ),
    "split_seed": Option("--split-seed", "split_seed", default=0, type=int, show_default=True),
    "heartbeat_interval_s": Option(
        "--heartbeat-interval",
        "heartbeat_interval_s",
        default=HEARTBEAT_INTERVAL_S,
        type=int,
        metavar=_SECONDS,
        show_default=True,
    ),
    "grace_period_s": Option(
        "--grace-period",
        "grace_period_s",
        default=GRACE_PERIOD_S,
        type=int,
        metavar=_SECONDS,
        show_default=True,
        help="A trial without a heartbeat for this long is failed and retried.",
    ),
    "max_consecutive_failures": Option(
        "--max-consecutive-failures",
        "max_consecutive_failures",
        default=5,
        type=int,
        minimum=1,
        show_default=True,
    ),
    "artifacts_dir": Option(
        "--artifacts",
        "artifacts_dir",
        metavar="DIR",
        help="Where per-trial samples go (default: beside a SQLite file; none otherwise).",
    ),
    "force_new": Option(
        "--force-new",
        "force_new",
        default=False,
        type=bool,
        help="If NAME exists with another space or data, create NAME-2 instead of failing.",
    ),
    "baseline": Option(
        "--baseline",
        "baseline",
        choices=("notes", "none"),
        help="Enqueue this configuration as trial 0 (notes: the notes' own); default: the "
        "space's baseline key (notes for the notes' spaces), none: no baseline.",
    ),
    "reference": Option(
        "--reference",
        "reference",
        default="logistic",
        choices=("logistic", "none"),
        show_default=True,
        help="Fit the supervised reference when the study is created (logistic regression on "
        "100-bp bin densities; seconds); none: skip it.",
    ),
    "no_run": Option(
        "--no-run",
        "no_run",
        default=False,
        type=bool,
        help="Create the study and exit (workers join later).",
    ),
    "assignments": Option(
        "--set",
        "assignments",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override a value of the space for this study (repeatable), e.g. epochs=2.",
    ),
    "keep_weights": Option(
        "--keep-weights",
        "keep_weights",
        default=0,
        type=int,
        minimum=0,
        show_default=True,
        metavar="K",
        help="Keep the weights of the K best trials in the artifact store (for `sweep export`).",
    ),
    # how workers run here (RunOptions)
    "workers": Option(
        "--workers",
        "workers",
        default=1,
        type=int,
        minimum=1,
        show_default=True,
        help="Local worker processes (ignored with --gpus).",
    ),
    "gpus": Option(
        "--gpus",
        "gpus",
        metavar="IDS",
        help="One worker per listed GPU, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES); repeat an id "
        "(0,0,1,1) for several workers on one GPU.",
    ),
    "trials_per_gpu": Option(
        "--trials-per-gpu",
        "trials_per_gpu",
        default=1,
        type=int,
        minimum=1,
        metavar="K",
        help="Workers (so trials at once) per listed GPU; each allocates GPU memory on demand.",
    ),
    "gpu_memory_mb": Option(
        "--gpu-memory-mb",
        "gpu_memory_mb",
        type=int,
        minimum=1,
        metavar="MIB",
        help="Cap each trial process at this much GPU memory instead of growing on demand.",
    ),
    "no_spare": Option(
        "--no-spare",
        "no_spare",
        default=False,
        type=bool,
        help="Start each trial's process when the trial starts, with no warm spare waiting "
        "(saves the spare's memory: TensorFlow plus the data).",
    ),
    "timeout_s": Option(
        "--timeout",
        "timeout_s",
        type=float,
        minimum=0,
        positive=True,
        metavar=_SECONDS,
        help="Claim no new trial after this many seconds.",
    ),
    # one worker process
    "wait_for_db_s": Option(
        "--wait-for-db",
        "wait_for_db_s",
        default=WAIT_FOR_DB_S,
        type=float,
        metavar=_SECONDS,
        show_default=True,
        help="Keep retrying an unreachable database this long before giving up.",
    ),
    "reconnect_timeout_s": Option(
        "--reconnect-timeout",
        "reconnect_timeout_s",
        type=float,
        minimum=0,
        positive=True,
        metavar=_SECONDS,
        help="Once running, retry a lost database this long, then exit (the trial is retried). "
        "At most, and by default, the study's grace period minus two heartbeat intervals "
        f"({RECONNECT_TIMEOUT_S:g} s with the default heartbeat).",
    ),
    "worker_index": Option("--worker-index", "worker_index", type=int, hidden=True),
    # one trial
    "trial.assignments": Option(
        "--set",
        "assignments",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a hyperparameter (repeatable), e.g. --set coding_size=150.",
    ),
    "trial.epochs": Option("--epochs", "epochs", type=int, minimum=1, help="Training epochs."),
    "trial.seed": Option("--seed", "seed", type=int, help="Seed for weights, noise and batches."),
    "as_json": Option(
        "--json", "as_json", default=False, type=bool, help="Print every metric as JSON."
    ),
    "score_test": Option(
        "--score-test",
        "score_test",
        default=False,
        type=bool,
        help="Also score the test split (never used by a sweep); keys test.*.",
    ),
    "trial.params_file": Option(
        "--params",
        "params_file",
        metavar="FILE",
        file=True,
        help="Hyperparameters from a YAML/JSON file of TrialParams fields (`sweep export` "
        "writes one); --set and --epochs apply on top.",
    ),
    "trial.from_trial": Option(
        "--from",
        "from_trial",
        metavar="NAME:N",
        help="Re-run trial N of study NAME with its stored parameters, data file and split.",
    ),
    # export
    "export.trial": Option(
        "--trial", "trial", type=int, minimum=0, metavar="N", help="Trial number (default: best)."
    ),
    "export.out": Option("--out", "out", required=True, metavar="DIR", help="Output folder."),
    "force": Option(
        "--force", "force", default=False, type=bool, help="Overwrite an existing output folder."
    ),
    # live status
    "watch": Option(
        "--watch", "watch", default=False, type=bool, help="Refresh until Ctrl-C (a live table)."
    ),
    "interval_s": Option(
        "--interval",
        "interval_s",
        default=2.0,
        type=float,
        minimum=0,
        positive=True,
        metavar=_SECONDS,
        show_default=True,
        help="Seconds between refreshes with --watch.",
    ),
    "count": Option(
        "--count", "count", type=int, minimum=1, metavar="N", help="Stop --watch after N frames."
    ),
    # read-only commands
    "top": Option("--top", "top", default=5, type=int, minimum=1, show_default=True),
    "as_hyperparameters": Option(
        "--as-hyperparameters",
        "as_hyperparameters",
        metavar="FILE",
        file=True,
        help="Also write the best trial as a keras_tuner.HyperParameters config (JSON), for "
        "hypermodel.build(HyperParameters.from_config(...)).",
    ),
    "fmt": Option("--format", "fmt", default="table", choices=FORMATS, show_default=True),
    "status.fmt": Option(
        "--format", "fmt", default="table", choices=("table", "json"), show_default=True
    ),
    "states": Option(
        "--state",
        "states",
        multiple=True,
        choices=STATES,
        case_sensitive=False,
        help="Only trials in this state (repeatable).",
    ),
    # confirmation runs (sweep confirm, launch --confirm-top)
    "confirm.top": Option(
        "--top",
        "top",
        default=3,
        type=int,
        minimum=1,
        show_default=True,
        help="Confirm this many best trials (several objectives: spread over the Pareto set).",
    ),
    "confirm.seeds": Option(
        "--seeds",
        "seeds",
        default=3,
        type=int,
        minimum=1,
        show_default=True,
        help="Fresh seeds per confirmed trial (the baseline is always confirmed too).",
    ),
    "confirm_top": Option(
        "--confirm-top",
        "confirm_top",
        type=int,
        minimum=1,
        metavar="K",
        help="When the budget is spent, confirm the K best trials (see `sweep confirm`).",
    ),
    "confirm_seeds": Option(
        "--confirm-seeds",
        "confirm_seeds",
        default=3,
        type=int,
        minimum=1,
        show_default=True,
        help="Seeds per trial for --confirm-top.",
    ),
    "by": Option(
        "--by",
        "by",
        default="value",
        choices=("value", "confirmed"),
        show_default=True,
        help="Rank by the trial's own value, or by its confirmed validation mean.",
    ),
    # data files
    "synth.rows": Option("--rows", "rows", type=int, minimum=1, required=True),
    "synth.out": Option("--out", "out", required=True, file=True),
    "synth.seed": Option("--seed", "seed", default=0, type=int, show_default=True),
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
        artifacts_dir: Where per-trial samples go (``None``: not kept).
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
        ignored, so studies written by older versions still load."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

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
