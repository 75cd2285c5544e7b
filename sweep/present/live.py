"""``sweep status NAME --watch``: a live table of a study's progress, redrawn with ``rich``.

Each frame is read from the database (:func:`sweep.present.status.status_view` and
:meth:`sweep.store.read.StudyReader.running`), so it shows workers on any machine: finished and
budget, trials by state, the best so far, each running trial with its epoch and heartbeat age,
throughput and ETA. :func:`status_frame` builds one frame (testable on its own);
:func:`watch_status` redraws until Ctrl-C, which ends it cleanly, or until the study is finished.
Not on a terminal (a log, a pipe), :func:`watch_lines` writes one timestamped line each time
the study's progress changes, flushed at once, and stops when the study is finished.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import STATES
from sweep.present.formatting import human_duration
from sweep.present.formatting import short_number

if TYPE_CHECKING:
    from rich.console import Console
    from rich.console import RenderableType


def status_frame(
    status: Mapping[str, Any], progress: Mapping[int, Mapping[str, Any]]
) -> RenderableType:
    """One frame: a summary table and the running trials' table.

    Args:
        status: :func:`sweep.present.status.status_view` output.
        progress: ``{number: {epoch, epochs}}`` (epochs of running trials).
    """
    from rich.console import Group
    from rich.table import Table

    counts = status.get("counts") or {}
    finished = status.get("finished", 0)
    budget = status.get("budget")
    summary = Table(title=f"study {status.get('name')}", show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("storage", str(status.get("storage")))
    done = f"{finished}/{budget}" if budget is not None else str(finished)
    summary.add_row("done", done)
    summary.add_row("states", ", ".join(f"{s} {counts.get(s, 0)}" for s in STATES))
    objectives = status.get("objectives") or []
    if objectives:
        summary.add_row(
            "objective",
            ", ".join(f"{o.get('metric') or 'value'} ({o.get('direction')})" for o in objectives),
        )
    best = status.get("best")
    if best is not None:
        values = "/".join(short_number(v) for v in best.get("values") or [])
        summary.add_row("best so far", f"{values} (#{best.get('number')})")
    elif status.get("pareto_size") is not None:
        summary.add_row("best so far", f"Pareto set of {status['pareto_size']} trials")
    else:
        summary.add_row("best so far", "none yet")
    rate = status.get("throughput_per_hour")
    summary.add_row("throughput", f"{rate:.1f} trials/h" if rate else "unknown")
    eta = status.get("eta_s")
    summary.add_row("ETA", human_duration(eta) if eta is not None else "unknown")

    running = Table(title="running trials")
    for header in ("trial", "epoch", "started", "heartbeat age"):
        running.add_column(header)
    for r in status.get("running") or []:
        number = r.get("number")
        p = progress.get(int(number)) if number is not None else None
        epoch = (p or {}).get("epoch")
        epochs = (p or {}).get("epochs")
        shown = "-" if epoch is None else str(epoch)
        if epochs is not None:
            shown = f"{shown}/{epochs}"
        age = r.get("heartbeat_age_s")
        started = str(r.get("started") or "-")[:19].replace("T", " ")
        running.add_row(
            f"#{number}", shown, started, f"{age:.0f} s" if age is not None else "no heartbeat"
        )
    if not status.get("running"):
        running.add_row("none", "", "", "")
    return Group(summary, running)


def read_frame(url: str, name: str) -> RenderableType:
    """The current frame of study ``name``, read from the database."""
    return _read(url, name)[1]


def _read(url: str, name: str) -> tuple[dict[str, Any], RenderableType]:
    from sweep.present.status import status_view
    from sweep.store.read import StudyReader

    with StudyReader(url) as reader:  # one connection per frame
        status = status_view(reader, name)
        progress = (
            {r.number: {"epoch": r.epoch, "epochs": r.epochs} for r in reader.running(name)}
            if status.get("running")
            else {}
        )
    return status, status_frame(status, progress)


def frame_text(url: str, name: str, width: int = 100) -> str:
    """The current frame as plain text (what one refresh shows, without colours)."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(read_frame(url, name))
    return console.export_text()


