"""Run one trial in a fresh child process and stream its progress back.

Each trial gets its own Python process, so TensorFlow's memory (and a GPU out-of-memory state)
cannot leak from one trial to the next, and a crash inside TensorFlow fails one trial rather than
the worker. The parent never imports TensorFlow; only the child's entry point,
:mod:`sweep.run._child`, imports the trial engine. :mod:`sweep.run.objective` is the caller.

Protocol: the parent writes one JSON request line to the child's stdin; the child writes JSON
lines to its stdout (``ready`` once prepared, ``accepted`` once it read the request, ``epoch``,
then ``result`` or ``error``); everything else the child prints goes to its stderr, whose last
lines explain a crash.

:class:`SparePool` keeps the next trial's child warm (TensorFlow imported, data loaded) while a
trial trains; :func:`run_in_child` starts one cold.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from sweep.errors import TrialFailed
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest

_logger = logging.getLogger(__name__)
EpochHandler = Callable[[int, Mapping[str, Any]], None]
#: Answers a child's ``ask`` message (a hypermodel's ``hp`` call) with a JSON value.
AskHandler = Callable[[Mapping[str, Any]], Any]


class SpareLost(Exception):
    """A spare child died (or closed its stdin) before it accepted its request."""


class _Child:
    """One child process: started at once, its stderr drained from the start."""

    def __init__(
        self, env: Mapping[str, str] | None, preload: DataSplit | None, *, spare: bool
    ) -> None:
        child_env = {**os.environ, **(env or {})}
        child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        child_env.setdefault("KERAS_BACKEND", "tensorflow")
        child_env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-m", "sweep.run._child"]
        if preload is not None:
            command += ["--preload", json.dumps(dataclasses.asdict(preload))]
        self.spare = spare
        self.spawned_at = time.time()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            text=True,
            start_new_session=False,
        )
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.drain = threading.Thread(
            target=_drain, args=(self.process.stderr, self.tail), daemon=True
        )
        self.drain.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> bool:
        """Read the child's stdout until it says it is ready (benchmarks, tests); ``False``
        when it died or did not say so in time."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                message = _parse(self.process.stdout.readline())
                if message is not None and message.get("type") == "ready":
                    return True
        return False

    def kill(self) -> None:
        _kill(self.process)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.drain.join(timeout=5)


def run_in_child(
    request: TrialRequest,
    *,
    on_epoch: EpochHandler | None = None,
    env: Mapping[str, str] | None = None,
    on_ask: AskHandler | None = None,
) -> TrialOutcome:
    """Run ``request`` in a new process; return what it measured.

    ``on_epoch(epoch, values)`` runs in this process after each epoch; if it raises (for
    example ``optuna.TrialPruned``), the child is killed and the exception propagates.
    ``on_ask(question)`` answers each ``ask`` message (a hypermodel's ``hp`` call, suggested by
    the Optuna trial here); the answer goes back on the child's stdin as ``{"value": ...}``. If
    it raises, the child is killed and the exception propagates.

    Raises:
        TrialFailed: the trial raised inside the child, or the child died (its last stderr line
            and exit status are in the message).
    """
    return _drive(_Child(env, None, spare=False), request, on_epoch, on_ask)


