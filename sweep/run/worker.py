"""A sweep worker: claim trials of a study until its budget is met, one child process each.

Workers are identical and share nothing but the study database (the Optuna study is the
oracle), so any number can join from any machine. The budget is global and exact: a worker
counts finished and running trials and creates its next trial under a storage-wide lock
(:func:`sweep.store.lock.budget_lock`), released as soon as the trial exists. The lock covers
only that short step (:class:`SlotClaim`: one ``GROUP BY`` count, the budget's one attribute,
the insert); Optuna's stale-trial check and its read of the queue run before it, the sampler
after it. A worker killed mid-trial leaves a RUNNING trial whose heartbeat stops; after the grace
period another worker (or ``resume``) marks it FAIL and Optuna's
``RetryHeartbeatStaleTrialCallback`` queues the same parameters again; a retry lost because
the process that failed the trial was killed before queueing it is queued at a later claim
(:func:`sweep.store.study.requeue_lost_retries`, under the lock, at most once per quarter grace
period per worker).
A RUNNING trial that no heartbeat watches (``study.ask()`` from a plain Optuna script, an
older `sweep`) is failed when a worker starts, once it is older than the grace period
(:func:`sweep.store.study.fail_unwatched_trials`), so it cannot hold a budget slot forever.

This module keeps the loop: the data-file check, claiming, the stale-trial watcher and the
progress log. What a trial does is :mod:`sweep.run.objective`; signals are
:mod:`sweep.run.signals`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import RECONNECT_TIMEOUT_S
from sweep.config import Heartbeat
from sweep.config import StudyConfig
from sweep.config import reconnect_timeout
from sweep.errors import DataError
from sweep.errors import StorageError
from sweep.errors import SweepStopped
from sweep.errors import TrialFailed
from sweep.log import quiet_optuna
from sweep.run.isolation import run_in_child
from sweep.run.objective import Objective
from sweep.run.objective import spare_pool
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialRequest
from sweep.run.racing import configuration_states
from sweep.run.racing import epochs_spent
from sweep.run.racing import incumbent
from sweep.run.racing import is_extra_seed
from sweep.run.racing import queue_seeds
from sweep.run.sampling import make_pruner
from sweep.run.sampling import make_sampler
from sweep.run.sampling import races
from sweep.run.signals import signals_as_interrupts
from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from sweep.store.lock import budget_lock
from sweep.store.rdb import claim_gate
from sweep.store.rdb import open_storage
from sweep.store.rdb import retrying_call
from sweep.store.rdb import storage_errors
from sweep.store.study import budget_counts
from sweep.store.study import fail_unwatched_trials
from sweep.store.study import finished_count
from sweep.store.study import load_config
from sweep.store.study import lost_retries
from sweep.store.study import requeue_lost_retries

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import Connection

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker process runs.

    Attributes:
        study_name: The study to work on.
        storage_url: Its storage (unmasked; never printed).
        data_path: A local copy of the study's data file; ``None`` uses the stored path. Either
            way its SHA-256 must match the study's.
        worker_index: Distinguishes sampler seeds of parallel workers.
        timeout_s: Claim no new trial after this many seconds.
        poll_s: How often to look again while other workers hold the remaining trials.
        env: Extra environment for the trial processes (``CUDA_VISIBLE_DEVICES``...).
        reconnect_timeout_s: How long to keep retrying a lost database before giving up (the
            worker then exits; its trial is failed and retried by the others). ``None``: the
            longest the study's grace period covers; a longer one is refused
            (:func:`sweep.config.reconnect_timeout`).
        spare: Keep the next trial's process warm while a trial trains
            (:class:`sweep.run.isolation.SparePool`); ``False``: ``--no-spare``.
    """

    study_name: str
    storage_url: str
    data_path: str | None = None
    worker_index: int = 0
    timeout_s: float | None = None
    poll_s: float = 2.0
    env: Mapping[str, str] = field(default_factory=dict)
    reconnect_timeout_s: float | None = None
    spare: bool = True


@dataclass
class WorkerSummary:
    """What one worker did."""

    ran: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    stopped_because: str = ""


def check_data_file(config: StudyConfig, data_path: str | None) -> str:
    """The local data file to use, after checking its SHA-256 against the study's.

    Raises:
        DataError: the file is missing or differs from the one the study was created with.
    """
    from sweep.train.data import file_sha256

    path = data_path or config.data_path
    if not Path(path).is_file():
        raise DataError(
            f"data file '{path}' not found; this study was created with '{config.data_path}' "
            f"(SHA-256 {config.data_sha256[:12]}...): pass --data with a copy of that file"
        )
    digest = file_sha256(path)
    if digest != config.data_sha256:
        raise DataError(
            f"data file '{path}' has SHA-256 {digest[:12]}... but the study was created with "
            f"{config.data_sha256[:12]}... ('{config.data_path}'): use the same file"
        )
    return str(path)