def status_line(status: Mapping[str, Any]) -> str:
    """One line of a study's progress, without a clock: what ``--watch`` writes to a pipe."""
    counts = status.get("counts") or {}
    budget = status.get("budget")
    finished = status.get("finished", 0)
    done = f"{finished}/{budget}" if budget is not None else str(finished)
    states = ", ".join(f"{s} {counts.get(s, 0)}" for s in STATES)
    best = status.get("best")
    if best is not None:
        values = "/".join(short_number(v) for v in best.get("values") or [])
        best_text = f"best so far {values} (#{best.get('number')})"
    elif status.get("pareto_size") is not None:
        best_text = f"best so far: Pareto set of {status['pareto_size']} trials"
    else:
        best_text = "best so far: none yet"
    eta = status.get("eta_s")
    eta_text = human_duration(eta) if eta is not None else "unknown"
    return f"study {status.get('name')}: {done} finished ({states}); {best_text}; ETA {eta_text}"


def is_finished(status: Mapping[str, Any]) -> bool:
    """The budget is met and no trial is running or waiting: nothing more will change."""
    counts = status.get("counts") or {}
    budget = status.get("budget")
    return (
        budget is not None
        and status.get("finished", 0) >= budget
        and not counts.get("RUNNING")
        and not counts.get("WAITING")
    )


def read_status(url: str, name: str) -> dict[str, Any]:
    """The study's status (:func:`sweep.present.status.status_view`), read on one connection."""
    from sweep.present.status import status_view
    from sweep.store.read import StudyReader

    with StudyReader(url) as reader:
        return status_view(reader, name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C or SIGTERM sets, so a watch ends between reads, cleanly (exit 0).

    Off the main thread (where handlers cannot be set) Ctrl-C stays a KeyboardInterrupt, which
    ends the watch just as cleanly.
    """
    stop = threading.Event()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
        except ValueError:  # not the main thread
            pass
    try:
        yield stop
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def watch_lines(
    url: str,
    name: str,
    write: Callable[[str], None],
    *,
    interval_s: float = 2.0,
    count: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Write a timestamped :func:`status_line` each time it changes, for a log or a pipe.

    Stops when the study is finished (after its last line), after ``count`` reads, or when
    ``stop`` is set; returns the number of lines written.

    Raises:
        StudyNotFoundError, StorageError: on the first read (later ones are retried).
    """
    import datetime

    from sweep.errors import StorageError

    stop = stop or threading.Event()
    status = read_status(url, name)
    last, written, reads = "", 0, 1
    while True:
        line = status_line(status)
        if line != last:
            stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
            write(f"{stamp} {line}")
            last, written = line, written + 1
        if is_finished(status) or (count is not None and reads >= count):
            return written
        if stop.wait(interval_s):
            return written
        try:
            status = read_status(url, name)
        except StorageError:
            continue  # a lost database: try again at the next interval
        reads += 1


def watch_status(
    url: str,
    name: str,
    *,
    interval_s: float = 2.0,
    count: int | None = None,
    console: Console | None = None,
) -> int:
    """Redraw study ``name``'s frame every ``interval_s`` seconds until Ctrl-C, ``count``
    frames, or the study is finished; returns the number of frames shown. Ctrl-C ends it
    cleanly (no error).

    Raises:
        StudyNotFoundError, StorageError: on the first frame (later ones keep the last frame
            and retry).
    """
    from rich.live import Live

    from sweep.errors import StorageError

    status, frame = _read(url, name)  # errors surface before the screen is taken over
    shown = 1
    with stop_on_signals() as stop:
        with Live(frame, console=console, auto_refresh=False, transient=False) as live:
            live.refresh()
            while (
                not is_finished(status)
                and (count is None or shown < count)
                and not stop.wait(interval_s)
            ):
                try:
                    status, frame = _read(url, name)
                except StorageError:
                    continue  # a lost database: keep the last frame, try again
                live.update(frame, refresh=True)
                shown += 1
    return shown