class SparePool:
    """Trial processes with a warm spare: the next trial's child starts while this one trains.

    The spare imports TensorFlow and loads and validates the data file (``split``), then waits
    for its request on stdin. Every trial still runs in a fresh process that exits after it. A
    spare that died before its trial is replaced by a fresh process and the trial runs there;
    the spare dies with the worker (``PR_SET_PDEATHSIG`` in the child, and :meth:`close`).

    Args:
        split: The study's data file and split (its hash is checked per request).
        env: Extra environment for the children.
        spare: Keep a spare; ``False`` (``--no-spare``) starts each trial's child cold, with the
            same preload, when the trial starts.
    """

    def __init__(
        self, split: DataSplit, env: Mapping[str, str] | None = None, *, spare: bool = True
    ) -> None:
        self.split = split
        self.env = dict(env or {})
        self.spare = spare
        self._spare: _Child | None = None
        self.replaced = 0  # spares found dead and replaced (benchmarks, tests)

    def __enter__(self) -> SparePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spare_pid(self) -> int | None:
        """The waiting spare's process id, if one is started."""
        return self._spare.pid if self._spare is not None else None

    def warm_up(self, timeout_s: float = 300.0) -> bool:
        """Start the spare now and wait until it is ready (benchmarks and tests)."""
        if self._spare is None or not self._spare.alive():
            self._spare = self._start(spare=True)
        return self._spare.wait_ready(timeout_s)

    def run(
        self,
        request: TrialRequest,
        *,
        on_epoch: EpochHandler | None = None,
        on_ask: AskHandler | None = None,
    ) -> TrialOutcome:
        """Run ``request`` in the spare (or a fresh child) and start the next spare meanwhile.

        Same contract as :func:`run_in_child`.
        """
        child = self._take()
        if self.spare:
            self._spare = self._start(spare=True)
        try:
            return _drive(child, request, on_epoch, on_ask)
        except SpareLost as e:
            self.replaced += 1
            _logger.warning("spare trial process lost before its trial (%s); starting afresh", e)
            return _drive(self._start(spare=False), request, on_epoch, on_ask)

    def close(self) -> None:
        """Kill the spare, if any (the worker is done)."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()

    def _take(self) -> _Child:
        spare, self._spare = self._spare, None
        if spare is not None and spare.alive():
            return spare
        if spare is not None:
            self.replaced += 1
            _logger.warning(
                "spare trial process %d died before its trial (%s); starting afresh",
                spare.pid,
                _death_reason(spare.process.wait(), spare.tail),
            )
            spare.kill()
        return self._start(spare=False)

    def _start(self, *, spare: bool) -> _Child:
        return _Child(self.env, self.split, spare=spare)


def _drive(
    child: _Child,
    request: TrialRequest,
    on_epoch: EpochHandler | None,
    on_ask: AskHandler | None = None,
) -> TrialOutcome:
    """Send ``request`` to ``child`` and follow it to its result (see :func:`run_in_child`).

    Raises:
        SpareLost: ``child`` is a spare that ended before it accepted the request.
        TrialFailed: the trial failed or its process died.
    """
    process = child.process
    accepted = False
    try:
        assert process.stdin is not None and process.stdout is not None
        sent_at = time.time()
        try:
            process.stdin.write(json.dumps(request.to_json()) + "\n")
            process.stdin.flush()
            if on_ask is None:  # a hypermodel's child reads its answers from stdin
                process.stdin.close()
        except OSError:  # a broken pipe: the child is gone; its exit status tells why
            pass
        for line in process.stdout:
            message = _parse(line)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "accepted":
                accepted = True
            elif kind == "ask" and on_ask is not None:
                answer = on_ask(message["question"])
                process.stdin.write(json.dumps({"value": answer}) + "\n")
                process.stdin.flush()
            elif kind == "epoch" and on_epoch is not None:
                on_epoch(int(message["epoch"]), message["values"])
            elif kind == "result":
                process.wait()
                result = _with_timing(dict(message["result"]), child.spawned_at, sent_at)
                return TrialOutcome.from_json(result)
            elif kind == "error":
                process.wait()
                raise TrialFailed(str(message["message"]))
        code = process.wait()
        child.drain.join(timeout=5)
        reason = _death_reason(code, child.tail)
        if child.spare and not accepted:
            raise SpareLost(reason)
        raise TrialFailed(reason)
    except BaseException:
        _kill(process)
        raise
    finally:
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()
        child.drain.join(timeout=5)


def _with_timing(result: dict[str, Any], spawned_at: float, sent_at: float) -> dict[str, Any]:
    """Turn the child's clock readings into stage seconds (``result["timing"]``).

    ``process_start`` (spawn to the child's first line), ``imports`` and ``data_load`` are
    what the child's preparation took; ``startup_exposed`` is how long the trial waited for it
    after its request was sent (about all of it for a cold child, nothing for a ready spare);
    ``spare_idle`` is how long a ready spare waited for its request.
    """
    timing = dict(result.get("timing") or {})
    main_at = timing.pop("main_at", None)
    ready_at = timing.pop("ready_at", None)
    request_at = timing.pop("request_at", None)
    prepared_at = timing.pop("prepared_at", None)
    if isinstance(main_at, (int, float)) and isinstance(ready_at, (int, float)):
        timing["process_start"] = round(max(0.0, main_at - spawned_at), 4)
        timing["startup_exposed"] = round(max(0.0, ready_at - sent_at), 4)
        if isinstance(request_at, (int, float)) and isinstance(prepared_at, (int, float)):
            timing["spare_idle"] = round(max(0.0, request_at - prepared_at), 4)
    result["timing"] = timing
    return result


def _parse(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def _drain(stream: Any, tail: collections.deque[str]) -> None:
    for line in stream:
        line = line.rstrip()
        if line:
            tail.append(line)
            _logger.debug("trial process: %s", line)


def _death_reason(code: int, tail: collections.deque[str]) -> str:
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
        if code == -signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with status {code}"
    last = next((line for line in reversed(tail) if "Traceback" not in line), "")
    return f"trial process {how}" + (f": {last[:300]}" if last else "")


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _logger.warning("trial process %d did not exit after SIGKILL", process.pid)
