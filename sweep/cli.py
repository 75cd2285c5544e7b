"""The ``sweep`` command line: a thin Click shell over launch, worker, report and the engine.

Only Click, the standard library and sweep's leaf modules are imported here; each command
imports what it needs inside its callback, so the read-only commands (``best``, ``status``,
``trials``, ``studies``) never load TensorFlow.

Exit codes: 0 success; 1 error (one line on stderr); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from sweep import __version__
from sweep.errors import SweepError
from sweep.log import configure as configure_logging
from sweep.store.urls import redact

EXIT_INTERRUPTED = 130
FORMATS = ("table", "json", "csv")
_state = {"debug": False}

storage_option = click.option(
    "--storage",
    envvar="SWEEP_STORAGE",
    default=None,
    metavar="URL",
    help="Study database (default sqlite:///sweep.db; env SWEEP_STORAGE). Put passwords in the "
    "environment variable, not on the command line.",
)
study_argument = click.argument("name", envvar="SWEEP_STUDY", metavar="NAME")
BUNDLED_HELP = "Data file (.npz; env SWEEP_DATA); default: the bundled K562 data."
COPY_HELP = "Local copy of the study's data file (same SHA-256; env SWEEP_DATA)."


def data_option(help_text: str) -> Any:
    """``--data FILE``, also read from ``$SWEEP_DATA``."""
    return click.option(
        "--data",
        envvar="SWEEP_DATA",
        default=None,
        type=click.Path(dir_okay=False),
        help=help_text,
    )


def _storage(url: str | None) -> str:
    from sweep.store.urls import resolve_url

    return resolve_url(url)


def _positive(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sweep")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
def cli(debug: bool, verbose: bool, quiet: bool) -> None:
    """Hyperparameter sweeps for VAEs on binary genomic vectors."""
    _state["debug"] = debug
    configure_logging(1 if verbose else -1 if quiet else 0)


# --- one trial -------------------------------------------------------------------------------


@cli.command()
@data_option(BUNDLED_HELP)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a hyperparameter (repeatable), e.g. --set coding_size=150.",
)
@click.option("--epochs", type=int, default=None, callback=_positive, help="Training epochs.")
@click.option("--seed", type=int, default=None, help="Seed for weights, noise and batches.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True)
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print every metric as JSON.")
def trial(
    data: str | None,
    assignments: Sequence[str],
    epochs: int | None,
    seed: int | None,
    val_fraction: float,
    split_seed: int,
    as_json: bool,
) -> None:
    """Run one trial with the notes' defaults and print the notes' metric table."""
    import json

    from sweep.params import TrialParams
    from sweep.params import parse_assignments
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    values = parse_assignments(assignments)
    if epochs is not None:
        values["epochs"] = epochs
    if seed is not None:
        values["seed"] = seed
    params = TrialParams.from_dict(values)
    dataset = load_dataset(data or BUNDLED_DATA, val_fraction=val_fraction, split_seed=split_seed)
    from sweep.train.engine import run_trial

    result = run_trial(params, dataset)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    from sweep.present.formatting import render

    row = {
        "number": 0,
        "state": "COMPLETE",
        "values": None,
        "params": values,
        "params_full": params.to_dict(),
        "metrics": result.metrics,
        "flags": list(result.flags),
        "seconds": result.seconds,
        "fail_reason": None,
    }
    click.echo(render([row], "table", kind="best"), nl=False)
    click.echo(
        f"trained {result.epochs_run} epochs in {result.seconds:.1f}s on {dataset.path.name}"
        f" ({len(dataset.train)} train / {len(dataset.val)} validation rows);"
        f" ELBO-scale beta {result.elbo_beta:.4g}"
    )
    for flag in result.flags:
        click.echo(f"collapse: {flag}")


# --- sweeps ----------------------------------------------------------------------------------


def _run_options(f: Any) -> Any:
    f = click.option(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Claim no new trial after this many seconds.",
    )(f)
    f = click.option(
        "--gpus",
        default=None,
        metavar="IDS",
        help="One worker per listed GPU, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES).",
    )(f)
    f = click.option(
        "--workers",
        type=int,
        default=1,
        show_default=True,
        callback=_positive,
        help="Local worker processes (ignored with --gpus).",
    )(f)
    return f


@cli.command()
@click.option(
    "--space",
    default="notes",
    show_default=True,
    help="Search-space YAML file, or a bundled one: notes, notes_wide, notes_pareto, tiny.",
)
@data_option(BUNDLED_HELP)
@click.option(
    "--study",
    "study_name",
    envvar="SWEEP_STUDY",
    default="notes",
    show_default=True,
    help="Study name (env SWEEP_STUDY).",
)
@storage_option
@click.option(
    "--n-trials",
    type=int,
    default=8,
    show_default=True,
    callback=_positive,
    help="Budget: finished trials across all workers.",
)
@_run_options
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "random", "grid", "cmaes", "nsga2"]),
    default="tpe",
    show_default=True,
)
@click.option(
    "--pruner",
    type=click.Choice(["median", "hyperband", "none"]),
    default="median",
    show_default=True,
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampler seed.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a value of the space for this study (repeatable), e.g. epochs=2.",
)
@click.option(
    "--val-fraction",
    type=float,
    default=0.2,
    show_default=True,
    help="Validation share when the data file has no split.",
)
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--heartbeat-interval", type=int, default=10, show_default=True, metavar="SECONDS")
@click.option(
    "--grace-period",
    type=int,
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="A trial without a heartbeat for this long is failed and retried.",
)
@click.option(
    "--max-consecutive-failures", type=int, default=5, show_default=True, callback=_positive
)
@click.option(
    "--artifacts",
    default=None,
    metavar="DIR",
    help="Where per-trial samples go (default: beside a SQLite file; none otherwise).",
)
@click.option(
    "--force-new",
    is_flag=True,
    help="If NAME exists with another space or data, create NAME-2 instead of failing.",
)
@click.option("--no-run", is_flag=True, help="Create the study and exit (workers join later).")
def launch(
    space: str,
    data: str | None,
    study_name: str,
    storage: str | None,
    n_trials: int,
    workers: int,
    gpus: str | None,
    timeout: float | None,
    sampler: str,
    pruner: str,
    seed: int,
    assignments: Sequence[str],
    val_fraction: float,
    split_seed: int,
    heartbeat_interval: int,
    grace_period: int,
    max_consecutive_failures: int,
    artifacts: str | None,
    force_new: bool,
    no_run: bool,
) -> None:
    """Create a study and run it. With no options: the notes' space on the bundled data."""
    from sweep.params import parse_assignments
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import RunOptions
    from sweep.run.launch import create_study
    from sweep.run.launch import parse_gpus
    from sweep.run.launch import run_workers

    url = _storage(storage)
    options = RunOptions(workers=workers, gpus=parse_gpus(gpus), timeout_s=timeout, data_path=data)
    request = LaunchRequest(
        storage_url=url,
        study_name=study_name,
        space=space,
        data_path=data,
        n_trials=n_trials,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        overrides=parse_assignments(assignments),
        val_fraction=val_fraction,
        split_seed=split_seed,
        heartbeat_interval_s=heartbeat_interval,
        grace_period_s=grace_period,
        max_consecutive_failures=max_consecutive_failures,
        artifacts_dir=artifacts,
        force_new=force_new,
    )
    if options.gpus:
        from sweep.run.launch import check_gpus

        check_gpus(options.gpus)
    name = create_study(request)
    if no_run:
        click.echo(name)
        return
    run_workers(url, name, options)
    _print_best(url, name)


