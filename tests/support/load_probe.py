"""``python -m tests.support.load_probe SPEC``: what each kind of sweep process loads, in one run.

The interpreter starts once and stays light (the standard library only). For each stage of
``SPEC`` (a JSON object; see :data:`STAGES`) it forks: the fork runs that stage's real entry
point, then sends its ``sys.modules`` back through a pipe and exits, so no stage sees another's
imports. One JSON line on stdout maps each stage to::

    {"modules": [module names, heavy packages' and sweep's only], "error": null | "traceback",
     "seconds": wall time of the stage}

Linux only (``os.fork``), like the trial process itself (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

#: Top-level packages reported (everything else in ``sys.modules`` is left out).
WATCHED = (
    "tensorflow",
    "keras",
    "keras_tuner",
    "sklearn",
    "scipy",
    "numpy",
    "pandas",
    "optuna",
    "sqlalchemy",
    "psycopg",
    "matplotlib",
    "sweep",
)


def _cli(*args: str) -> None:
    from sweep.cli import main

    code = main(list(args))
    if code != 0:
        raise RuntimeError(f"sweep {' '.join(args)} exited {code}")


def _read_commands(spec: dict[str, Any]) -> None:
    """``sweep best/status/trials/studies``: what the read-only commands load at start-up."""
    name = spec["study"]
    for command in (["best", name], ["status", name], ["trials", name], ["studies"]):
        _cli(*command)


def _launch_parent(spec: dict[str, Any]) -> None:
    """``sweep launch --no-run``: the launching process (the reference runs in its own child).

    Then one COMPLETE trial meets study ``probe``'s budget of 1, for the ``worker parent``
    stage (with Optuna, which the launch has loaded already)."""
    data = ["--space", spec["space"], "--data", spec["data"]]
    _cli("launch", "--no-run", "--study", "probe", "--n-trials", "1", *data)
    optuna = sys.modules["optuna"]
    study = optuna.load_study(study_name="probe", storage=os.environ["SWEEP_STORAGE"])
    study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))


def _worker_parent(spec: dict[str, Any]) -> None:
    """``sweep worker probe`` on a study whose budget is met: start-up, then exit 0, no trial."""
    _cli("worker", "probe", "--no-spare")


def _trial_child(spec: dict[str, Any]) -> None:
    """The trial process as a warm spare starts: ``python -m <child> --preload JSON``.

    It imports TensorFlow and the engine and loads the data, says ``ready``, finds stdin closed
    and returns (the child module's ``main``, run as ``python -m`` runs it). Then every module
    of ``spec["layers"]["train"]`` is imported too: what a trial may reach, all at once."""
    import runpy

    preload = {"data_path": spec["data"], "val_fraction": 0.2, "test_fraction": 0.0}
    preload["split_seed"] = 0
    child = runpy.run_module(spec["child_module"], run_name="sweep_probe")
    sys.stdin = open(os.devnull)  # noqa: SIM115  (the fork exits right after)
    code = child["main"](["--preload", json.dumps(preload)])
    if code != 0:
        raise RuntimeError(f"the trial process exited {code}")
    _import_layer(spec, "train")


def _import(*modules: str) -> Callable[[dict[str, Any]], None]:
    def run(spec: dict[str, Any]) -> None:
        for module in modules:
            __import__(module)

    return run


def _import_layer(spec: dict[str, Any], layer: str) -> None:
    for module in spec["layers"][layer]:
        __import__(module)


def _names(spec: dict[str, Any]) -> None:
    from sweep.names import metric_names

    metric_names(["a", "expressed"])


def _facade(spec: dict[str, Any]) -> None:
    import sweep

    sweep.load_model, sweep.load_trials, sweep.load_history  # noqa: B018  (lazy attributes)


STAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "sweep.names": _names,
    "import sweep": _facade,
    "import sweep.train.engine": _import("sweep.train.engine"),
    "cli layer": lambda spec: _import_layer(spec, "cli"),
    "read layers": lambda spec: _import_layer(spec, "read"),
    "run layer": lambda spec: _import_layer(spec, "run"),
    "read commands": _read_commands,
    "launch parent": _launch_parent,
    "worker parent": _worker_parent,
    "trial child": _trial_child,
}


def _in_fork(stage: Callable[[dict[str, Any]], None], spec: dict[str, Any]) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: run the stage, report, exit without any teardown
        os.close(read_end)
        error = None
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # commands print tables; only the report goes to the parent
            with contextlib.redirect_stdout(sys.stderr):
                stage(spec)
        except BaseException:
            error = traceback.format_exc()
        loaded = sorted(m for m in list(sys.modules) if m.split(".")[0] in WATCHED)
        with os.fdopen(write_end, "w") as out:
            json.dump({"modules": loaded, "error": error}, out)
        os._exit(0)
    started = time.perf_counter()
    os.close(write_end)
    with os.fdopen(read_end) as report:
        text = report.read()
    os.waitpid(pid, 0)
    result = json.loads(text) if text else {"modules": [], "error": "the fork sent no report"}
    return {**result, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    os.environ.update(spec.get("env", {}))
    results = {name: _in_fork(STAGES[name], spec) for name in spec["stages"]}
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
