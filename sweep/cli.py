"""The ``sweep`` command line: a thin Click shell over :mod:`sweep.run.launch`,
:mod:`sweep.run.worker`, :mod:`sweep.store.read`, :mod:`sweep.present.formatting` and the
trial engine (:mod:`sweep.train.engine`).

Every option is built from :data:`sweep.config.OPTIONS`, which holds its default, help text and
range check once. Only Click, the standard library and sweep's leaf modules (``sweep.config``,
``sweep.errors``, ``sweep.log``, ``sweep.store.urls``) are imported here; each command imports
what it needs inside its callback, so the read-only commands (``best``, ``status``,
``trials``, ``studies``) never load TensorFlow.

Exit codes: 0 success; 1 error (one line on stderr); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import click

from sweep import __version__
from sweep.config import OPTIONS
from sweep.config import STUDY_ENV
from sweep.config import RunOptions
from sweep.errors import SweepError
from sweep.log import configure as configure_logging
from sweep.store.urls import redact

EXIT_INTERRUPTED = 130
_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def option(key: str) -> Callable[[F], F]:
    """The Click option for ``OPTIONS[key]``: its flag, default, help, type and range check."""
    spec = OPTIONS[key]
    if spec.type is bool:
        return click.option(spec.flag, spec.dest, is_flag=True, help=spec.help)
    kind: Any = spec.type
    if spec.choices is not None:
        kind = click.Choice(spec.choices, case_sensitive=spec.case_sensitive)
    elif spec.file:
        kind = click.Path(dir_okay=False)

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        reason = spec.problem(value)
        if reason is not None:
            raise click.BadParameter(reason, ctx=ctx, param=param)
        return value

    return click.option(
        spec.flag,
        spec.dest,
        type=kind,
        default=spec.default,
        help=spec.help,
        envvar=spec.envvar,
        metavar=spec.metavar,
        show_default=spec.show_default,
        required=spec.required,
        multiple=spec.multiple,
        hidden=spec.hidden,
        callback=check if spec.minimum is not None else None,
    )


study_argument = click.argument("name", envvar=STUDY_ENV, metavar="NAME")


def _storage(url: str | None) -> str:
    from sweep.store.urls import resolve_url

    return resolve_url(url)


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
@option("data")
@option("trial.assignments")
@option("trial.epochs")
@option("trial.seed")
@option("val_fraction")
@option("test_fraction")
@option("split_seed")
@option("score_test")
@option("as_json")
@option("trial.params_file")
@option("trial.from_trial")
@option("storage")
def trial(
    data: str | None,
    assignments: Sequence[str],
    epochs: int | None,
    seed: int | None,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    score_test: bool,
    as_json: bool,
    params_file: str | None,
    from_trial: str | None,
    storage: str | None,
) -> None:
    """Run one trial with the notes' defaults and print the notes' metric table.

    The table scores the validation split; ``--score-test`` adds the same table for the test
    split (JSON keys ``test.*``), which a sweep never sees. ``--params FILE`` starts from a
    file's values, ``--from NAME:N`` from a stored trial's (with its study's data and split).
    """
    import json

    from sweep.params import TrialParams
    from sweep.params import parse_assignments
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    split_sha256 = ""
    values = parse_assignments(assignments)
    if params_file and from_trial:
        from sweep.errors import UsageError

        raise UsageError("--params and --from both give the parameters; pass one of them")
    if params_file:
        from sweep.run.export import load_params_file

        values = {**load_params_file(params_file), **values}
    if from_trial:
        from sweep.run.export import check_data
        from sweep.run.export import stored_trial

        stored = stored_trial(_storage(storage), from_trial)
        values = {**stored.params, **values}
        if data is None:
            data = stored.data_path
        check_data(data, stored.data_sha256)
        val_fraction, test_fraction = stored.val_fraction, stored.test_fraction
        split_seed, split_sha256 = stored.split_seed, stored.split_sha256
    if epochs is not None:
        values["epochs"] = epochs
    if seed is not None:
        values["seed"] = seed
    params = TrialParams.from_dict(values)
    dataset = load_dataset(
        data or BUNDLED_DATA,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
    )
    if split_sha256:
        from sweep.train.data import check_split_sha256

        check_split_sha256(dataset, split_sha256)
    if score_test and dataset.test is None:
        from sweep.errors import UsageError

        raise UsageError(
            f"--score-test: data file '{dataset.path}' has no test split (it brings its own "
            "split without X_test, or --test-fraction is 0)"
        )
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import run_trial

    result = run_trial(params, dataset, options=EngineOptions(score_test=score_test))
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
    if result.test_metrics and dataset.test is not None:
        test = {k.removeprefix("test."): v for k, v in result.test_metrics.items()}
        click.echo(f"test split ({len(dataset.test)} rows, never used by a sweep):")
        click.echo(render([{**row, "metrics": test}], "table", kind="best"), nl=False)
    test_rows = f" / {len(dataset.test)} test" if dataset.test is not None else ""
    click.echo(
        f"trained {result.epochs_run} epochs in {result.seconds:.1f}s on {dataset.path.name}"
        f" ({len(dataset.train)} train / {len(dataset.val)} validation{test_rows} rows);"
        f" ELBO-scale beta {result.elbo_beta:.4g}"
    )
    for flag in result.flags:
        click.echo(f"collapse: {flag}")


# --- sweeps ----------------------------------------------------------------------------------


def _run_options(f: F) -> F:
    """``--workers``, ``--gpus``, ``--timeout``, ``--trials-per-gpu``, ``--gpu-memory-mb``,
    ``--no-spare`` (see :class:`sweep.config.RunOptions`)."""
    for key in ("no_spare", "gpu_memory_mb", "trials_per_gpu", "timeout_s", "gpus", "workers"):
        f = option(key)(f)
    return f


def _gpu_run_options(
    workers: int, gpus: str | None, timeout_s: float | None, data: str | None, extra: Any
) -> RunOptions:
    """:class:`sweep.config.RunOptions` from the run options' values (``extra``: the
    ``trials_per_gpu``, ``gpu_memory_mb`` and ``no_spare`` keyword arguments)."""
    from sweep.run.gpus import check_gpu_options
    from sweep.run.gpus import parse_gpus

    ids = parse_gpus(gpus)
    check_gpu_options(ids, extra["trials_per_gpu"], extra["gpu_memory_mb"])
    return RunOptions(
        workers=workers,
        gpus=ids,
        timeout_s=timeout_s,
        data_path=data,
        trials_per_gpu=extra["trials_per_gpu"],
        gpu_memory_mb=extra["gpu_memory_mb"],
        spare=not extra["no_spare"],
    )


@cli.command()
@option("space")
@option("data")
@option("study_name")
@option("storage")
@option("n_trials")
@_run_options
@option("sampler")
@option("pruner")
@option("seed")
@option("assignments")
@option("val_fraction")
@option("test_fraction")
@option("split_seed")
@option("heartbeat_interval_s")
@option("grace_period_s")
@option("max_consecutive_failures")
@option("artifacts_dir")
@option("force_new")
@option("baseline")
@option("reference")
@option("no_run")
@option("confirm_top")
@option("confirm_seeds")
@option("hypermodel")
@option("objective")
@option("direction")
@option("keep_weights")
def launch(
    space: str,
    data: str | None,
    study_name: str,
    storage: str | None,
    n_trials: int,
    workers: int,
    gpus: str | None,
    timeout_s: float | None,
    sampler: str,
    pruner: str,
    seed: int,
    assignments: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    heartbeat_interval_s: int,
    grace_period_s: int,
    max_consecutive_failures: int,
    artifacts_dir: str | None,
    force_new: bool,
    baseline: str | None,
    reference: str,
    no_run: bool,
    confirm_top: int | None,
    confirm_seeds: int,
    hypermodel: str | None,
    objective: str,
    direction: str | None,
    keep_weights: int,
    **run_options: Any,
) -> None:
    """Create a study and run it. With no options: the notes' space on the bundled data.

    With ``--confirm-top K`` the launching process confirms the K best trials (``sweep
    confirm``) once its workers have spent the budget. With ``--hypermodel``: a KerasTuner
    build_model(hp) or HyperModel instead of the built-in VAE.
    """
    from sweep.config import StudySettings
    from sweep.params import parse_assignments
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import create_study
    from sweep.run.launch import run_workers

    url = _storage(storage)
    options = _gpu_run_options(workers, gpus, timeout_s, data, run_options)
    request = LaunchRequest(
        storage_url=url,
        study_name=study_name,
        space=space,
        data_path=data,
        settings=StudySettings(
            n_trials=n_trials,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            heartbeat_interval_s=heartbeat_interval_s,
            grace_period_s=grace_period_s,
            max_consecutive_failures=max_consecutive_failures,
        ),
        overrides={} if hypermodel else parse_assignments(assignments),
        artifacts_dir=artifacts_dir,
        force_new=force_new,
        baseline=baseline,
        reference=reference,
        hypermodel=hypermodel,
        objective=objective,
        direction=direction,
        hp_assignments=tuple(assignments) if hypermodel else (),
        keep_weights=keep_weights,
    )
    if options.gpus:
        from sweep.run.launch import check_gpus

        check_gpus(options.gpus)
    name = create_study(request)
    if no_run:
        click.echo(name)
        return
    run_workers(url, name, options)
    if confirm_top is not None:
        from sweep.run.confirm import confirm_study

        confirm_study(url, name, confirm_top, confirm_seeds, options)
    _print_best(url, name)


@cli.command()
@study_argument
@option("storage")
@option("resume.n_trials")
@option("worker.data")
@_run_options
def resume(
    name: str,
    storage: str | None,
    n_trials: int | None,
    data: str | None,
    workers: int,
    gpus: str | None,
    timeout_s: float | None,
    **run_options: Any,
) -> None:
    """Continue study NAME to its budget; failed and stale trials are retried."""
    from sweep.run.launch import resume_study
    from sweep.run.launch import run_workers

    url = _storage(storage)
    options = _gpu_run_options(workers, gpus, timeout_s, data, run_options)
    resume_study(url, name, n_trials)
    run_workers(url, name, options)
    _print_best(url, name)


@cli.command()
@study_argument
@option("storage")
@option("worker.data")
@option("timeout_s")
@option("wait_for_db_s")
@option("reconnect_timeout_s")
@option("worker_index")
@option("no_spare")
def worker(
    name: str,
    storage: str | None,
    data: str | None,
    timeout_s: float | None,
    wait_for_db_s: float,
    reconnect_timeout_s: float | None,
    worker_index: int | None,
    no_spare: bool,
) -> None:
    """Join study NAME from any machine that reaches its storage; exit when its budget is met."""
    import time

    from sweep.errors import SchemaVersionError
    from sweep.errors import StorageError
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker
    from sweep.store.rdb import open_storage

    index = worker_index if worker_index is not None else _default_worker_index()
    settings = WorkerSettings(
        study_name=name,
        storage_url=_storage(storage),
        data_path=data,
        worker_index=index,
        timeout_s=timeout_s,
        reconnect_timeout_s=reconnect_timeout_s,
        spare=not no_spare,
    )
    deadline = time.monotonic() + max(wait_for_db_s, 0.0)
    while True:  # only the first connection waits; a running worker has --reconnect-timeout
        try:
            open_storage(settings.storage_url, reconnect_timeout_s=1.0)
            break
        except StorageError as e:
            permanent = isinstance(e, SchemaVersionError) or "no study database" in str(e)
            if time.monotonic() >= deadline or permanent:
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
@option("storage")
@option("status.fmt")
@option("watch")
@option("interval_s")
@option("count")
def status(
    name: str, storage: str | None, fmt: str, watch: bool, interval_s: float, count: int | None
) -> None:
    """Trials by state, best so far, running trials' heartbeats, throughput and ETA.

    ``--watch`` refreshes a live table every ``--interval`` seconds until Ctrl-C (exit 0).
    """
    from sweep.present.confirmed import confirmed_results
    from sweep.present.formatting import render_status
    from sweep.present.status import study_status

    url = _storage(storage)
    if watch:
        from sweep.present.live import watch_status

        watch_status(url, name, interval_s=interval_s, count=count)
        return
    info = study_status(url, name)
    confirmed = confirmed_results(url, name)
    if fmt == "json":
        info["confirm"] = None
        if confirmed is not None:
            info["confirm"] = {
                k: confirmed[k] for k in ("companion", "jobs", "complete", "counts")
            }
    click.echo(render_status(info, fmt), nl=False)
    if confirmed is not None and fmt == "table":
        running = confirmed["counts"].get("RUNNING", 0)
        click.echo(
            f"confirm: {confirmed['complete']}/{confirmed['jobs']} runs complete, {running} "
            f"running ({confirmed['companion']}; `sweep best {name}` shows them)"
        )


@cli.command()
@study_argument
@option("storage")
@option("top")
@option("fmt")
@option("by")
@option("as_hyperparameters")
def best(
    name: str, storage: str | None, top: int, fmt: str, by: str, as_hyperparameters: str | None
) -> None:
    """The best trials (the Pareto set for several objectives) with the notes' metrics.

    Confirmed trials (``sweep confirm``) show val and test mean ± sd over seeds and the gain
    over the baseline on test; ``--by confirmed`` ranks by the confirmed validation mean.
    ``--as-hyperparameters FILE`` also writes the best trial as a KerasTuner
    ``HyperParameters`` config.
    """
    if as_hyperparameters:
        from sweep.store.hyperparameters import write_best_hyperparameters

        number = write_best_hyperparameters(_storage(storage), name, as_hyperparameters)
        click.echo(f"wrote trial {number}'s hyperparameters to {as_hyperparameters}", err=True)
    _print_best(_storage(storage), name, top, fmt, by=by)


@cli.command()
@study_argument
@option("storage")
@option("confirm.top")
@option("confirm.seeds")
@option("worker.data")
@_run_options
@option("no_run")
@option("fmt")
def confirm(
    name: str,
    storage: str | None,
    top: int,
    seeds: int,
    data: str | None,
    workers: int,
    gpus: str | None,
    timeout_s: float | None,
    no_run: bool,
    fmt: str,
    **run_options: Any,
) -> None:
    """Re-run the best trials of NAME and its baseline with fresh seeds; score val and test.

    The runs go to the companion study NAME.confirm (never to NAME's sampler); workers share
    them like trials (`sweep worker NAME.confirm` joins). Running it again adds only missing
    (trial, seed) runs and finishes interrupted ones.
    """
    from sweep.present.confirmed import confirmed_with_reference
    from sweep.present.formatting import render_confirmed
    from sweep.run.confirm import confirm_study

    url = _storage(storage)
    options = _gpu_run_options(workers, gpus, timeout_s, data, run_options)
    if options.gpus:
        from sweep.run.launch import check_gpus

        check_gpus(options.gpus)
    companion = confirm_study(url, name, top, seeds, options, run=not no_run)
    if no_run:
        click.echo(companion)
        return
    click.echo(render_confirmed(confirmed_with_reference(url, name), fmt), nl=False)


@cli.command()
@study_argument
@option("storage")
@option("states")
@option("fmt")
def trials(name: str, storage: str | None, states: Sequence[str], fmt: str) -> None:
    """Every trial of study NAME."""
    from sweep.present.formatting import render
    from sweep.store.read import list_trials

    rows = list_trials(_storage(storage), name, [s.upper() for s in states] or None)
    click.echo(render(rows, fmt, kind="trials"), nl=False)


@cli.command()
@option("storage")
@option("fmt")
def studies(storage: str | None, fmt: str) -> None:
    """Every study in the storage."""
    from sweep.present.formatting import render
    from sweep.store.read import list_studies

    click.echo(render(list_studies(_storage(storage)), fmt, kind="studies"), nl=False)


@cli.command()
@option("data")
def metrics(data: str | None) -> None:
    """List the metric names a trial on this data reports (usable as objectives)."""
    from sweep.names import metric_names
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    dataset = load_dataset(data or BUNDLED_DATA)
    for key in metric_names([s.name for s in dataset.sections]):
        click.echo(key)


# --- figures, report, dashboard ------------------------------------------------------------


@cli.command()
@study_argument
@click.argument("number", type=click.IntRange(min=0), metavar="N")
@option("storage")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Where the figures go (default: ./NAME-trial-N).",
)
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
def show(name: str, number: int, storage: str | None, out: str | None, force: bool) -> None:
    """Trial N of study NAME: its full table and flags, and its figures as PNG files."""
    from sweep.present.show import show_trial

    click.echo(show_trial(_storage(storage), name, number, out, force=force), nl=False)


@cli.command()
@study_argument
@option("storage")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    required=True,
    metavar="DIR",
    help="The folder for index.html and its figures (must not exist, or be empty).",
)
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
def report(name: str, storage: str | None, out: str, force: bool) -> None:
    """Write study NAME as one HTML page with figures (opens from disk, offline)."""
    from sweep.present.report import write_report

    click.echo(str(write_report(_storage(storage), name, out, force=force)))


@cli.command()
@click.argument("name", required=False, metavar="[NAME]")
@option("storage")
@click.option("--port", type=int, default=8080, show_default=True, help="Port on 127.0.0.1.")
def dashboard(name: str | None, storage: str | None, port: int) -> None:
    """Serve optuna-dashboard on 127.0.0.1 for the storage (and study NAME's artifacts)."""
    from sweep.present.dashboard import serve

    serve(_storage(storage), name, port)


# --- export ----------------------------------------------------------------------------------


@cli.command()
@study_argument
@option("storage")
@option("export.trial")
@option("export.out")
@option("force")
def export(name: str, storage: str | None, trial: int | None, out: str, force: bool) -> None:
    """Write trial N's model (.keras), parameters and data hash to --out (default: the best).

    Needs the trial's weights, kept by `sweep launch --keep-weights K`.
    """
    from sweep.run.export import staged_export
    from sweep.train.export import write_model

    with staged_export(_storage(storage), name, trial, out, force=force) as staged:
        write_model(staged.params, staged.n_features, staged.weights, staged.folder)
    click.echo(f"exported trial {staged.number} of study {name} to {staged.out}")


# --- data ------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Make and check data files."""


@data.command("synth")
@option("synth.rows")
@option("synth.out")
@option("synth.seed")
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


def _print_best(url: str, name: str, top: int = 5, fmt: str = "table", by: str = "value") -> None:
    from sweep.present.confirmed import confirmed_results
    from sweep.present.confirmed import rank_by_confirmed
    from sweep.present.confirmed import with_confirmed
    from sweep.present.formatting import render
    from sweep.present.status import study_status
    from sweep.store.read import baseline_trial
    from sweep.store.read import best_trials
    from sweep.store.read import trials_by_number

    confirmed = confirmed_results(url, name)
    if by == "confirmed":
        if confirmed is None or not confirmed["complete"]:
            from sweep.errors import UsageError

            raise UsageError(
                f"--by confirmed: study {name!r} has no complete confirmation run yet; run "
                f"`sweep confirm {name}` first"
            )
        rows = trials_by_number(url, name, rank_by_confirmed(confirmed, top))
    else:
        rows = best_trials(url, name, top)
    if fmt != "json":  # JSON lists the best set only; `trials` marks the baseline there
        baseline = baseline_trial(url, name)
        if baseline is not None and baseline["number"] not in {r["number"] for r in rows}:
            rows.append(baseline)
    rows = with_confirmed(rows, confirmed)
    reference = _reference_column(url, name) if rows and fmt != "json" else None
    if reference is not None:
        rows.append(reference)
    objectives = study_status(url, name)["objectives"] if fmt == "table" else None
    if by == "confirmed" and fmt == "table":
        metric = (objectives or [{}])[0].get("metric") or "the first objective"
        click.echo(
            f"ranked by the confirmed validation mean of {metric} over seeds "
            "(not by the trials' single-seed values)"
        )
    if rows or fmt != "table":
        click.echo(render(rows, fmt, kind="best", objectives=objectives), nl=False)


def _reference_column(url: str, name: str) -> dict[str, Any] | None:
    """The study's supervised reference for ``best``; a failed one is one line on stderr.

    Once ``confirm`` has scored it on test, it carries a ``confirmed`` entry (one fit: its
    validation and test values) for the Confirmed rows.
    """
    from sweep.present.confirmed import reference_test_metrics
    from sweep.store.read import reference_row

    reference = reference_row(url, name)
    if reference is not None and reference.get("error"):
        click.echo(f"reference ({reference['reference']}) failed: {reference['error']}", err=True)
        return None
    test = reference_test_metrics(reference)
    if reference is not None and test:
        val = {k: _one_fit(v) for k, v in (reference.get("metrics") or {}).items()}
        reference["confirmed"] = {
            "number": None, "seeds": 1, "planned": 1, "gain": None,
            "val": val, "test": {k: _one_fit(v) for k, v in test.items()},
        }  # fmt: skip
    return reference


def _one_fit(value: Any) -> dict[str, Any]:
    """A value as a confirmed statistic of one run (no spread)."""
    return {"mean": value, "sd": None, "n": 1, "values": [value]}


def _default_worker_index() -> int:
    """A sampler-seed index unique to this process on this host.

    Not the PID alone: containers and pods number their processes from 1, so every replica would
    seed its sampler alike and propose the same parameters.
    """
    import socket
    import zlib

    return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) & 0x7FFFFFFF


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