@cli.command()
@study_argument
@storage_option
@click.option(
    "--n-trials", type=int, default=None, callback=_positive, help="Raise the study's budget to N."
)
@data_option(COPY_HELP)
@_run_options
def resume(
    name: str,
    storage: str | None,
    n_trials: int | None,
    data: str | None,
    workers: int,
    gpus: str | None,
    timeout: float | None,
) -> None:
    """Continue study NAME to its budget; failed and stale trials are retried."""
    from sweep.run.launch import RunOptions
    from sweep.run.launch import parse_gpus
    from sweep.run.launch import resume_study
    from sweep.run.launch import run_workers

    url = _storage(storage)
    options = RunOptions(workers=workers, gpus=parse_gpus(gpus), timeout_s=timeout, data_path=data)
    resume_study(url, name, n_trials)
    run_workers(url, name, options)
    _print_best(url, name)


@cli.command()
@study_argument
@storage_option
@data_option(COPY_HELP)
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Claim no new trial after this many seconds.",
)
@click.option(
    "--wait-for-db",
    type=float,
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Keep retrying an unreachable database this long before giving up.",
)
@click.option(
    "--reconnect-timeout",
    type=float,
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="Once running, retry a lost database this long, then exit (the trial is retried).",
)
@click.option("--worker-index", type=int, default=None, hidden=True)
def worker(
    name: str,
    storage: str | None,
    data: str | None,
    timeout: float | None,
    wait_for_db: float,
    reconnect_timeout: float,
    worker_index: int | None,
) -> None:
    """Join study NAME from any machine that reaches its storage; exit when its budget is met."""
    import time

    from sweep.errors import StorageError
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker
    from sweep.store.rdb import open_storage

    index = worker_index if worker_index is not None else os.getpid()
    settings = WorkerSettings(
        study_name=name,
        storage_url=_storage(storage),
        data_path=data,
        worker_index=index,
        timeout_s=timeout,
        reconnect_timeout_s=reconnect_timeout,
    )
    if reconnect_timeout <= 0:
        raise click.BadParameter(
            "must be a positive number of seconds", param_hint="--reconnect-timeout"
        )
    deadline = time.monotonic() + max(wait_for_db, 0.0)
    while True:  # only the first connection waits; a running worker has --reconnect-timeout
        try:
            open_storage(settings.storage_url, reconnect_timeout_s=1.0)
            break
        except StorageError as e:
            if time.monotonic() >= deadline or "no study database" in str(e):
                raise
            click.echo(f"waiting for the database: {redact(str(e))}", err=True)
            time.sleep(3)
    summary = run_worker(settings)
    click.echo(
        f"worker done ({summary.stopped_because or 'stopped'}): {summary.ran} trials run, "
        f"{summary.complete} complete, {summary.pruned} pruned, {summary.failed} failed",
        err=True,
    )


