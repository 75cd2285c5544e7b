"""The warm spare trial process (:class:`sweep.run.isolation.SparePool`) and per-GPU workers.

Real child processes and real Keras trials (tiny model, 2 epochs, synthetic rows); the GPU side
is tested on the CPU: the environment and options each worker gets, and the refusal of bad
values. Killing workers and spares is in ``tests/faults/test_spare.py``.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

import optuna
import pytest

import sweep.run.objective as objective_module
from sweep.config import RunOptions
from sweep.errors import TrialFailed
from sweep.errors import UsageError
from sweep.params import TrialParams
from sweep.run import _child
from sweep.run.gpus import ALLOW_GROWTH_ENV
from sweep.run.gpus import GPU_MEMORY_ENV
from sweep.run.gpus import TRIALS_PER_GPU_ENV
from sweep.run.gpus import parse_gpus
from sweep.run.gpus import worker_environments
from sweep.run.isolation import SpareLost
from sweep.run.isolation import SparePool
from sweep.run.isolation import _Child
from sweep.run.isolation import _drive
from sweep.run.isolation import run_in_child
from sweep.run.launch import worker_commands
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest

TINY = TrialParams(encoder_units=(16,), coding_size=4, epochs=2, batch_size=32, seed=3).to_dict()


def _request(data: Path) -> TrialRequest:
    return TrialRequest(
        kind=TrialKind(),
        split=DataSplit(str(data), 0.2, 0.0, 0),
        params=TINY,
        epoch_metrics=("expression.auroc",),
    )


def _comparable(result: TrialOutcome) -> dict[str, Any]:
    return {
        "metrics": result.metrics,
        "history": result.history,
        "diagnostics": result.extra["diagnostics"],
        "flags": result.extra["flags"],
        "epochs_run": result.epochs_run,
    }


def test_a_warm_spare_gives_the_same_trial_as_a_cold_process(synthetic_npz: Path) -> None:
    request = _request(synthetic_npz)
    cold = run_in_child(request)  # the path without a spare: load after the request
    with SparePool(request.split, spare=True) as pool:
        assert pool.warm_up(timeout_s=300)  # TensorFlow imported, data loaded, waiting
        epochs: list[int] = []
        warm = pool.run(request, on_epoch=lambda epoch, values: epochs.append(epoch))
        next_spare = pool.spare_pid
    assert _comparable(warm) == _comparable(cold)
    assert epochs == [0, 1] and pool.replaced == 0
    assert next_spare is not None  # the next trial's process started while this one ran
    timing = warm.timing
    for stage in ("process_start", "imports", "data_load", "training", "final_metrics"):
        assert timing[stage] >= 0
    assert timing["startup_exposed"] < timing["imports"]  # the spare was ready: start-up hidden
    assert cold.timing["startup_exposed"] >= cold.timing["data_load"]


def _dead_child(spare: bool) -> _Child:
    child = _Child(None, None, spare=spare)
    child.process.send_signal(signal.SIGKILL)
    child.process.wait()
    return child


def test_a_spare_that_died_before_its_request_is_told_apart(synthetic_npz: Path) -> None:
    with pytest.raises(SpareLost, match="killed by SIGKILL"):
        _drive(_dead_child(spare=True), _request(synthetic_npz), None)
    with pytest.raises(TrialFailed, match="killed by SIGKILL"):  # a trial's own process: FAIL
        _drive(_dead_child(spare=False), _request(synthetic_npz), None)


def test_gpus_parse_with_repeated_ids_and_refuse_nonsense() -> None:
    assert parse_gpus("0,1") == ("0", "1")
    assert parse_gpus("0,0, 1") == ("0", "0", "1")
    assert parse_gpus(None) == ()
    for bad in ("", "0,x", "-1", "0,,1", "gpu0", "1.5"):
        with pytest.raises(UsageError, match="--gpus expects GPU indices"):
            parse_gpus(bad)


def test_each_gpu_worker_gets_its_gpu_share_and_memory_mode() -> None:
    envs = worker_environments(("0", "1"), trials_per_gpu=2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "0", "1", "1"]
    assert all(e[TRIALS_PER_GPU_ENV] == "2" and e[ALLOW_GROWTH_ENV] == "true" for e in envs)
    assert all(GPU_MEMORY_ENV not in e for e in envs)
    repeated = worker_environments(("0", "0", "1"), gpu_memory_mb=8000)
    assert [(e["CUDA_VISIBLE_DEVICES"], e[TRIALS_PER_GPU_ENV]) for e in repeated] == [
        ("0", "2"),
        ("0", "2"),
        ("1", "1"),
    ]
    assert all(e[GPU_MEMORY_ENV] == "8000" and ALLOW_GROWTH_ENV not in e for e in repeated)


def test_worker_commands_carry_gpus_and_no_spare() -> None:
    options = RunOptions(gpus=("3",), trials_per_gpu=3, spare=False, data_path="d.npz")
    commands = worker_commands("s", options, {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "9"})
    assert len(commands) == 3
    for index, (argv, env) in enumerate(commands):
        assert argv[argv.index("--worker-index") + 1] == str(index)
        assert argv[-1] == "--no-spare" and argv[argv.index("--data") + 1] == "d.npz"
        assert env["CUDA_VISIBLE_DEVICES"] == "3" and env[TRIALS_PER_GPU_ENV] == "3"
    cpu = worker_commands("s", RunOptions(workers=2), {"PATH": "/bin"})
    assert all("--no-spare" not in argv for argv, _ in cpu)
    assert all("CUDA_VISIBLE_DEVICES" not in env for _, env in cpu)
    assert all(TRIALS_PER_GPU_ENV not in env for _, env in cpu)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trials_per_gpu": 0}, "--trials-per-gpu must be at least 1, got 0"),
        ({"gpu_memory_mb": 0}, "--gpu-memory-mb must be at least 1, got 0"),
        ({"gpu_memory_mb": -5}, "--gpu-memory-mb must be at least 1, got -5"),
    ],
)
def test_run_options_refuse_bad_gpu_values(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RunOptions(gpus=("0",), **options)


def test_gpu_values_need_gpus() -> None:
    with pytest.raises(UsageError, match="need --gpus"):
        worker_environments((), trials_per_gpu=2)
    with pytest.raises(UsageError, match="--trials-per-gpu must be at least 1"):
        worker_environments(("0",), trials_per_gpu=0)


def test_the_trial_process_reads_its_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GPU_MEMORY_ENV, "4096")
    assert _child.gpu_memory_mb() == 4096
    monkeypatch.setenv(GPU_MEMORY_ENV, "")
    assert _child.gpu_memory_mb() is None


def test_every_trial_records_its_gpu_and_k(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.objective import tiny_objective as _objective
    from tests.support.objective import trial_result as _result

    def child(request: TrialRequest, **kwargs: Any) -> TrialOutcome:
        return _result(0.7).with_timing({"training": 1.0})

    monkeypatch.setattr(objective_module, "run_in_child", child)
    objective = dataclasses.replace(
        _objective(), env={"CUDA_VISIBLE_DEVICES": "1", TRIALS_PER_GPU_ENV: "2"}
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    attrs = study.trials[0].user_attrs
    assert (attrs["gpu"], attrs["trials_per_gpu"], attrs["cuda_visible_devices"]) == ("1", 2, "1")
    assert attrs["timing"]["training"] == 1.0 and attrs["timing"]["objective"] >= 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    study.optimize(_objective(), n_trials=1)
    assert study.trials[1].user_attrs["gpu"] is None
    assert study.trials[1].user_attrs["trials_per_gpu"] is None
