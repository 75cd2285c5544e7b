"""One trial outside a sweep (``sweep trial``): its parameters, its data and split, one run.

The parameters are the notes' defaults, then a params file's (``--params``) or a stored trial's
(``--from NAME:N``, which also brings the trial's data file and split), then ``--set``,
``--epochs`` and ``--seed`` on top. The trial runs in this process (the engine loads TensorFlow
when :func:`run_single_trial` is called, not when this module is imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import OPTIONS
from sweep.errors import UsageError

if TYPE_CHECKING:
    from sweep.params import TrialParams
    from sweep.train.engine import TrialResult


@dataclass(frozen=True, kw_only=True)
class SingleTrialRequest:
    """What ``sweep trial`` was asked to run.

    Attributes:
        assignments: ``NAME=VALUE`` strings (``--set``), applied last.
        data: The data file (``None``: the stored trial's with ``from_trial``, else the bundled).
        epochs: Training epochs, over any other source (``None``: keep).
        seed: Seed for weights, noise and batches, over any other source (``None``: keep).
        val_fraction, test_fraction, split_seed: The split of a file that has none (a stored
            trial's own split wins).
        score_test: Also score the test split.
        params_file: A YAML/JSON file of :class:`sweep.params.TrialParams` fields.
        from_trial: ``NAME:N``, a stored trial to start from (its parameters, data and split).
        storage: The storage of ``from_trial`` (``None``: ``$SWEEP_STORAGE`` or the default).
    """

    assignments: Sequence[str] = ()
    data: str | None = None
    epochs: int | None = None
    seed: int | None = None
    val_fraction: float = OPTIONS["val_fraction"].default
    test_fraction: float = OPTIONS["test_fraction"].default
    split_seed: int = OPTIONS["split_seed"].default
    score_test: bool = False
    params_file: str | None = None
    from_trial: str | None = None
    storage: str | None = None


@dataclass(frozen=True)
class SingleTrial:
    """A trial run by :func:`run_single_trial`.

    Attributes:
        values: The values given (file, stored trial, ``--set``, ``--epochs``, ``--seed``).
        params: Every parameter the trial ran with.
        result: The engine's result (validation metrics, and ``test.*`` with ``score_test``).
        data_name: The data file's name.
        rows: Rows per split: ``train``, ``val`` and ``test`` (``None``: no test split).
    """

    values: dict[str, Any]
    params: TrialParams
    result: TrialResult
    data_name: str
    rows: dict[str, int | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Every metric, the exact parameters and the run's facts (``sweep trial --json``)."""
        return self.result.to_json()


def run_single_trial(request: SingleTrialRequest) -> SingleTrial:
    """Resolve the request's parameters, data and split, and run the trial.

    Raises:
        UsageError: both ``params_file`` and ``from_trial``; ``score_test`` without a test split.
        ParamError: an unknown parameter or a bad value.
        DataError: a bad data file, or not the stored trial's (SHA-256 or split differ).
        StudyNotFoundError, TrialNotFoundError, StorageError: ``from_trial`` cannot be read.
    """
    from sweep.params import TrialParams
    from sweep.params import parse_assignments
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset

    if request.params_file and request.from_trial:
        raise UsageError("--params and --from both give the parameters; pass one of them")
    values: dict[str, Any] = {}
    data = request.data
    split: dict[str, Any] = {
        "val_fraction": request.val_fraction,
        "test_fraction": request.test_fraction,
        "split_seed": request.split_seed,
    }
    split_sha256 = ""
    if request.params_file:
        from sweep.run.export import load_params_file

        values = load_params_file(request.params_file)
    if request.from_trial:
        from sweep.run.export import check_data
        from sweep.run.export import stored_trial
        from sweep.store.urls import resolve_url

        stored = stored_trial(resolve_url(request.storage), request.from_trial)
        values = dict(stored.params)
        data = data if data is not None else stored.data_path
        check_data(data, stored.data_sha256)
        split = {
            "val_fraction": stored.val_fraction,
            "test_fraction": stored.test_fraction,
            "split_seed": stored.split_seed,
        }
        split_sha256 = stored.split_sha256
    values.update(parse_assignments(request.assignments))
    if request.epochs is not None:
        values["epochs"] = request.epochs
    if request.seed is not None:
        values["seed"] = request.seed
    params = TrialParams.from_dict(values)
    dataset = load_dataset(data or BUNDLED_DATA, **split)
    if split_sha256:
        from sweep.train.data import check_split_sha256

        check_split_sha256(dataset, split_sha256)
    if request.score_test and dataset.test is None:
        raise UsageError(
            f"--score-test: data file '{dataset.path}' has no test split (it brings its own "
            "split without X_test, or --test-fraction is 0)"
        )
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import run_trial

    result = run_trial(params, dataset, options=EngineOptions(score_test=request.score_test))
    rows = {
        "train": len(dataset.train),
        "val": len(dataset.val),
        "test": len(dataset.test) if dataset.test is not None else None,
    }
    return SingleTrial(values, params, result, dataset.path.name, rows)