# --- read-only -------------------------------------------------------------------------------


@cli.command()
@study_argument
@storage_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status(name: str, storage: str | None, fmt: str) -> None:
    """Trials by state, best so far, running trials' heartbeats, throughput and ETA."""
    from sweep.present.formatting import render_status
    from sweep.store.read import study_status

    click.echo(render_status(study_status(_storage(storage), name), fmt), nl=False)


@cli.command()
@study_argument
@storage_option
@click.option("--top", type=int, default=5, show_default=True, callback=_positive)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def best(name: str, storage: str | None, top: int, fmt: str) -> None:
    """The best trials (the Pareto set for several objectives) with the notes' metrics."""
    _print_best(_storage(storage), name, top, fmt)


@cli.command()
@study_argument
@storage_option
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"], case_sensitive=False),
    help="Only trials in this state (repeatable).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def trials(name: str, storage: str | None, states: Sequence[str], fmt: str) -> None:
    """Every trial of study NAME."""
    from sweep.present.formatting import render
    from sweep.store.read import list_trials

    rows = list_trials(_storage(storage), name, [s.upper() for s in states] or None)
    click.echo(render(rows, fmt, kind="trials"), nl=False)


@cli.command()
@storage_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def studies(storage: str | None, fmt: str) -> None:
    """Every study in the storage."""
    from sweep.present.formatting import render
    from sweep.store.read import list_studies

    click.echo(render(list_studies(_storage(storage)), fmt, kind="studies"), nl=False)


@cli.command()
@data_option(BUNDLED_HELP)
def metrics(data: str | None) -> None:
    """List the metric names a trial on this data reports (usable as objectives)."""
    from sweep.names import metric_names
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    dataset = load_dataset(data or BUNDLED_DATA)
    for key in metric_names([s.name for s in dataset.sections]):
        click.echo(key)


# --- data ------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Make and check data files."""


@data.command("synth")
@click.option("--rows", type=int, required=True, callback=_positive)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
def data_synth(rows: int, out: str, seed: int) -> None:
    """Write a synthetic file in the notes' layout and densities, with planted expression."""
    from sweep.train.synth import write_synthetic

    path = write_synthetic(out, rows, seed=seed)
    click.echo(str(path))


@data.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def data_check(path: str) -> None:
    """Validate a data file and print its summary and SHA-256."""
    import json

    from sweep.train.data import file_sha256
    from sweep.train.data import load_dataset

    summary = load_dataset(path).summary()
    summary["sha256"] = file_sha256(path)
    click.echo(json.dumps(summary, indent=2, default=str))


def _print_best(url: str, name: str, top: int = 5, fmt: str = "table") -> None:
    from sweep.present.formatting import render
    from sweep.store.read import best_trials
    from sweep.store.read import study_status

    rows = best_trials(url, name, top)
    objectives = study_status(url, name)["objectives"] if fmt == "table" else None
    if rows or fmt != "table":
        click.echo(render(rows, fmt, kind="best", objectives=objectives), nl=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (errors become one line on stderr)."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="sweep", standalone_mode=False
        )
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except (click.exceptions.Abort, KeyboardInterrupt) as e:  # Click wraps KeyboardInterrupt
        cause = e.__cause__ or e.__context__ or e
        name = getattr(cause, "signal_name", getattr(e, "signal_name", "SIGINT"))
        _report(
            f"Interrupted by {name}: the trial in flight is recorded as FAIL; continue with "
            "`sweep resume NAME`",
            e,
        )
        return EXIT_INTERRUPTED
    except click.UsageError as e:  # one line, not Click's usage block
        where = e.ctx.command_path if e.ctx is not None else "sweep"
        _report(f"Error: {e.format_message()} (see `{where} --help`)", e)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except SweepError as e:
        _report(f"Error: {e}", e)
        return e.exit_code
    except Exception as e:  # a bug: still one line, the traceback only with --debug
        _report(f"Error: internal error {type(e).__name__}: {e} (run with --debug for details)", e)
        return 1
    return 0


def _report(message: str, error: BaseException) -> None:
    if _state["debug"]:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    click.echo(redact(" ".join(message.split())), err=True)


if __name__ == "__main__":
    raise SystemExit(main())
