"""Run one trial in a fresh child process and stream its progress back.

Each trial gets its own Python process, so TensorFlow's memory (and a GPU out-of-memory state)
cannot leak from one trial to the next, and a crash inside TensorFlow fails one trial rather than
the worker. The parent never imports TensorFlow; only the child's entry point,
:mod:`sweep.run._child`, imports the trial engine. :mod:`sweep.run.objective` is the caller.

Protocol: the parent writes one JSON request line to the child's stdin; the child writes JSON
lines to its stdout (``epoch``, then ``result`` or ``error``); everything else the child prints
goes to its stderr, whose last lines explain a crash.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweep.errors import TrialFailed

_logger = logging.getLogger(__name__)
EpochHandler = Callable[[int, Mapping[str, Any]], None]
#: Answers a child's ``ask`` message (a hypermodel's ``hp`` call) with a JSON value.
AskHandler = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class TrialRequest:
    """What a child process needs to run one trial.

    Attributes:
        split_sha256: The study's split hash; the child refuses a split that differs (empty:
            not checked).
        split_only: Only load and split the data, and return ``{"split_sha256": ...}``.
        score_test: Also score the test split after training (``sweep confirm`` only).
        kind: What the child runs: ``"vae"`` (the built-in VAE from ``params``) or
            ``"hypermodel"`` (a user's KerasTuner hypermodel, :mod:`sweep.train.hypermodel`).
        hypermodel: For ``kind="hypermodel"``: ``ref``, ``fixed``, ``fit`` settings,
            ``objective``, ``direction``, and ``dry_run`` (build once at the defaults, no data).
        weights_path: Where the child saves the trained weights (``None``: not saved).
    """

    params: dict[str, Any]
    data_path: str
    val_fraction: float
    test_fraction: float
    split_seed: int
    epoch_metrics: tuple[str, ...] = ()
    samples_path: str | None = None
    split_sha256: str = ""
    split_only: bool = False
    score_test: bool = False
    kind: str = "vae"
    hypermodel: dict[str, Any] | None = None
    weights_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "data_path": self.data_path,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "split_seed": self.split_seed,
            "epoch_metrics": list(self.epoch_metrics),
            "samples_path": self.samples_path,
            "split_sha256": self.split_sha256,
            "split_only": self.split_only,
            "score_test": self.score_test,
            "kind": self.kind,
            "hypermodel": self.hypermodel,
            "weights_path": self.weights_path,
        }


def run_in_child(
    request: TrialRequest,
    *,
    on_epoch: EpochHandler | None = None,
    env: Mapping[str, str] | None = None,
    on_ask: AskHandler | None = None,
) -> dict[str, Any]:
    """Run ``request`` in a new process; return the result's JSON (``TrialResult.to_json``).

    ``on_epoch(epoch, values)`` runs in this process after each epoch; if it raises (for
    example ``optuna.TrialPruned``), the child is killed and the exception propagates.
    ``on_ask(question)`` answers each ``ask`` message (a hypermodel's ``hp`` call, suggested by
    the Optuna trial here); the answer goes back on the child's stdin as ``{"value": ...}``. If
    it raises, the child is killed and the exception propagates.

    Raises:
        TrialFailed: the trial raised inside the child, or the child died (its last stderr line
            and exit status are in the message).
    """
    child_env = {**os.environ, **(env or {})}
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env.setdefault("KERAS_BACKEND", "tensorflow")
    child_env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "sweep.run._child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        text=True,
        start_new_session=False,
    )
    stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
    drain = threading.Thread(target=_drain, args=(process.stderr, stderr_tail), daemon=True)
    drain.start()
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request.to_json()) + "\n")
        process.stdin.flush()
        if on_ask is None:
            process.stdin.close()
        for line in process.stdout:
            message = _parse(line)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "ask" and on_ask is not None:
                answer = on_ask(message["question"])
                process.stdin.write(json.dumps({"value": answer}) + "\n")
                process.stdin.flush()
            elif kind == "epoch" and on_epoch is not None:
                on_epoch(int(message["epoch"]), message["values"])
            elif kind == "result":
                process.wait()
                return dict(message["result"])
            elif kind == "error":
                process.wait()
                raise TrialFailed(str(message["message"]))
        code = process.wait()
        drain.join(timeout=5)
        raise TrialFailed(_death_reason(code, stderr_tail))
    except BaseException:
        _kill(process)
        raise
    finally:
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()
        drain.join(timeout=5)


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
