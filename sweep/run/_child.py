"""``python -m sweep.run._child``: the child-process entry point for one trial.

The only :mod:`sweep.run` module that imports the trial engine (:mod:`sweep.train.engine`, and
so TensorFlow); it runs in the child process started by :func:`sweep.run.isolation.run_in_child`
(see :mod:`sweep.run.isolation` for the protocol).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any
from typing import TextIO


def main() -> int:
    """Read one request from stdin, run the trial, write the protocol messages; exit status."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides how to stop a trial
    channel = _private_stdout()
    request = json.loads(sys.stdin.readline())
    run = _run_hypermodel if request.get("kind") == "hypermodel" else _run
    try:
        result = run(request, channel)
    except Exception as e:  # every failure of the trial itself is reported, not raised
        _send(channel, {"type": "error", "message": _describe(e)})
        return 1
    _send(channel, {"type": "result", "result": result})
    return 0


def _run(request: Mapping[str, Any], channel: TextIO) -> dict[str, Any]:
    import numpy as np

    from sweep.params import TrialParams
    from sweep.train.data import check_split_sha256
    from sweep.train.data import load_dataset

    params = TrialParams.from_dict(request["params"])
    data = load_dataset(
        request["data_path"],
        val_fraction=request["val_fraction"],
        test_fraction=request["test_fraction"],
        split_seed=request["split_seed"],
    )
    if request.get("split_only"):
        return {"split_sha256": data.split_sha256}
    check_split_sha256(data, request.get("split_sha256") or "")
    from sweep.train.engine import EngineOptions  # not needed to check a split
    from sweep.train.engine import run_trial

    wanted = list(request.get("epoch_metrics") or [])

    def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
        keep = {k: v for k, v in values.items() if k in wanted or k.endswith("loss")}
        _send(channel, {"type": "epoch", "epoch": epoch, "values": keep})

    options = EngineOptions(
        score_every_epoch=bool(wanted),
        score_test=bool(request.get("score_test")),
        weights_path=request.get("weights_path") or None,
    )
    result = run_trial(params, data, on_epoch=on_epoch, options=options)
    if request.get("samples_path") and result.samples:
        np.savez_compressed(request["samples_path"], **result.samples)  # type: ignore[arg-type]
    return result.to_json()


def _run_hypermodel(request: Mapping[str, Any], channel: TextIO) -> dict[str, Any]:
    """A trial of a user's hypermodel: each new ``hp`` value is asked of the parent's trial."""
    from sweep.train import hypermodel as hm

    spec = request["hypermodel"]
    if spec.get("dry_run"):
        return hm.dry_build(spec["ref"], spec.get("fixed") or {})
    from sweep.train.data import check_split_sha256
    from sweep.train.data import load_dataset

    data = load_dataset(
        request["data_path"],
        val_fraction=request["val_fraction"],
        test_fraction=request["test_fraction"],
        split_seed=request["split_seed"],
    )
    check_split_sha256(data, request.get("split_sha256") or "")

    def ask(question: Mapping[str, Any]) -> Any:
        _send(channel, {"type": "ask", "question": question})
        return json.loads(sys.stdin.readline())["value"]

    def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
        _send(channel, {"type": "epoch", "epoch": epoch, "values": dict(values)})

    return hm.run_hypermodel_trial(
        spec["ref"],
        suggest=ask,
        fixed=spec.get("fixed") or {},
        fit_settings=spec["fit"],
        objective=spec["objective"],
        direction=spec["direction"],
        data=data,
        on_epoch=on_epoch,
    )


def _describe(error: Exception) -> str:
    name = type(error).__name__
    text = " ".join(str(error).split())[:500]
    if name == "ResourceExhaustedError" or "out of memory" in text.lower() or "OOM" in text:
        return f"out of memory: {text}"
    if name in ("TrialFailed",):
        return text
    return f"{name}: {text}"


def _send(channel: TextIO, message: Mapping[str, Any]) -> None:
    channel.write(json.dumps(message, default=_jsonable) + "\n")
    channel.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _private_stdout() -> TextIO:
    """Keep the real stdout for protocol messages; send stray prints to stderr."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the worker dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:  # the parent already died before prctl took effect
        os._exit(1)


if __name__ == "__main__":
    raise SystemExit(main())
