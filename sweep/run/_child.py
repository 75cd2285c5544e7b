"""``python -m sweep.run._child``: the child-process entry point for one trial.

The only :mod:`sweep.run` module that imports the trial engine (:mod:`sweep.train.engine`, and
so TensorFlow); it runs in the child process started by :func:`sweep.run.isolation.run_in_child`
(see :mod:`sweep.run.isolation` for the protocol).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any
from typing import TextIO

from sweep.run.gpus import GPU_MEMORY_ENV


def main(argv: list[str] | None = None) -> int:
    """Prepare (``--preload``), read one request, run the trial; exit status.

    With ``--preload JSON`` (a :class:`sweep.run.isolation.Preload`) the child imports
    TensorFlow and loads the data file before reading its request, and says ``ready``: a warm
    spare. Stdin closed without a request (a spare no longer needed) exits 0.
    """
    clock: dict[str, float] = {"main_at": time.time()}
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides how to stop a trial
    channel = _private_stdout()
    args = list(sys.argv[1:] if argv is None else argv)
    preload = json.loads(args[1]) if args[:1] == ["--preload"] and len(args) > 1 else None
    warm = _prepare(preload, clock) if preload is not None else None
    if preload is not None:
        _send(channel, {"type": "ready"})
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    clock["request_at"] = time.time()
    _send(channel, {"type": "accepted"})
    request = json.loads(line)
    try:
        if request.get("kind") == "hypermodel":
            result = _run_hypermodel(request, channel)
        else:
            result = _run(request, channel, warm, clock)
    except Exception as e:  # every failure of the trial itself is reported, not raised
        _send(channel, {"type": "error", "message": _describe(e)})
        return 1
    _send(channel, {"type": "result", "result": result})
    return 0


def _prepare(preload: Mapping[str, Any], clock: dict[str, float]) -> tuple[Any, Any] | None:
    """Import the engine (TensorFlow) and load the data: ``(preload, dataset)``, or ``None``
    when loading failed (the request then loads again and reports the error as its own)."""
    started = time.perf_counter()
    _import_engine()
    clock["imports"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        from sweep.train.data import load_dataset

        data = load_dataset(
            preload["data_path"],
            val_fraction=preload["val_fraction"],
            test_fraction=preload["test_fraction"],
            split_seed=preload["split_seed"],
        )
    except Exception:
        return None
    finally:
        clock["data_load"] = time.perf_counter() - started
        clock["prepared_at"] = time.time()
    return dict(preload), data


def _import_engine() -> None:
    """Import the trial engine and TensorFlow; set GPU memory (growth, or a limit) once."""
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import configure_tensorflow

    configure_tensorflow(EngineOptions(gpu_memory_mb=gpu_memory_mb()))


def gpu_memory_mb() -> int | None:
    """The per-process GPU memory limit the worker was given (``SWEEP_GPU_MEMORY_MB``)."""
    value = os.environ.get(GPU_MEMORY_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _run(
    request: Mapping[str, Any],
    channel: TextIO,
    warm: tuple[Any, Any] | None,
    clock: dict[str, float],
) -> dict[str, Any]:
    import numpy as np

    from sweep.params import TrialParams
    from sweep.train.data import check_split_sha256
    from sweep.train.data import load_dataset

    params = TrialParams.from_dict(request["params"])
    spec = {k: request[k] for k in ("data_path", "val_fraction", "test_fraction", "split_seed")}
    if request.get("split_only") or warm is None or warm[0] != spec:
        if not request.get("split_only") and "imports" not in clock:
            started = time.perf_counter()
            _import_engine()
            clock["imports"] = time.perf_counter() - started
        started = time.perf_counter()
        data = load_dataset(
            request["data_path"],
            val_fraction=request["val_fraction"],
            test_fraction=request["test_fraction"],
            split_seed=request["split_seed"],
        )
        clock["data_load"] = clock.get("data_load", 0.0) + time.perf_counter() - started
    else:
        data = warm[1]
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
        gpu_memory_mb=gpu_memory_mb(),
        weights_path=request.get("weights_path") or None,
    )
    clock["ready_at"] = time.time()
    result = run_trial(params, data, on_epoch=on_epoch, options=options)
    started = time.perf_counter()
    if request.get("samples_path") and result.samples:
        np.savez_compressed(request["samples_path"], **result.samples)  # type: ignore[arg-type]
    out = result.to_json()
    out["timing"] = {
        **result.timing,
        **{k: round(v, 4) if not k.endswith("_at") else v for k, v in clock.items()},
        "samples_write": round(time.perf_counter() - started, 4),
    }
    return out


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


def _exit_now(code: int) -> None:
    """Exit without the interpreter's and TensorFlow's teardown.

    The worker waits for a trial's process to end before it starts the next trial (its memory
    must be free), and an orderly exit after a trial took about a second, every trial. By
    now the result is sent and every file the trial wrote is closed.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
