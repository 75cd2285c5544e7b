"""Launch and resume sweeps: create the study, then run local workers (one per GPU if asked).

The launching process never imports TensorFlow: it validates the space and the data, writes the
study (a :class:`sweep.config.StudyConfig`, through :mod:`sweep.store.study`), and either runs
one worker in-process (:mod:`sweep.run.worker`) or starts worker processes (``sweep worker``)
that get the storage URL through the environment, never on their command line. Settings,
defaults and their checks live in :mod:`sweep.config`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import OPTIONS
from sweep.config import REFERENCE_C
from sweep.config import RunOptions
from sweep.config import StudyConfig
from sweep.config import StudySettings
from sweep.errors import PreflightError
from sweep.errors import StudyComplete
from sweep.errors import SweepStopped
from sweep.errors import TrialFailed
from sweep.errors import UsageError
from sweep.log import quiet_optuna
from sweep.params import BASELINES
from sweep.params import TrialParams
from sweep.run.gpus import parse_gpus
from sweep.run.gpus import worker_environments
from sweep.run.hypermodel import DEFAULT_OBJECTIVE
from sweep.run.hypermodel import fingerprint as hypermodel_fingerprint
from sweep.run.hypermodel import hypermodel_space
from sweep.run.hypermodel import plan_hypermodel
from sweep.run.isolation import run_in_child
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest
from sweep.run.racing import configuration_states
from sweep.run.racing import work_left
from sweep.run.sampling import races
from sweep.run.signals import Interrupted
from sweep.run.signals import signals_as_interrupts
from sweep.run.worker import WorkerSettings
from sweep.run.worker import run_worker
from sweep.store.artifacts import default_root
from sweep.store.artifacts import new_location
from sweep.store.confirm import is_companion
from sweep.store.rdb import open_storage
from sweep.store.study import create_or_reuse_study
from sweep.store.study import enqueue_baseline
from sweep.store.study import finished_count
from sweep.store.study import load_config
from sweep.store.study import save_config
from sweep.store.urls import STORAGE_ENV
from sweep.store.urls import mask_url

if TYPE_CHECKING:
    from sweep.space import SearchSpace

_logger = logging.getLogger(__name__)


__all__ = [
    "LaunchRequest",
    "StudyPlan",
    "RunOptions",
    "check_gpus",
    "create_study",
    "parse_gpus",
    "plan_baseline",
    "resume_study",
    "run_workers",
    "worker_commands",
]


@dataclass(frozen=True)
class LaunchRequest:
    """Everything ``sweep launch`` was asked for.

    Attributes:
        storage_url: The study database (unmasked; never printed).
        study_name: The study to create or continue.
        space: A search-space file, or a bundled space's name.
        data_path: The data file; ``None`` uses the bundled data.
        settings: Budget, sampler, pruner, split and heartbeat (checked on construction).
        overrides: ``--set`` values (already coerced), applied to the space as fixed values.
        artifacts_dir: The artifact root (``--artifacts DIR``); the study's folder is
            ``DIR/NAME``. ``None``: beside a SQLite file (``sweep.db.artifacts/NAME``, stored
            relative to the file, :mod:`sweep.store.artifacts`); none for PostgreSQL.
        force_new: Create ``NAME-2`` when ``NAME`` exists with another space or data.
        baseline: ``"notes"`` enqueues the notes' configuration as trial 0 of a new study,
            ``"none"`` enqueues nothing, ``None`` does what the space's ``baseline`` key says.
        reference: ``"logistic"`` fits the supervised reference when a new study is created
            (:mod:`sweep.run.reference`; seconds, in a child process), ``"none"`` skips it.
        reference_c: The reference's inverse regularisation strength C.
        hypermodel: A KerasTuner hypermodel (``module:attr`` or ``file.py:attr``) to sweep
            instead of the built-in VAE (:mod:`sweep.run.hypermodel`); ``space`` is then unused.
        objective: The metric to optimise alone: a VAE metric (``sweep metrics``; ``None``: the
            space's objective) or, with ``hypermodel``, a Keras metric (``None``: ``val_loss``).
        direction: Its direction (``None``: the metric's natural one, guessed from the name).
        hp_assignments: With ``hypermodel``: the raw ``--set name=value`` strings.
        keep_weights: Keep the weights of the K best trials in the artifact store (0: none);
            needs an artifact store and a single objective. ``None`` (the default): 1 where
            that works (the built-in VAE, one objective, an artifact store), else 0.
        pruner_chosen: Whether the user chose ``settings.pruner``; a default one is turned off
            for a space of several objectives (which no pruner of Optuna's prunes) and said so.
    """

    storage_url: str
    study_name: str = OPTIONS["study_name"].default
    space: str = OPTIONS["space"].default
    data_path: str | None = None
    settings: StudySettings = field(default_factory=StudySettings)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    artifacts_dir: str | None = None
    force_new: bool = False
    baseline: str | None = None
    reference: str = OPTIONS["reference"].default
    reference_c: float = REFERENCE_C
    hypermodel: str | None = None
    objective: str | None = OPTIONS["objective"].default
    direction: str | None = None
    hp_assignments: tuple[str, ...] = ()
    keep_weights: int | None = None
    pruner_chosen: bool = True


@dataclass(frozen=True)
class StudyPlan:
    """What a launch decided for one kind of study, before anything is written.

    Attributes:
        space: The search space (a hypermodel's records only its objective and epochs).
        fingerprint: What defines the sweep (a study of another fingerprint is another study).
        n_trials: The budget (a grid's size caps it).
        what: How the launch line names the model (``space notes (…)`` or ``hypermodel m:hm``).
        fields: Kind-specific :class:`StudyConfig` fields (baseline, hypermodel, kept weights).
        reference: Fit the supervised reference when the study is created.
    """

    space: SearchSpace
    fingerprint: str
    n_trials: int
    what: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    reference: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


def create_study(request: LaunchRequest) -> str:
    """Check everything, then create (or reuse) the study. Returns its name.

    Before the database is touched, the data file is loaded and split, the space (or the
    hypermodel) is checked, and the model is built and trained one step on one batch of the
    data in a child process (:func:`preflight`): a wrong objective name, a model that does not
    fit the data, or a ``build`` that raises is refused in one line with no study created.

    A new VAE study with a baseline gets it as trial 0 (WAITING, user attribute ``baseline``);
    a reused study keeps the trials it has, so a repeated launch never enqueues it twice. A new
    VAE study also gets its supervised reference (unless ``reference="none"``); one that fails
    is a warning, not a failed launch.

    Raises:
        SpaceError, DataError, StorageError, StudyConflictError, UsageError, HypermodelError,
        PreflightError.
    """
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import file_sha256
    from sweep.train.data import load_dataset

    quiet_optuna()
    settings = request.settings
    data_path = str(Path(request.data_path or BUNDLED_DATA).resolve())
    dataset = load_dataset(
        data_path,
        val_fraction=settings.val_fraction,
        test_fraction=settings.test_fraction,
        split_seed=settings.split_seed,
    )
    split = DataSplit.of(settings, data_path, dataset.split_sha256)
    if request.hypermodel is not None:
        plan = plan_hypermodel_study(request, split)
    else:
        plan = plan_vae_study(request, [s.name for s in dataset.sections], split)
    summary = dataset.summary()
    config = StudyConfig(
        **{**dataclasses.asdict(settings), "n_trials": plan.n_trials, **plan.settings},
        space=plan.space.to_json(),
        space_fingerprint=plan.fingerprint,
        data_path=data_path,
        data_sha256=file_sha256(data_path),
        data_summary=summary,
        split_sha256=dataset.split_sha256,
        artifacts_dir=new_location(request.storage_url, request.study_name, request.artifacts_dir),
        **plan.fields,
    )
    storage = open_storage(request.storage_url, create=True)
    name, created = create_or_reuse_study(
        storage, request.study_name, config, force_new=request.force_new
    )
    if created and name != request.study_name and config.artifacts_dir:  # --force-new: NAME-2
        location = new_location(request.storage_url, name, request.artifacts_dir)
        config = dataclasses.replace(config, artifacts_dir=location)
        save_config(storage, name, config)
    if not created:
        _logger.info(
            "study %r already exists with this %s and data: continuing it",
            name,
            "hypermodel" if request.hypermodel else "space",
        )
        return name
    if config.baseline:
        enqueue_baseline(storage, name, config)
        differs = ", ".join(
            f"{k}={v[0]} (baseline: {v[1]})" for k, v in config.baseline_differs.items()
        )
        _logger.info(
            "trial 0 is the %s baseline%s",
            config.baseline,
            f", with the study's fixed {differs}" if differs else "",
        )
    if plan.reference:
        from sweep.run.reference import fit_and_store_reference

        fit_and_store_reference(storage, name, config, C=request.reference_c)
    _logger.info(
        "created study %r in %s: %d trials of %s, data %s (%d features)",
        name,
        mask_url(request.storage_url),
        plan.n_trials,
        plan.what,
        data_path,
        summary.get("n_features", 0),
    )
    return name


def plan_vae_study(request: LaunchRequest, sections: Sequence[str], split: DataSplit) -> StudyPlan:
    """The built-in VAE's study: its space, budget, baseline; checked by one training step.

    Raises:
        SpaceError, UsageError, PreflightError.
    """
    from sweep.names import metric_names
    from sweep.space import load_space

    space = load_space(request.space)
    if request.overrides:
        space = space.with_fixed(request.overrides)
    if request.objective is not None:
        space = space.with_objective(
            request.objective,
            vae_direction(request.objective, request.direction),
            source="--objective",
        )
    elif request.direction is not None:
        raise UsageError("--direction needs --objective (the space's objective has its own)")
    space.check_metrics(metric_names(list(sections)))
    settings = request.settings
    n_trials = settings.n_trials
    if settings.sampler == "grid":
        size = 1
        for values in space.grid().values():
            size *= len(values)
        if n_trials > size:
            _logger.warning(
                "the grid has %d points; the budget is lowered from %d", size, n_trials
            )
            n_trials = size
    changes: dict[str, Any] = {}
    if space.is_multi_objective and settings.pruner != "none":
        if request.pruner_chosen:
            raise UsageError(
                f"--pruner {settings.pruner} needs a single objective; this space has "
                f"{len(space.objectives)}: pass --pruner none (or leave --pruner out)"
            )
        changes["pruner"] = "none"
    has_store = bool(request.artifacts_dir) or default_root(request.storage_url) is not None
    keep = request.keep_weights
    if keep is None:  # the default: the best trial's weights, where they can be kept
        keep = 1 if has_store and not space.is_multi_objective else 0
    check_keep_weights(keep, has_store, space.is_multi_objective)
    baseline = space.baseline if request.baseline is None else request.baseline
    baseline = None if baseline == "none" else baseline
    baseline_params, baseline_differs = plan_baseline(space, baseline) if baseline else ({}, {})
    preflight(
        TrialRequest(
            kind=TrialKind(),
            split=split,
            params=preflight_params(space, settings.seed).to_dict(),
            purpose="preflight",
        ),
        what=f"the VAE of space {request.space}",
    )
    return StudyPlan(
        space=space,
        fingerprint=space.fingerprint(),
        n_trials=n_trials,
        what=f"space {request.space} ({space.fingerprint()[:12]})"
        + (", pruner none (several objectives)" if changes else ""),
        fields={
            "baseline": baseline,
            "baseline_params": baseline_params,
            "baseline_differs": baseline_differs,
            "keep_weights": keep,
        },
        reference=request.reference != "none",
        settings=changes,
    )


def plan_hypermodel_study(request: LaunchRequest, split: DataSplit) -> StudyPlan:
    """A KerasTuner hypermodel's study, checked by building it and one training step.

    Raises:
        HypermodelError, UsageError.
    """
    from sweep.space import SearchSpace

    assert request.hypermodel is not None
    settings = request.settings
    if settings.sampler in ("grid", "nsga2"):
        raise UsageError(
            f"--sampler {settings.sampler} cannot search a hypermodel (its space is defined by "
            "running build); use tpe, random or cmaes"
        )
    if request.keep_weights:
        raise UsageError(
            "--keep-weights keeps the built-in VAE's weights; a hypermodel's trials keep none"
        )
    spec = plan_hypermodel(
        request.hypermodel,
        objective=request.objective or DEFAULT_OBJECTIVE,
        direction=request.direction,
        split=split,
        assignments=request.hp_assignments,
    )
    names = [s["config"]["name"] for s in spec["hyperparameters"].get("space", [])]
    return StudyPlan(
        space=SearchSpace.from_mapping(hypermodel_space(spec), source="--hypermodel"),
        fingerprint=hypermodel_fingerprint(spec),
        n_trials=settings.n_trials,
        what=(
            f"hypermodel {spec['ref']} ({spec['direction']} {spec['objective']}; build "
            f"declared {', '.join(names) or 'no hyperparameters'})"
        ),
        fields={"hypermodel": spec},
    )


def preflight_params(space: SearchSpace, seed: int) -> TrialParams:
    """A configuration of ``space`` to check a launch with (one seeded random draw)."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.suggest(study.ask())


def preflight(request: TrialRequest, *, what: str) -> TrialOutcome:
    """Run a ``preflight`` request in a child: build the model, one step on one batch.

    Raises:
        PreflightError: the build or the step failed (one line, the child's reason).
    """
    try:
        return run_in_child(request)
    except TrialFailed as e:
        raise PreflightError(
            f"{what} failed its check on one batch of '{request.split.data_path}': {e}"
        ) from None


def vae_direction(metric: str, direction: str | None) -> str:
    """``direction``, else ``metric``'s natural one.

    Raises:
        UsageError: neither side of ``metric`` is better (a threshold, a rate) and no direction.
    """
    from sweep.names import natural_direction

    chosen = direction or natural_direction(metric)
    if chosen is None:
        raise UsageError(f"--objective {metric}: neither side is better; pass --direction")
    return chosen


def check_keep_weights(keep: int, has_store: bool, multi_objective: bool) -> None:
    """Refuse ``--keep-weights K`` that cannot work, before the database is touched.

    Raises:
        UsageError: ``K < 0``, no artifact store (PostgreSQL without ``--artifacts DIR``), or a
            study of several objectives (the K best are ranked by one objective).
    """
    if keep < 0:
        raise UsageError(f"--keep-weights must be at least 0, got {keep}")
    if keep == 0:
        return
    if not has_store:
        raise UsageError(
            "--keep-weights needs an artifact store: pass --artifacts DIR (a folder every "
            "worker can reach; it is beside the file only for SQLite)"
        )
    if multi_objective:
        raise UsageError(
            "--keep-weights ranks trials by one objective; this space has several (export a "
            "Pareto trial by re-running it: sweep trial --from NAME:N)"
        )


def plan_baseline(space: SearchSpace, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values to enqueue baseline ``name`` with, and where the study's fixed values differ.

    The baseline's searched values are exactly its own (:data:`sweep.params.BASELINES`); the
    space's fixed values (``--set`` included, e.g. ``epochs=1``) stay as the study says, so the
    baseline is trained under the same protocol as every other trial and stays comparable.

    Returns:
        ``(params, differs)``: the searched values for ``study.enqueue_trial`` and
        ``{name: [study value, baseline value]}`` for each fixed value that differs.

    Raises:
        SpaceError: one line, when a baseline value lies outside the space's ranges or choices.
    """
    import optuna

    wanted = BASELINES[name]
    params = space.trial_values(wanted, what=f"the {name} baseline")
    ran = space.suggest(optuna.trial.FixedTrial(params)).to_dict()
    differs = {k: [v, wanted.to_dict()[k]] for k, v in ran.items() if v != wanted.to_dict()[k]}
    return params, differs


def resume_study(storage_url: str, name: str, n_trials: int | None = None) -> StudyConfig:
    """Check that study ``name`` has work left (or raise its budget to ``n_trials``).

    Raises:
        OptionError: ``n_trials`` is below 1.
        UsageError: ``n_trials`` is below the trials the study already finished.
        StudyComplete: the study already met its budget and no larger one was given.
    """
    import optuna

    storage = open_storage(storage_url)
    config = load_config(storage, name)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = finished_count(configuration_states(trials))  # a racing study's seeds apart
    seeds_left = races(config) and work_left(
        trials,
        max_seeds=config.max_seeds,
        maximize=config.search_space.directions[0] == "maximize",
    )
    if n_trials is not None and is_companion(study.user_attrs):
        raise UsageError(
            f"--n-trials: study {name!r} holds confirmation runs, whose budget is their number; "
            "run `sweep confirm` with a larger --top or --seeds instead"
        )
    if n_trials is not None:
        raised = config.replace(n_trials=n_trials)  # checks n_trials >= 1
        if n_trials < finished:
            raise UsageError(
                f"--n-trials {n_trials} is below the {finished} trials study {name!r} already "
                "finished"
            )
        if n_trials != config.n_trials:
            config = raised
            save_config(storage, name, config)
            _logger.info("budget of study %r set to %d trials", name, n_trials)
    if finished >= config.n_trials and not seeds_left:
        raise StudyComplete(
            f"study {name!r} is already complete ({finished}/{config.n_trials} trials); raise "
            f"the budget with `sweep resume {name} --n-trials N`"
        )
    return config


def run_workers(storage_url: str, name: str, options: RunOptions) -> int:
    """Run the study's workers on this machine until its budget is met. Returns an exit code."""
    if options.gpus:
        worker_environments(options.gpus, options.trials_per_gpu, options.gpu_memory_mb)
        check_gpus(options.gpus)
    if options.workers == 1 and not options.gpus:
        settings = WorkerSettings(
            study_name=name,
            storage_url=storage_url,
            data_path=options.data_path,
            timeout_s=options.timeout_s,
            spare=options.spare,
        )
        summary = run_worker(settings)
        _logger.info(
            "worker done (%s): %d trials run, %d complete, %d pruned, %d failed",
            summary.stopped_because or "stopped",
            summary.ran,
            summary.complete,
            summary.pruned,
            summary.failed,
        )
        return 0
    return _run_worker_processes(storage_url, name, options)


def check_gpus(gpus: Sequence[str]) -> None:
    """Refuse GPU ids this machine does not have (asks ``nvidia-smi``, not TensorFlow).

    Raises:
        UsageError: naming the missing ids and the ones that exist.
    """
    if shutil.which("nvidia-smi") is None:
        raise UsageError(
            f"--gpus {','.join(gpus)}: no NVIDIA GPU found on this machine (nvidia-smi is not "
            "available); leave out --gpus to run on the CPU"
        )
    listing = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    present = {line.strip() for line in listing.stdout.splitlines() if line.strip()}
    missing = sorted({g for g in gpus if g not in present}, key=int)
    if missing:
        raise UsageError(
            f"--gpus: GPU {', '.join(missing)} not found; this machine has "
            f"{', '.join(sorted(present)) or 'none'}"
        )


def worker_commands(
    name: str, options: RunOptions, base_env: Mapping[str, str]
) -> list[tuple[list[str], dict[str, str]]]:
    """The ``sweep worker`` command line and environment of each local worker process.

    With ``options.gpus``: each listed GPU ``trials_per_gpu`` times
    (:func:`sweep.run.gpus.worker_environments`); else ``options.workers`` CPU workers. The
    storage URL is not included (the caller puts it in the environment).
    """
    slots: list[dict[str, str]] = (
        worker_environments(options.gpus, options.trials_per_gpu, options.gpu_memory_mb)
        if options.gpus
        else [
            {"CUDA_VISIBLE_DEVICES": base_env.get("CUDA_VISIBLE_DEVICES", "")}
            for _ in range(options.workers)
        ]
    )
    commands = []
    for index, extra_env in enumerate(slots):
        env = {**base_env, **extra_env}
        if not extra_env["CUDA_VISIBLE_DEVICES"]:
            env.pop("CUDA_VISIBLE_DEVICES")
        command = [sys.executable, "-m", "sweep", "worker", name, "--worker-index", str(index)]
        if options.data_path:
            command += ["--data", options.data_path]
        if options.timeout_s:
            command += ["--timeout", str(options.timeout_s)]
        if not options.spare:
            command.append("--no-spare")
        commands.append((command, env))
    return commands


def _run_worker_processes(storage_url: str, name: str, options: RunOptions) -> int:
    processes: list[subprocess.Popen[bytes]] = []
    base_env = {**os.environ, STORAGE_ENV: storage_url}
    for index, (command, env) in enumerate(worker_commands(name, options, base_env)):
        processes.append(subprocess.Popen(command, env=env))
        _logger.info(
            "started worker %d (pid %d)%s",
            index,
            processes[-1].pid,
            f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if options.gpus else "",
        )
    try:
        with signals_as_interrupts():  # SIGTERM too, else it kills us and orphans the workers
            codes = [p.wait() for p in processes]
    except KeyboardInterrupt as e:
        # Ctrl-C reached the whole group already; a SIGTERM to this process alone did not.
        forward = signal.SIGTERM if getattr(e, "signal_name", "") == "SIGTERM" else signal.SIGINT
        for process in processes:
            if process.poll() is None:
                process.send_signal(forward)
        deadline = time.monotonic() + 60
        for process in processes:
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    failed = [c for c in codes if c not in (0,)]
    if failed:
        if any(c == 130 for c in failed):
            raise Interrupted("SIGINT")
        raise SweepStopped(
            f"{len(failed)} of {len(processes)} workers exited with an error (exit codes "
            f"{sorted(set(failed))}); see their messages above"
        )
    return 0
