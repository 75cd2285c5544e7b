"""``python -m sweep.run._child``: the child-process entry point for one trial.

The only :mod:`sweep.run` module that imports the trial engine (:mod:`sweep.train.engine`, and
so TensorFlow); it runs in the child process started by :func:`sweep.run.isolation.run_in_child`
(see :mod:`sweep.run.isolation` for the messages, :mod:`sweep.run.protocol` for the request
and the outcome).
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
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest


def main(argv: list[str] | None = None) -> int:
    """Prepare (``--preload``), read one request, run it; exit status.

    With ``--preload JSON`` (a :class:`sweep.run.protocol.DataSplit`) the child imports
    TensorFlow and loads the data file before reading its request, and says ``ready``: a warm
    spare. Stdin closed without a request (a spare no longer needed) exits 0.
    """
    clock: dict[str, float] = {"main_at": time.time()}
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides how to stop a trial
    channel = _private_stdout()
    args = list(sys.argv[1:] if argv is None else argv)
    preload = (
        DataSplit(**json.loads(args[1])) if args[:1] == ["--preload"] and len(args) > 1 else None
    )
    warm = _prepare(preload, clock) if preload is not None else None
    if preload is not None:
        _send(channel, {"type": "ready"})
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    clock["request_at"] = time.time()
    _send(channel, {"type": "accepted"})
    try:
        request = TrialRequest.from_json(json.loads(line))
        outcome = _serve(request, channel, warm, clock)
    except Exception as e:  # every failure of the trial itself is reported, not raised
        _send(channel, {"type": "error", "message": _describe(e)})
        return 1
    _send(channel, {"type": "result", "result": outcome.to_json()})
    return 0


def _serve(
    request: TrialRequest,
    channel: TextIO,
    warm: tuple[DataSplit, Any] | None,
    clock: dict[str, float],
) -> TrialOutcome:
    """Load the request's rows (a warm spare's when they match) and do what it asks."""
    from sweep.train.data import check_split_sha256

    if request.purpose != "split" and "imports" not in clock:
        started = time.perf_counter()
        _import_engine()
        clock["imports"] = time.perf_counter() - started
    if warm is not None and warm[0].same_rows(request.split):
        data = warm[1]
    else:
        from sweep.train.data import load_dataset

        started = time.perf_counter()
        split = request.split
        data = load_dataset(
            split.data_path,
            val_fraction=split.val_fraction,
            test_fraction=split.test_fraction,
            split_seed=split.split_seed,
        )
        clock["data_load"] = clock.get("data_load", 0.0) + time.perf_counter() - started
    if request.purpose == "split":
        return TrialOutcome(split_sha256=data.split_sha256)
    check_split_sha256(data, request.split.split_sha256)
    if request.kind.model == "hypermodel":
        return _run_hypermodel(request, channel, data)
    return _run_vae(request, channel, data, clock)


def _prepare(preload: DataSplit, clock: dict[str, float]) -> tuple[DataSplit, Any] | None:
    """Import the engine (TensorFlow) and load the data: ``(split, dataset)``, or ``None``
    when loading failed (the request then loads again and reports the error as its own)."""
    started = time.perf_counter()
    _import_engine()
    clock["imports"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        from sweep.train.data import load_dataset

        data = load_dataset(
            preload.data_path,
            val_fraction=preload.val_fraction,
            test_fraction=preload.test_fraction,
            split_seed=preload.split_seed,
        )
    except Exception:
        return None
    finally:
        clock["data_load"] = time.perf_counter() - started
        clock["prepared_at"] = time.time()
    return preload, data


def _import_engine() -> None:
    """Import the trial engine and TensorFlow; set GPU memory (growth, or a limit) once."""
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import configure_tensorflow

    configure_tensorflow(EngineOptions(gpu_memory_mb=gpu_memory_mb()))


def gpu_memory_mb() -> int | None:
    """The per-process GPU memory limit the worker was given (``SWEEP_GPU_MEMORY_MB``)."""
    value = os.environ.get(GPU_MEMORY_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


#: What the VAE's result carries beyond the protocol's common fields (trial user attributes).
VAE_EXTRA = ("diagnostics", "flags", "elbo_beta", "figure_sample")


def _run_vae(
    request: TrialRequest, channel: TextIO, data: Any, clock: dict[str, float]
) -> TrialOutcome:
    import numpy as np

    from sweep.params import TrialParams
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import preflight
    from sweep.train.engine import run_trial

    params = TrialParams.from_dict(request.params)
    if request.purpose == "preflight":
        return TrialOutcome(reported=tuple(preflight(params, data)))
    wanted = list(request.epoch_metrics)

    def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
        keep = {k: v for k, v in values.items() if k in wanted or k.endswith("loss")}
        _send(channel, {"type": "epoch", "epoch": epoch, "values": keep})

    options = EngineOptions(
        score_every_epoch=bool(wanted),
        score_test=request.score_test,
        gpu_memory_mb=gpu_memory_mb(),
        weights_path=request.weights_path,
    )
    clock["ready_at"] = time.time()
    result = run_trial(params, data, on_epoch=on_epoch, options=options)
    started = time.perf_counter()
    if request.samples_path and result.samples:
        np.savez_compressed(request.samples_path, **result.samples)  # type: ignore[arg-type]
    out = result.to_json()
    timing = {
        **result.timing,
        **{k: round(v, 4) if not k.endswith("_at") else v for k, v in clock.items()},
        "samples_write": round(time.perf_counter() - started, 4),
    }
    return TrialOutcome(
        metrics=result.metrics,
        test_metrics=result.test_metrics,
        history=result.history,
        epochs_run=result.epochs_run,
        seconds=result.seconds,
        extra={k: out[k] for k in VAE_EXTRA},
        timing=timing,
    )


def _run_hypermodel(request: TrialRequest, channel: TextIO, data: Any) -> TrialOutcome:
    """A user's hypermodel: each new ``hp`` value is asked of the parent's trial, or taken
    from a confirmation run's values."""
    from sweep.train import hypermodel as hm

    call = request.hypermodel
    if call is None:
        raise ValueError("a hypermodel request without its hypermodel")
    if request.purpose == "preflight":
        built = hm.preflight(call.ref, call.fixed, call.fit, data)
        return TrialOutcome(
            hyperparameters=built["hyperparameters"],
            reported=tuple(built["reported"]),
            extra={"kind": built["kind"], "has_fit": built["has_fit"]},
        )

    def ask(question: Mapping[str, Any]) -> Any:
        _send(channel, {"type": "ask", "question": question})
        return json.loads(sys.stdin.readline())["value"]

    def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
        _send(channel, {"type": "epoch", "epoch": epoch, "values": dict(values)})

    result = hm.run_hypermodel_trial(
        call.ref,
        suggest=ask if call.values is None else hm.answer_from(call.values),
        fixed=call.fixed,
        fit_settings=call.fit,
        objective=call.objective,
        direction=call.direction,
        data=data,
        on_epoch=on_epoch,
        score_test=request.score_test,
    )
    return TrialOutcome(
        metrics=result["metrics"],
        test_metrics=result["test_metrics"],
        history=result["history"],
        epochs_run=result["epochs_run"],
        seconds=result["seconds"],
        hyperparameters=result["hyperparameters"],
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
