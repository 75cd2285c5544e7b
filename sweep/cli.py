"""The ``sweep`` command line: each command parses its options, calls one function and prints.

The functions are :func:`sweep.run.single.run_single_trial`, :mod:`sweep.run.launch`,
:mod:`sweep.run.worker`, :mod:`sweep.run.confirm`, :mod:`sweep.present.views` and
:mod:`sweep.present`'s writers; the options and their help text are in :mod:`sweep.cli_options`.
Only Click, the standard library and sweep's leaf modules are imported here; each command
imports what it needs inside its callback, so the read-only commands (``best``, ``status``,
``trials``, ``studies``) never load TensorFlow.

Exit codes are the same for every command (:func:`sweep.cli_errors.exit_code`): 0 success,
1 refused input, 2 usage error, 130 interrupted; errors are one line on stderr.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import click
from click.core import ParameterSource

from sweep import cli_options as o
from sweep._version import __version__
from sweep.cli_errors import exit_code
from sweep.config import RunOptions
from sweep.errors import StudyComplete
from sweep.log import configure as configure_logging
from sweep.store.urls import redact

if TYPE_CHECKING:
    from sweep.present.views import View

_state = {"debug": False}


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


def _echo_view(view: View) -> None:
    """Print a :class:`sweep.present.views.View`: notes on stderr, then text on stdout."""
    for note in view.notes:
        click.echo(note, err=True)
    if view.text:
        click.echo(view.text, nl=False)


# --- one trial -------------------------------------------------------------------------------


@cli.command()
@o.trial_options
def trial(as_json: bool, **request: Any) -> None:
    """Run one trial with the notes' defaults and print the notes' metric table.

    The table scores the validation split; ``--score-test`` adds the same table for the test
    split (JSON keys ``test.*``), which a sweep never sees. ``--params FILE`` starts from a
    file's values, ``--from NAME:N`` from a stored trial's (with its study's data and split).
    """
    import json

    from sweep.present.views import single_trial_view
    from sweep.run.single import SingleTrialRequest
    from sweep.run.single import run_single_trial

    if request["params_file"] and request["from_trial"]:
        message = "--params and --from both give the parameters; pass one of them"
        raise click.UsageError(message, ctx=click.get_current_context())
    done = run_single_trial(SingleTrialRequest(**request))
    if as_json:
        click.echo(json.dumps(done.to_json(), indent=2))
    else:
        _echo_view(single_trial_view(done))


# --- sweeps ----------------------------------------------------------------------------------


def _run_options(data: str | None, options: dict[str, Any], check: bool = True) -> RunOptions:
    """:class:`sweep.config.RunOptions` from the run options, popped from ``options`` (with
    ``check``: the listed GPUs must exist)."""
    from sweep.run.gpus import check_gpu_options
    from sweep.run.gpus import parse_gpus

    ids = parse_gpus(options.pop("gpus"))
    per_gpu, memory = options.pop("trials_per_gpu"), options.pop("gpu_memory_mb")
    check_gpu_options(ids, per_gpu, memory)
    run = RunOptions(
        workers=options.pop("workers"),
        gpus=ids,
        timeout_s=options.pop("timeout_s"),
        data_path=data,
        trials_per_gpu=per_gpu,
        gpu_memory_mb=memory,
        spare=not options.pop("no_spare"),
    )
    if check and run.gpus:
        from sweep.run.launch import check_gpus

        check_gpus(run.gpus)
    return run


@cli.command()
@o.launch_options
@click.pass_context
def launch(ctx: click.Context, storage: str | None, no_run: bool, **options: Any) -> None:
    """Create a study and run it. With no options: the notes' space on the bundled data.

    With ``--confirm-top K`` the launching process confirms the K best trials (``sweep
    confirm``) once its workers have spent the budget. With ``--hypermodel``: a KerasTuner
    build_model(hp) or HyperModel instead of the built-in VAE.
    """
    import dataclasses

    from sweep.config import StudySettings
    from sweep.params import parse_assignments
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import create_study
    from sweep.run.launch import run_workers

    hypermodel = options.pop("hypermodel")
    o.refuse_inapplicable(ctx, hypermodel)
    url = _storage(storage)
    run = _run_options(options["data"], options)
    fields = [f.name for f in dataclasses.fields(StudySettings) if f.name in options]
    settings = StudySettings(**{k: options.pop(k) for k in fields})
    assignments = options.pop("assignments")
    confirm_top, confirm_seeds = options.pop("confirm_top"), options.pop("confirm_seeds")
    request = LaunchRequest(
        storage_url=url,
        data_path=options.pop("data"),
        settings=settings,
        pruner_chosen=ctx.get_parameter_source("pruner") is not ParameterSource.DEFAULT,
        overrides={} if hypermodel else parse_assignments(assignments),
        hypermodel=hypermodel,
        hp_assignments=tuple(assignments) if hypermodel else (),
        **options,
    )
    name = create_study(request)
    if no_run:
        click.echo(name)
        return
    run_workers(url, name, run)
    if confirm_top is not None:
        from sweep.run.confirm import confirm_study

        confirm_study(url, name, confirm_top, confirm_seeds, run)
    _print_best(url, name)


@cli.command()
@o.study_argument
@o.storage
@o.resume_n_trials
@o.copy_data
@o.run_options
def resume(
    name: str, storage: str | None, n_trials: int | None, data: str | None, **run: Any
) -> None:
    """Continue study NAME to its budget; failed and stale trials are retried.

    A study that already met its budget runs nothing: the line says so, the best trials are
    shown, and the exit code is 0.
    """
    from sweep.run.launch import resume_study
    from sweep.run.launch import run_workers

    url = _storage(storage)
    options = _run_options(data, run, check=False)
    try:
        resume_study(url, name, n_trials)
    except StudyComplete as done:  # nothing to do is not an error (a worker exits 0 too)
        click.echo(str(done), err=True)
    else:
        run_workers(url, name, options)
    _print_best(url, name)


@cli.command()
@o.study_argument
@o.worker_options
def worker(name: str, storage: str | None, wait_for_db_s: float, **options: Any) -> None:
    """Join study NAME from any machine that reaches its storage; exit when its budget is met."""
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker

    settings = WorkerSettings(
        study_name=name,
        storage_url=_storage(storage),
        data_path=options["data"],
        worker_index=options["worker_index"],
        timeout_s=options["timeout_s"],
        reconnect_timeout_s=options["reconnect_timeout_s"],
        spare=not options["no_spare"],
    )
    _wait_for_db(settings.storage_url, wait_for_db_s)
    done = run_worker(settings)
    click.echo(
        f"worker done ({done.stopped_because or 'stopped'}): {done.ran} trials run, "
        f"{done.complete} complete, {done.pruned} pruned, {done.failed} failed",
        err=True,
    )


def _wait_for_db(url: str, wait_s: float) -> None:
    """Retry the first connection for ``wait_s`` seconds (a running worker has
    ``--reconnect-timeout``); a missing database or an unknown schema fails at once."""
    import time

    from sweep.errors import SchemaVersionError
    from sweep.errors import StorageError
    from sweep.store.rdb import open_storage

    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            open_storage(url, reconnect_timeout_s=1.0)
            return
        except StorageError as e:
            permanent = isinstance(e, SchemaVersionError) or "no study database" in str(e)
            if time.monotonic() >= deadline or permanent:
                raise
            click.echo(f"waiting for the database: {redact(str(e))}", err=True)
            time.sleep(3)


# --- read-only -------------------------------------------------------------------------------


def _named(url: str, name: str | None) -> str:
    """NAME as given, else the storage's one study (read-only commands)."""
    if name:
        return name
    from sweep.store.read import only_study

    return only_study(url)


@cli.command()
@o.optional_study_argument
@o.status_options
def status(
    name: str | None,
    storage: str | None,
    fmt: str,
    watch: bool,
    interval_s: float,
    count: int | None,
) -> None:
    """Trials by state, best so far, running trials' heartbeats, throughput and ETA.

    NAME may be left out when the storage holds one study. ``--watch`` refreshes a live table
    every ``--interval`` seconds until Ctrl-C (exit 0) or the study is finished; on a pipe or
    into a file it writes one line per change instead.
    """
    url = _storage(storage)
    name = _named(url, name)
    if watch:
        from sweep.present.live import stop_on_signals
        from sweep.present.live import watch_lines
        from sweep.present.live import watch_status

        if sys.stdout.isatty():
            watch_status(url, name, interval_s=interval_s, count=count)
        else:
            with stop_on_signals() as stop:
                watch_lines(
                    _storage(storage),
                    name,
                    _echo_flushed,
                    interval_s=interval_s,
                    count=count,
                    stop=stop,
                )
        return
    from sweep.present.views import status_view

    _echo_view(status_view(url, name, fmt))


def _echo_flushed(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


@cli.command()
@o.optional_study_argument
@o.best_options
def best(name: str | None, storage: str | None, **view: Any) -> None:
    """The best trials (the Pareto set for several objectives) with the notes' metrics.

    NAME may be left out when the storage holds one study.
    Confirmed trials (``sweep confirm``) show val and test mean ± sd over seeds and the gain
    over the baseline on test; ``--by confirmed`` ranks by the confirmed validation mean.
    ``--as-hyperparameters FILE`` also writes the best trial as a KerasTuner
    ``HyperParameters`` config.
    """
    url = _storage(storage)
    _print_best(url, _named(url, name), **view)


def _print_best(url: str, name: str, **view: Any) -> None:
    from sweep.present.views import best_view

    _echo_view(best_view(url, name, **view))


@cli.command()
@o.study_argument
@o.confirm_options
def confirm(name: str, storage: str | None, top: int, seeds: int, **options: Any) -> None:
    """Re-run the best trials of NAME and its baseline with fresh seeds; score val and test.

    The runs go to the companion study NAME.confirm (never to NAME's sampler); workers share
    them like trials (`sweep worker NAME.confirm` joins). Running it again adds only missing
    (trial, seed) runs and finishes interrupted ones.
    """
    from sweep.params import parse_assignments
    from sweep.present.confirmed import confirmed_with_reference
    from sweep.present.formatting import render_confirmed
    from sweep.run.confirm import confirm_study

    url, no_run, fmt = _storage(storage), options.pop("no_run"), options.pop("fmt")
    overrides = parse_assignments(options.pop("assignments"))
    run = _run_options(options.pop("data"), options)
    companion = confirm_study(url, name, top, seeds, run, run=not no_run, overrides=overrides)
    if no_run:
        click.echo(companion)
        return
    click.echo(render_confirmed(confirmed_with_reference(url, name), fmt), nl=False)


@cli.command()
@o.optional_study_argument
@o.storage
@o.states
@o.fmt
@o.wide
def trials(
    name: str | None, storage: str | None, states: Sequence[str], fmt: str, wide: bool
) -> None:
    """Every trial of study NAME (which may be left out when the storage holds one study).

    The table fits the terminal's width, parameters cut to fit; --wide shows them whole.
    """
    from sweep.present.formatting import render
    from sweep.store.read import list_trials

    url = _storage(storage)
    rows = list_trials(url, _named(url, name), [s.upper() for s in states] or None)
    width = None if wide else shutil.get_terminal_size((120, 24)).columns
    click.echo(render(rows, fmt, kind="trials", width=width), nl=False)


@cli.command()
@o.storage
@o.fmt
def studies(storage: str | None, fmt: str) -> None:
    """Every study in the storage."""
    from sweep.present.formatting import render
    from sweep.store.read import list_studies

    click.echo(render(list_studies(_storage(storage)), fmt, kind="studies"), nl=False)


@cli.command()
@o.data
def metrics(data: str | None) -> None:
    """List the metric names a trial on this data reports (usable as objectives)."""
    from sweep.names import metric_names
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    dataset = load_dataset(data or BUNDLED_DATA)
    for key in metric_names([s.name for s in dataset.sections]):
        click.echo(key)


# --- figures, report, dashboard, export -----------------------------------------------------


@cli.command()
@o.study_argument
@click.argument("number", type=click.IntRange(min=0), metavar="N")
@o.storage
@o.out_folder
@o.write_into
@o.artifacts_root
def show(
    name: str,
    number: int,
    storage: str | None,
    out: str | None,
    force: bool,
    artifacts: str | None,
) -> None:
    """Trial N of study NAME: its full table and flags, and its figures as PNG files."""
    from sweep.present.show import show_trial

    text = show_trial(_storage(storage), name, number, out, force=force, artifacts=artifacts)
    click.echo(text, nl=False)


@cli.command()
@o.study_argument
@o.storage
@o.report_folder
@o.write_into
@o.artifacts_root
def report(name: str, storage: str | None, out: str, force: bool, artifacts: str | None) -> None:
    """Write study NAME as one HTML page with figures (opens from disk, offline)."""
    from sweep.present.report import write_report

    index = write_report(_storage(storage), name, out, force=force, artifacts=artifacts)
    click.echo(str(index))


@cli.command()
@click.argument("name", required=False, metavar="[NAME]")
@o.storage
@click.option("--port", type=int, default=8080, show_default=True, help="Port on 127.0.0.1.")
@o.artifacts_root
@click.option(
    "--allow-writes",
    is_flag=True,
    help="Let the page change the database (delete studies, notes, uploads); default: read-only.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 only behind a network you trust (no login).",
)
def dashboard(
    name: str | None,
    storage: str | None,
    port: int,
    artifacts: str | None,
    allow_writes: bool,
    host: str,
) -> None:
    """Serve optuna-dashboard for the storage (and study NAME's artifacts), read-only."""
    from sweep.present.dashboard import serve

    serve(_storage(storage), name, port, artifacts, allow_writes=allow_writes, host=host)


@cli.command()
@o.study_argument
@click.argument("number", type=click.IntRange(min=0), metavar="[N]", required=False)
@o.export_options
def export(
    name: str,
    number: int | None,
    storage: str | None,
    artifacts: str | None,
    trial: int | None,
    out: str,
    force: bool,
) -> None:
    """Write trial N's model (.keras), parameters and data hash to --out (default: the best).

    N may also be given as ``--trial N``. Needs the trial's weights, kept by
    `sweep launch --keep-weights K` (K=1 by default: the best trial's). A copied or moved
    SQLite study finds them beside its file.
    """
    from sweep.run.export import staged_export
    from sweep.train.export import write_model

    if number is not None and trial is not None and number != trial:
        message = f"N is {number} but --trial is {trial}; give the trial once"
        raise click.UsageError(message, ctx=click.get_current_context())
    number = number if number is not None else trial
    url = _storage(storage)
    with staged_export(url, name, number, out, force=force, artifacts=artifacts) as staged:
        write_model(staged.params, staged.n_features, staged.weights, staged.folder)
    click.echo(f"exported trial {staged.number} of study {name} to {staged.out}")


# --- copy, delete ----------------------------------------------------------------------------


@cli.command("copy")
@click.argument("name", metavar="SRC_NAME")
@click.argument("to_name", metavar="DST_NAME")
@o.copy_options
def copy_(
    name: str,
    to_name: str,
    storage: str | None,
    to_storage: str | None,
    artifacts: str | None,
    to_artifacts: str | None,
) -> None:
    """Copy study SRC_NAME, with its artifacts, to DST_NAME (in --to-storage, default the same).

    Trials, parameters, values, attributes and intermediate values are copied by Optuna; the
    artifacts go to DST_NAME's own folder. Refused if DST_NAME exists; nothing stored changes.
    """
    from sweep.store.lifecycle import copy_study
    from sweep.store.urls import mask_url

    url = _storage(storage)
    to_url = _storage(to_storage) if to_storage else url
    done = copy_study(url, name, to_url, to_name, artifacts=artifacts, to_artifacts=to_artifacts)
    for note in done.notes:
        click.echo(note, err=True)
    where = f" to '{done.folder}'" if done.folder else ""
    runs = "" if done.confirm_trials is None else f", {done.confirm_trials} confirmation runs"
    click.echo(
        f"copied study {name} to {to_name} in {mask_url(to_url)}: {done.trials} trials, "
        f"{done.files} artifact files{where}{runs}"
    )


@cli.command()
@o.study_argument
@o.delete_options
def delete(name: str, storage: str | None, artifacts: str | None, yes: bool) -> None:
    """Delete study NAME: its rows and its artifacts (asks first; --yes does not)."""
    from sweep.store.lifecycle import companion_trials
    from sweep.store.lifecycle import delete_study
    from sweep.store.lifecycle import study_files
    from sweep.store.urls import mask_url

    url = _storage(storage)
    found = study_files(url, name, artifacts)
    confirmations = companion_trials(url, name)
    also = (
        ""
        if confirmations is None
        else f", and its {confirmations} confirmation runs ({name}.confirm)"
    )
    question = (
        f"Delete study {name!r} of {mask_url(url)}: {found.trials} trials and "
        f"{found.where()}{also}?"
    )
    if not yes and not click.confirm(question, default=False, err=True):
        raise click.ClickException("not confirmed; nothing was deleted")
    done = delete_study(url, name, artifacts=artifacts)
    gone = "" if done.confirm_trials is None else f", {done.confirm_trials} confirmation runs"
    click.echo(f"deleted study {name}: {done.trials} trials, {done.files} artifact files{gone}")


# --- data ------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Make and check data files."""


@data.command("synth")
@o.synth_options
def data_synth(rows: int, out: str, seed: int) -> None:
    """Write a synthetic file in the notes' layout and densities, with planted expression."""
    from sweep.train.synth import write_synthetic

    click.echo(str(write_synthetic(out, rows, seed=seed)))


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


def _plain_help(command: click.Command) -> None:
    """Drop the docstrings' RST literals (````x````) from ``--help``: they read as noise there."""
    for holder in (command, *command.params):
        for attr in ("help", "short_help"):
            text = getattr(holder, attr, None)
            if isinstance(text, str):
                setattr(holder, attr, text.replace("``", ""))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _plain_help(sub)


_plain_help(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (errors become one line on stderr)."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="sweep", standalone_mode=False
        )
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except (Exception, KeyboardInterrupt, click.exceptions.Abort) as e:
        code, message = exit_code(e)
        if _state["debug"]:
            traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        click.echo(redact(" ".join(message.split())), err=True)
        return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