def check_split(config: StudyConfig, data_path: str, env: Mapping[str, str] | None = None) -> None:
    """Split ``data_path`` as the study does (in a child process) and compare the hashes.

    Studies made before splits were hashed (no ``split_sha256``) are not checked.

    Raises:
        DataError: the file cannot be split, or its split's hash differs from the study's.
    """
    if not config.split_sha256:
        return
    request = TrialRequest(
        kind=TrialKind(),
        split=DataSplit.of(config, data_path),
        purpose="split",
    )
    try:
        digest = run_in_child(request, env=env).split_sha256
    except TrialFailed as e:
        raise DataError(
            f"data file '{data_path}': cannot split it as the study does ({e})"
        ) from None
    if digest != config.split_sha256:
        raise DataError(
            f"data file '{data_path}' splits into rows with hash {digest[:16]} but the study's "
            f"split has hash {config.split_sha256[:16]} (val_fraction={config.val_fraction:g}, "
            f"test_fraction={config.test_fraction:g}, split_seed={config.split_seed}): same file, "
            "different split (another scikit-learn version?); refusing to run trials"
        )


def run_worker(settings: WorkerSettings) -> WorkerSummary:
    """Run trials of ``settings.study_name`` until the budget is met or the worker must stop.

    Raises:
        SweepStopped: too many consecutive failures.
        Interrupted: SIGINT/SIGTERM (after recording the trial in flight).
        StorageError, StudyNotFoundError, DataError: the study or its data cannot be used.
        OptionError: ``reconnect_timeout_s`` is longer than the study's grace period covers.
    """
    import optuna

    quiet_optuna(optuna.logging.ERROR)
    plain = open_storage(
        settings.storage_url,
        reconnect_timeout_s=settings.reconnect_timeout_s or RECONNECT_TIMEOUT_S,
    )
    config = load_config(plain, settings.study_name)
    plain.engine.dispose()  # its idle connection would stay open for the whole run
    reconnect_s = reconnect_timeout(
        settings.reconnect_timeout_s, config.heartbeat, settings.study_name
    )
    data_path = check_data_file(config, settings.data_path)
    check_split(config, data_path, settings.env)
    storage = open_storage(
        settings.storage_url, heartbeat=config.heartbeat, reconnect_timeout_s=reconnect_s
    )
    with storage_errors(settings.storage_url, action="load study from"):
        study = optuna.load_study(
            study_name=settings.study_name,
            storage=storage,
            sampler=make_sampler(config, settings.worker_index),
            pruner=make_pruner(config),
        )
    with storage_errors(settings.storage_url, action="check running trials in"):
        with BudgetClaim(storage, settings.study_name):
            fail_unwatched_trials(study, storage, config.heartbeat)
    with (
        signals_as_interrupts() as signals,
        _StaleTrialWatcher(study, storage, config.heartbeat),
        spare_pool(config, data_path, settings.env, spare=settings.spare) as spares,
    ):
        objective = Objective.for_study(
            config,
            study.user_attrs,
            data_path,
            env=settings.env,
            signals=signals,
            spares=spares,
            storage_url=settings.storage_url,
        )
        runner = _TrialRunner(study, storage, config, objective, settings, signals)
        return runner.loop()


class BudgetClaim:
    """The study's budget lock, held from entering until :meth:`release` or the block's end.

    For the claims that decide from every trial (racing, an epoch budget) and for repairs that
    must not run twice (lost retries, unwatched trials); plain claims use :class:`SlotClaim`.
    Enter it (the lock is taken), count the trials, then hand :meth:`release` to the objective
    as its trial-created hook: the lock is released as soon as Optuna has created the trial,
    before training starts. Leaving the ``with`` block releases it if nobody did (the budget was
    met, no slot was free, or creating the trial failed). :meth:`release` is idempotent.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, study_name: str) -> None:
        self._storage = storage
        self._study_name = study_name
        self._held = contextlib.ExitStack()

    def __enter__(self) -> BudgetClaim:
        self._held.enter_context(budget_lock(self._storage, self._study_name))
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Release the lock now (once; later calls do nothing)."""
        self._held.close()


