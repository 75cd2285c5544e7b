"""The ``sweep`` command line's options, each with its help text, as Click decorators.

An option that a setting shares takes its flag, default and range check from
:data:`sweep.config.OPTIONS` (so a default is never restated); the others carry their rule
here. :mod:`sweep.cli` stacks these decorators on its commands. Click, the standard library
and sweep's leaf modules only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

import click

from sweep._option import Option
from sweep.config import DATA_ENV
from sweep.config import MAX_SEEDS_ENV
from sweep.config import OPTIONS
from sweep.config import RECONNECT_TIMEOUT_S
from sweep.config import STATES
from sweep.config import STORAGE_ENV
from sweep.config import STUDY_ENV
from sweep.config import WAIT_FOR_DB_S
from sweep.errors import UsageError
from sweep.present.formatting import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
_SECONDS = "SECONDS"


def option(
    rule: Option | str,
    help: str | None = None,
    *,
    metavar: str | None = None,
    envvar: str | None = None,
    show_default: bool = False,
    required: bool = False,
    hidden: bool = False,
    file: bool = False,
) -> Callable[[F], F]:
    """The Click option for ``rule`` (or ``OPTIONS[rule]``): its flag, default, type and range
    check, with the help and display settings given here."""
    spec = OPTIONS[rule] if isinstance(rule, str) else rule
    if spec.type is bool:
        return click.option(spec.flag, spec.dest, is_flag=True, help=help)
    kind: Any = spec.type
    if spec.choices is not None:
        kind = click.Choice(spec.choices, case_sensitive=spec.case_sensitive)
    elif file:
        kind = click.Path(dir_okay=False)

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        reason = spec.problem(value)
        if reason is not None:
            raise click.BadParameter(reason, ctx=ctx, param=param)
        return value

    # Click 8.3+ takes an explicit default=None as a value: a required option would never be
    # missing, so None is passed as no default at all.
    default = {} if spec.default is None else {"default": spec.default}
    return click.option(
        spec.flag,
        spec.dest,
        type=kind,
        **default,
        help=help,
        envvar=envvar,
        metavar=metavar,
        show_default=show_default,
        required=required,
        multiple=spec.multiple,
        hidden=hidden,
        callback=check if spec.minimum is not None else None,
    )


def flag(name: str, dest: str, help: str) -> Callable[[F], F]:
    """A boolean flag (default off)."""
    return option(Option(name, dest, False, bool), help)


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` as if stacked in this order (first on top)."""

    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def given(ctx: click.Context, name: str) -> bool:
    """Whether the option ``name`` was given (command line or environment), not defaulted."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


study_argument = click.argument("name", envvar=STUDY_ENV, metavar="NAME")
#: NAME for the read-only commands: optional when the storage holds one study.
optional_study_argument = click.argument(
    "name", envvar=STUDY_ENV, metavar="[NAME]", required=False
)

# --- where --------------------------------------------------------------------------------------
storage = option(
    Option("--storage", "storage"),
    "Study database (default sqlite:///sweep.db; env SWEEP_STORAGE). Put passwords in the "
    "environment variable, not on the command line.",
    envvar=STORAGE_ENV,
    metavar="URL",
)
data = option(
    Option("--data", "data"),
    "Data file (.npz; env SWEEP_DATA); default: the bundled K562 data.",
    envvar=DATA_ENV,
    file=True,
)
copy_data = option(
    Option("--data", "data"),
    "Local copy of the study's data file (same SHA-256; env SWEEP_DATA).",
    envvar=DATA_ENV,
    file=True,
)
study_name = option("study_name", "Study name (env SWEEP_STUDY).", envvar=STUDY_ENV,
                    show_default=True)  # fmt: skip
fmt = option(Option("--format", "fmt", "table", choices=FORMATS), show_default=True)
force = flag("--force", "force", "Overwrite an existing output folder.")
no_run = flag("--no-run", "no_run", "Create the study and exit (workers join later).")
split = stack(
    option("val_fraction", "Validation share when the data file has no split.",
           show_default=True),
    option("test_fraction", "Test share held out from every trial when the data file has no "
           "split (0: none).", show_default=True),
    option("split_seed", show_default=True),
)  # fmt: skip

# --- one trial (sweep trial) --------------------------------------------------------------------
trial_options = stack(
    data,
    option(Option("--set", "assignments", multiple=True),
           "Set a hyperparameter (repeatable), e.g. --set coding_size=150.",
           metavar="NAME=VALUE"),
    option(Option("--epochs", "epochs", None, int, minimum=1), "Training epochs."),
    option(Option("--seed", "seed", None, int), "Seed for weights, noise and batches."),
    split,
    flag("--score-test", "score_test",
         "Also score the test split (never used by a sweep); keys test.*."),
    flag("--json", "as_json", "Print every metric as JSON."),
    option(Option("--params", "params_file"),
           "Hyperparameters from a YAML/JSON file of TrialParams fields (`sweep export` writes "
           "one); --set and --epochs apply on top.", metavar="FILE", file=True),
    option(Option("--from", "from_trial"),
           "Re-run trial N of study NAME with its stored parameters, data file and split.",
           metavar="NAME:N"),
    storage,
)  # fmt: skip

# --- how workers run here (RunOptions) ----------------------------------------------------------
timeout = option("timeout_s", "Claim no new trial after this many seconds.", metavar=_SECONDS)
no_spare = flag(
    "--no-spare",
    "no_spare",
    "Start each trial's process when the trial starts, with no warm spare waiting (saves the "
    "spare's memory: TensorFlow plus the data).",
)
run_options = stack(
    option("workers", "Local worker processes (ignored with --gpus).", show_default=True),
    option(Option("--gpus", "gpus"),
           "One worker per listed GPU, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES); repeat an id "
           "(0,0,1,1) for several workers on one GPU.", metavar="IDS"),
    timeout,
    option("trials_per_gpu", "Workers (so trials at once) per listed GPU; each allocates GPU "
           "memory on demand.", metavar="K"),
    option("gpu_memory_mb", "Cap each trial process at this much GPU memory instead of "
           "growing on demand.", metavar="MIB"),
    no_spare,
)  # fmt: skip

# --- sweep launch -------------------------------------------------------------------------------
VAE_ONLY = ("space", "baseline", "reference", "keep_weights")
launch_options = stack(
    option("space", "Search-space YAML file, or a bundled one: notes, notes_wide, "
           "notes_pareto, tiny.", show_default=True),
    data,
    study_name,
    storage,
    option("n_trials", "Budget: finished trials across all workers.", show_default=True),
    run_options,
    option("sampler", show_default=True),
    option("pruner", show_default=True),
    option("seed", "Sampler seed.", show_default=True),
    option(Option("--set", "assignments", multiple=True),
           "Override a value of the space for this study (repeatable), e.g. epochs=2; with "
           "--hypermodel: fix a hyperparameter, or set epochs/batch_size.",
           metavar="NAME=VALUE"),
    split,
    option("heartbeat_interval_s", metavar=_SECONDS, show_default=True),
    option("grace_period_s", "A trial without a heartbeat for this long is failed and "
           "retried.", metavar=_SECONDS, show_default=True),
    option("max_consecutive_failures", show_default=True),
    option("max_seeds", "Racing: a configuration close to the best gets up to N seeds, and "
           "trials are ranked by their seed mean; 1: one seed per trial.", metavar="N",
           envvar=MAX_SEEDS_ENV, show_default=True),
    option("budget_epochs", "Also stop once trials have trained this many epochs in all "
           "(seeds and pruned trials included).", metavar="E"),
    option(Option("--artifacts", "artifacts_dir"),
           "Artifact root for per-trial samples and kept weights: the study's folder is "
           "DIR/NAME (default: beside a SQLite file, sweep.db.artifacts/NAME, found again "
           "beside a copied or moved file; none for PostgreSQL).", metavar="DIR"),
    flag("--force-new", "force_new",
         "If NAME exists with another space or data, create NAME-2 instead of failing."),
    option(Option("--baseline", "baseline", choices=("notes", "none")),
           "Enqueue this configuration as trial 0 (notes: the notes' own); default: the "
           "space's baseline key (notes for the notes' spaces), none: no baseline."),
    option("reference", "Fit the supervised reference when the study is created (logistic "
           "regression on 100-bp bin densities; seconds); none: skip it.", show_default=True),
    no_run,
    option(Option("--confirm-top", "confirm_top", None, int, minimum=1),
           "When the budget is spent, confirm the K best trials (see `sweep confirm`).",
           metavar="K"),
    option(Option("--confirm-seeds", "confirm_seeds", 3, int, minimum=1),
           "Seeds per trial for --confirm-top.", show_default=True),
    option(Option("--hypermodel", "hypermodel"),
           "Sweep a KerasTuner build_model(hp) function or HyperModel (module:attr or "
           "path/to/file.py:attr) instead of the built-in VAE; --space, --baseline, "
           "--reference and --keep-weights are then refused.", metavar="MODULE:ATTR"),
    option("objective", "Optimise this one metric instead of the space's objective: a VAE "
           "metric (`sweep metrics`), or with --hypermodel a Keras metric as KerasTuner's "
           "objective= (default there: val_loss).", metavar="METRIC"),
    option(Option("--direction", "direction", choices=("minimize", "maximize")),
           "The --objective's direction (default: its natural one: minimize errors and "
           "losses, maximize accuracy, AUROC, F1 and the like)."),
    option("keep_weights", "Keep the weights of the K best trials in the artifact store (for "
           "`sweep export`); older ones are deleted as better trials finish. Default: 1 where "
           "weights can be kept (one objective, an artifact store), else 0.", metavar="K"),
)  # fmt: skip


def refuse_inapplicable(ctx: click.Context, hypermodel: str | None) -> None:
    """Refuse ``launch`` options the trial kind would ignore (one line, exit 1).

    A hypermodel has no space, notes' baseline, supervised reference or kept weights.

    Raises:
        UsageError: naming the options given and what to do instead.
    """
    if hypermodel is None:
        return
    values = ctx.params
    wrong = [n for n in VAE_ONLY if given(ctx, n) and values.get(n) not in ("none", 0)]
    why = "only to the built-in VAE, not with --hypermodel"
    if wrong:
        flags = ", ".join(_flag(ctx, n) for n in wrong)
        raise UsageError(f"{flags} {'applies' if len(wrong) == 1 else 'apply'} {why}")


def _flag(ctx: click.Context, name: str) -> str:
    return next(p.opts[0] for p in ctx.command.params if p.name == name)


# --- one worker process (sweep worker) ----------------------------------------------------------


def default_worker_index() -> int:
    """``--worker-index`` when not given: a sampler-seed index unique to this process and host.

    Not the PID alone: containers and pods number their processes from 1, so every replica would
    seed its sampler alike and propose the same parameters.
    """
    import os
    import socket
    import zlib

    return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) & 0x7FFFFFFF


worker_options = stack(
    storage,
    copy_data,
    timeout,
    option(Option("--wait-for-db", "wait_for_db_s", WAIT_FOR_DB_S, float),
           "Keep retrying an unreachable database this long before giving up.",
           metavar=_SECONDS, show_default=True),
    option("reconnect_timeout_s",
           "Once running, retry a lost database this long, then exit (the trial is retried). "
           "At most, and by default, the study's grace period minus two heartbeat intervals "
           f"({RECONNECT_TIMEOUT_S:g} s with the default heartbeat).", metavar=_SECONDS),
    option(Option("--worker-index", "worker_index", default_worker_index, int), hidden=True),
    no_spare,
)  # fmt: skip
resume_n_trials = option(
    Option("--n-trials", "n_trials", None, int, minimum=1), "Raise the study's budget to N."
)

# --- read-only commands -------------------------------------------------------------------------
status_options = stack(
    storage,
    option(Option("--format", "fmt", "table", choices=("table", "json")), show_default=True),
    flag("--watch", "watch", "Refresh until Ctrl-C (a live table)."),
    option(Option("--interval", "interval_s", 2.0, float, minimum=0, positive=True),
           "Seconds between refreshes with --watch.", metavar=_SECONDS, show_default=True),
    option(Option("--count", "count", None, int, minimum=1), "Stop --watch after N frames.",
           metavar="N"),
)  # fmt: skip
best_options = stack(
    storage,
    option("top", show_default=True),
    fmt,
    option(Option("--by", "by", "value", choices=("value", "confirmed")),
           "Rank by the trial's own value, or by its confirmed validation mean.",
           show_default=True),
    option(Option("--as-hyperparameters", "as_hyperparameters"),
           "Also write the best trial as a keras_tuner.HyperParameters config (JSON), for "
           "hypermodel.build(HyperParameters.from_config(...)).", metavar="FILE", file=True),
)  # fmt: skip
confirm_options = stack(
    storage,
    option("confirm.top", "Confirm this many best trials (several objectives: spread over the "
           "Pareto set).", show_default=True),
    option("confirm.seeds", "Fresh seeds per confirmed trial (the baseline is always confirmed "
           "too).", show_default=True),
    copy_data,
    run_options,
    option(Option("--set", "assignments", multiple=True),
           "Override a value in the runs this call adds (repeatable), e.g. epochs=2 for a "
           "quick check; runs the companion already holds keep theirs.",
           metavar="NAME=VALUE"),
    no_run,
    fmt,
)  # fmt: skip
states = option(
    Option("--state", "states", choices=STATES, case_sensitive=False, multiple=True),
    "Only trials in this state (repeatable).",
)
wide = flag("--wide", "wide", "Show parameters whole instead of fitting the terminal's width.")

# --- figures, export, data files ----------------------------------------------------------------
artifacts_root = option(
    Option("--artifacts", "artifacts"),
    "Look for the study's artifacts here first: an artifact root holding its folder (as "
    "`launch --artifacts DIR`), or the folder itself (default: where the study says, else "
    "beside the SQLite file).",
    metavar="DIR",
)
out_folder = click.option(
    "--out", "out", type=click.Path(file_okay=False), metavar="DIR",
    help="Where the figures go (default: ./NAME-trial-N).",
)  # fmt: skip
report_folder = click.option(
    "--out", "out", type=click.Path(), required=True, metavar="FILE.html|DIR",
    help="FILE.html: one self-contained page, figures inline (must not exist). Otherwise a "
    "folder for index.html and its figures (must not exist, or be empty).",
)  # fmt: skip
write_into = click.option(
    "--force", is_flag=True, help="Write into a non-empty --out folder (or over an --out file)."
)
export_options = stack(
    storage,
    artifacts_root,
    option(Option("--trial", "trial", None, int, minimum=0),
           "Trial number, the same as N (default: the best).", metavar="N"),
    option(Option("--out", "out"), "Output folder.", metavar="DIR", required=True),
    force,
)  # fmt: skip
copy_options = stack(
    option(Option("--storage", "storage"), "Source database (default sqlite:///sweep.db; env "
           "SWEEP_STORAGE).", envvar=STORAGE_ENV, metavar="URL"),
    option(Option("--to-storage", "to_storage"), "Destination database (default: the source; "
           "a new SQLite file is created).", metavar="URL"),
    artifacts_root,
    option(Option("--to-artifacts", "to_artifacts"), "The destination's artifact root "
           "(default: beside a SQLite destination; needed for PostgreSQL).", metavar="DIR"),
)  # fmt: skip
delete_options = stack(
    storage,
    artifacts_root,
    flag("--yes", "yes", "Do not ask for confirmation."),
)
synth_options = stack(
    option(Option("--rows", "rows", None, int, minimum=1), required=True),
    option(Option("--out", "out"), required=True, file=True),
    option(Option("--seed", "seed", 0, int), show_default=True),
)