class _NoSlot(Exception):
    """Raised through Optuna's ``ask`` when the budget leaves no slot for this worker's trial."""

    def __init__(self, budget_met: bool) -> None:
        super().__init__("budget met" if budget_met else "every free slot is running")
        self.budget_met = budget_met


class SlotClaim:
    """A budget claim whose lock covers only deciding the slot and inserting the trial.

    Used as a :class:`sweep.store.rdb.ClaimGate` around ``study.optimize(n_trials=1)``: the lock
    is taken when Optuna is about to create the trial (or to turn a queued WAITING one RUNNING),
    after its own stale-trial check and its read of the queue. Under the lock ``decide`` counts
    the trials (on PostgreSQL on the very connection holding the lock) and answers True (run),
    False (wait: every free slot is running) or None (the budget is met); the last two raise
    :class:`_NoSlot` out of ``optimize`` before any trial exists. With ``release_on_create`` the
    lock is released as soon as the trial exists; otherwise :meth:`release` is the objective's
    hook (a confirmation run takes its job under the lock). Leaving the ``with`` block releases
    it in every case; :meth:`release` is idempotent.
    """

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        study_name: str,
        decide: Callable[[Connection | None], bool | None],
        *,
        release_on_create: bool = True,
    ) -> None:
        self._storage = storage
        self._study_name = study_name
        self._decide = decide
        self._release_on_create = release_on_create
        self._entered = False
        self._held = contextlib.ExitStack()

    def __enter__(self) -> SlotClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def enter(self) -> None:
        """Take the lock and decide (once; later calls do nothing)."""
        if self._entered:
            return
        self._entered = True

        def attempt() -> tuple[contextlib.ExitStack, bool | None]:
            held = contextlib.ExitStack()
            try:
                conn = held.enter_context(budget_lock(self._storage, self._study_name))
                return held, self._decide(conn)
            except BaseException:
                held.close()  # a lost connection: lock and count again, or give up
                raise

        url = getattr(self._storage, "_sweep_masked_url", "the study database")
        with storage_errors(url, action="count the trials in"):
            held, slot = retrying_call(self._storage, attempt)
        self._held.enter_context(held)
        if not slot:
            raise _NoSlot(budget_met=slot is None)

    def created(self) -> None:
        if self._release_on_create:
            self.release()

    def release(self) -> None:
        """Release the lock now (once; later calls do nothing)."""
        self._held.close()


class _TrialRunner:
    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.RDBStorage,
        config: StudyConfig,
        objective: Objective,
        settings: WorkerSettings,
        signals: signals_as_interrupts,
    ) -> None:
        self.signals = signals
        self.study = study
        self.storage = storage
        self.config = config
        self.objective = objective
        self.metric_names = config.search_space.metric_names
        self.settings = settings
        self.summary = WorkerSummary()
        self.started = time.monotonic()
        self.n_trials = config.n_trials  # read again at each claim (resume may raise it)
        self._racing = races(config) and not objective.kind.confirm
        self._study_id = study._study_id
        self._requeue_every_s = max(1.0, config.heartbeat.grace_period_s / 4)
        self._next_requeue = 0.0  # the first claim checks

    def loop(self) -> WorkerSummary:
        import optuna

        consecutive_failures = 0
        last_reason = ""
        while True:
            if self._timed_out():
                self.summary.stopped_because = "timeout"
                return self.summary
            claimed = self._claim_and_run()
            if claimed is None:
                return self.summary
            if not isinstance(claimed, optuna.trial.FrozenTrial):
                time.sleep(self.settings.poll_s)
                continue
            trial = claimed
            self.summary.ran += 1
            state = trial.state.name
            if state == "FAIL":
                self.summary.failed += 1
                consecutive_failures += 1
                last_reason = str(trial.user_attrs.get("fail_reason", "unknown reason"))
                limit = min(self.config.max_consecutive_failures, self.n_trials)
                if consecutive_failures >= limit:
                    why = (
                        "as many as the budget"
                        if limit < self.config.max_consecutive_failures
                        else "--max-consecutive-failures"
                    )
                    raise SweepStopped(
                        f"stopped after {consecutive_failures} consecutive failed trials "
                        f"({why}); last reason (trial {trial.number}): {last_reason}"
                    )
            else:
                consecutive_failures = 0
                if state == "COMPLETE":
                    self.summary.complete += 1
                else:
                    self.summary.pruned += 1
            self._log_progress(trial)

    def _claim_and_run(self) -> optuna.trial.FrozenTrial | bool | None:
        """Run one trial if a slot is free: the trial, False (wait), None (budget met).

        The budget lock is held from counting the trials until Optuna has created the next
        one (:class:`SlotClaim`), so several workers never overshoot the budget, and for
        nothing else: Optuna's stale-trial check and its read of the queue run before the lock
        is taken, the sampler after it is released. The budget itself is read from the study
        at each claim: ``resume --n-trials`` raises it for workers already running. Racing and
        epoch budgets decide from every trial (:meth:`_claim_and_run_locked`).
        Signals are deferred meanwhile: the objective resumes them once the trial exists and
        defers them again until Optuna has recorded the outcome.
        """
        if self._racing or self.config.budget_epochs is not None:
            return self._claim_and_run_locked()
        self._requeue_when_due()
        finished_trials: list[optuna.trial.FrozenTrial] = []
        claim = SlotClaim(
            self.storage,
            self.study.study_name,
            self._slot_free,
            release_on_create=not self.objective.kind.confirm,
        )
        with claim:
            self.signals.defer()
            try:
                with claim_gate(self.storage, claim):
                    self._optimize_one(claim.release, finished_trials)
            except _NoSlot as e:
                if e.budget_met:
                    self.summary.stopped_because = "budget met"
                    return None
                return False
            finally:
                self.signals.resume()
        return finished_trials[-1] if finished_trials else False

    def _slot_free(self, conn: Connection | None) -> bool | None:
        """Under the budget lock: run (True), wait (False) or stop (None), from two counts."""
        counts, self.n_trials = budget_counts(self.storage, self._study_id, conn)
        finished = finished_count(counts)
        if finished >= self.n_trials:
            return None
        return finished + counts["RUNNING"] < self.n_trials

    def _requeue_when_due(self) -> None:
        """Queue lost retries (:func:`requeue_lost_retries`) under the lock, now and then.

        It reads every trial, so not on every claim: once per quarter grace period per worker
        (a retry counts as lost only a grace period after its trial failed anyway), and it
        looks first without the lock, which it takes only when there is a lost retry to queue.
        """
        now = time.monotonic()
        if now < self._next_requeue:
            return
        self._next_requeue = now + self._requeue_every_s
        if not lost_retries(self.study, self.config.heartbeat):
            return
        with BudgetClaim(self.storage, self.study.study_name):
            requeue_lost_retries(self.study, self.storage, self.config.heartbeat)

    def _claim_and_run_locked(self) -> optuna.trial.FrozenTrial | bool | None:
        """The claim of racing and epoch budgets: the lock held over the whole decision.

        Racing queues extra seeds and counts configurations, not trials, and an epoch budget sums
        every trial's epochs: both read every trial under the lock (:meth:`_budget_slot`).
        """
        import optuna

        finished_trials: list[optuna.trial.FrozenTrial] = []
        with BudgetClaim(self.storage, self.study.study_name) as claim:
            self.signals.defer()
            try:
                optuna.storages.fail_stale_trials(self.study)
                requeue_lost_retries(self.study, self.storage, self.config.heartbeat)
                self.n_trials = load_config(self.storage, self.study.study_name).n_trials
                slot = self._budget_slot()
                if slot is None:
                    self.summary.stopped_because = "budget met"
                    return None
                if not slot:
                    return False
                self._optimize_one(claim.release, finished_trials)
            finally:
                self.signals.resume()
        return finished_trials[-1] if finished_trials else False

    def _budget_slot(self) -> bool | None:
        """With racing or an epoch budget: run (True), wait (False) or stop (None).

        Racing first queues the extra seeds it asks for (:func:`sweep.run.racing.queue_seeds`);
        a queued seed always runs. ``--n-trials`` counts configurations, not seeds; once they
        (or ``--budget-epochs``) are spent, a worker waits while any trial still runs, since
        its result may ask for another seed.
        """
        if self._racing:
            queue_seeds(self.study, max_seeds=self.config.max_seeds)
        trials = self.study.get_trials(deepcopy=False)
        if any(is_extra_seed(t) and t.state.name == "WAITING" for t in trials):
            return True
        configs = configuration_states(trials)
        finished = finished_count(configs)
        budget = self.config.budget_epochs
        spent = budget is not None and epochs_spent(trials) >= budget
        if finished >= self.n_trials or spent:
            running = self._racing and any(t.state.name == "RUNNING" for t in trials)
            return False if running else None
        return finished + configs["RUNNING"] < self.n_trials

    def _optimize_one(
        self, release: Callable[[], None], finished_trials: list[optuna.trial.FrozenTrial]
    ) -> None:
        try:
            self.study.optimize(
                self.objective.with_hook(release),
                n_trials=1,
                catch=(TrialFailed,),
                callbacks=[lambda study, trial: finished_trials.append(trial)],
                gc_after_trial=False,
                show_progress_bar=False,
            )
        except Exception as e:
            # A lost database can surface through Optuna's own clean-up as another error
            # (an UnboundLocalError in its tell path): report the storage error itself.
            lost = _storage_error_in(e)
            if lost is not None and lost is not e:
                raise lost from None
            raise

    def _timed_out(self) -> bool:
        timeout = self.settings.timeout_s
        return timeout is not None and time.monotonic() - self.started >= timeout

    def _log_progress(self, trial: optuna.trial.FrozenTrial) -> None:
        if self._racing:
            done = finished_count(configuration_states(self.study.get_trials(deepcopy=False)))
        else:  # two counts, not every running trial read again
            done = finished_count(_read_budget(self.storage, self._study_id)[0])
        total = self.n_trials
        elapsed = time.monotonic() - self.started
        rate = self.summary.ran / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 and done < total else 0.0
        seconds = trial.user_attrs.get("seconds")
        took = f" in {seconds:.1f}s" if isinstance(seconds, (int, float)) else ""
        if trial.state.name == "COMPLETE":
            metrics = trial.user_attrs.get("metrics", {})
            shown = [f"{m}={_fmt(metrics.get(m))}" for m in self.metric_names]
            for extra in ("expression_hidden.f1_at_threshold", "latent.active_units"):
                if extra not in self.metric_names and extra in metrics:  # VAE trials only
                    shown.append(f"{extra.split('.')[-1]}={_fmt(metrics.get(extra))}")
            flags = trial.user_attrs.get("flags") or []
            what = " ".join(shown) + (f" [collapse: {len(flags)} flag(s)]" if flags else "")
        elif trial.state.name == "PRUNED":
            what = trial.user_attrs.get("prune_reason", "pruned")
        else:
            what = trial.user_attrs.get("fail_reason", "failed")
        best = _best_text(self.study, racing=self._racing)
        if is_extra_seed(trial):
            attrs = trial.user_attrs
            what += f" (seed {attrs.get(SEED_INDEX_ATTR)} of #{attrs[RACE_ATTR]})"
        _logger.info(
            "trial %d %s%s: %s | %d/%d done%s, elapsed %s, ETA %s",
            trial.number,
            trial.state.name,
            took,
            what,
            done,
            total,
            best,
            _duration(elapsed),
            _duration(eta) if done < total else "0s",
        )


def _read_budget(storage: optuna.storages.RDBStorage, study_id: int) -> tuple[Counter[str], int]:
    """:func:`budget_counts`, retried on a lost connection; errors as :class:`StorageError`."""
    url = getattr(storage, "_sweep_masked_url", "the study database")
    with storage_errors(url, action="count the trials in"):
        return retrying_call(storage, lambda: budget_counts(storage, study_id))


def _storage_error_in(error: BaseException) -> StorageError | None:
    """The first :class:`StorageError` in ``error``'s chain of causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, StorageError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _StaleTrialWatcher:
    """Fail other workers' stale trials while this worker trains (a side thread).

    Without it a killed worker's trial waits for the next claim of a free worker; with it, the
    trial becomes FAIL (and is re-queued) at most a quarter of a grace period after it went stale.
    It also fails RUNNING trials that no heartbeat watches once they are a grace period old.
    """

    def __init__(
        self, study: optuna.Study, storage: optuna.storages.RDBStorage, heartbeat: Heartbeat
    ) -> None:
        import threading

        self._study = study
        self._storage = storage
        self._heartbeat = heartbeat
        self._interval = max(1.0, heartbeat.grace_period_s / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep-stale-trials", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        import optuna

        while not self._stop.wait(self._interval):
            try:
                optuna.storages.fail_stale_trials(self._study)
                fail_unwatched_trials(self._study, self._storage, self._heartbeat)
            except Exception as e:  # the main loop reports storage trouble; keep watching
                _logger.debug("stale-trial check failed: %s", e)


def _best_text(study: optuna.Study, *, racing: bool = False) -> str:
    if len(study.directions) > 1:
        return ""
    if racing:
        config = incumbent(study)
        if config is None:
            return ""
        spread = f" ± {config.sd:.4f}" if config.sd is not None else ""
        seeds = f"{config.n} seed{'s' if config.n > 1 else ''}"
        return f", best {config.mean:.4f}{spread} ({seeds}, #{config.number})"
    try:
        best = study.best_trial
    except ValueError:
        return ""
    return f", best {_fmt(best.value)} (#{best.number})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
