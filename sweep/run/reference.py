"""The supervised reference of a study, fitted in a child process (this process stays light).

``sweep launch`` calls :func:`fit_and_store_reference` once, when it creates a study: a logistic
regression on binned mark densities (:mod:`sweep.train.reference`) is fitted on the study's
training split and scored on its validation split, in a child process
(:mod:`sweep.run._reference_child`), so the launching process never imports scikit-learn. The
result is stored as the study user attribute :data:`sweep.config.REFERENCE_ATTR`. A reference
that fails (one class in the training rows, a crash, a timeout) is a warning: the failure is
stored (``error``) and the launch goes on. ``confirm`` scores it on the test split with
:func:`run_reference` (``score_test=True``); the launch never does.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import REFERENCE_BIN_WIDTH
from sweep.config import REFERENCE_C
from sweep.config import REFERENCE_LABEL
from sweep.config import REFERENCE_TIMEOUT_S
from sweep.config import StudyConfig
from sweep.errors import SweepError
from sweep.errors import TrialFailed
from sweep.store.study import save_reference
from sweep.store.urls import STORAGE_ENV

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)


def run_reference(
    config: StudyConfig,
    data_path: str,
    *,
    C: float = REFERENCE_C,
    bin_width: int = REFERENCE_BIN_WIDTH,
    score_test: bool = False,
    env: Mapping[str, str] | None = None,
    timeout_s: float = REFERENCE_TIMEOUT_S,
) -> dict[str, Any]:
    """Fit the reference on the study's split of ``data_path`` in a child process; its JSON.

    The child splits the file with the study's fractions and seed and refuses a split whose
    hash differs from ``config.split_sha256``. Test rows are scored only with ``score_test``.

    Returns:
        :func:`sweep.train.reference.reference_result`'s dict.

    Raises:
        TrialFailed: the child reported an error, died, or ran past ``timeout_s`` (one line).
    """
    request = {
        "data_path": data_path,
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
        "split_seed": config.split_seed,
        "split_sha256": config.split_sha256,
        "C": C,
        "bin_width": bin_width,
        "score_test": score_test,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sweep.run._reference_child"],
            input=json.dumps(request) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout_s,
            # The child never needs the database: its URL (and password) stays here.
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != STORAGE_ENV},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TrialFailed(f"the reference took longer than {timeout_s:g} s") from None
    answer = None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            answer = json.loads(line)
            break
    if isinstance(answer, dict) and answer.get("type") == "result":
        return dict(answer["result"])
    if isinstance(answer, dict) and answer.get("type") == "error":
        raise TrialFailed(str(answer.get("message")))
    last = next((ln for ln in reversed(done.stderr.splitlines()) if ln.strip()), "")
    raise TrialFailed(
        f"the reference's process exited with status {done.returncode}"
        + (f": {last.strip()[:300]}" if last else "")
    )


def fit_and_store_reference(
    storage: optuna.storages.BaseStorage,
    name: str,
    config: StudyConfig,
    *,
    C: float = REFERENCE_C,
    timeout_s: float = REFERENCE_TIMEOUT_S,
) -> dict[str, Any]:
    """Fit the reference for study ``name`` and store it; a failure is logged and stored.

    Returns:
        What was stored: the reference's JSON, or ``{"model", "label", "C", "error"}``.
    """
    try:
        result = run_reference(config, config.data_path, C=C, timeout_s=timeout_s)
    except SweepError as e:
        _logger.warning("the supervised reference failed (%s); the study goes on without it", e)
        result = {"model": "logistic", "label": REFERENCE_LABEL, "C": C, "error": str(e)}
    else:
        metrics = result.get("metrics") or {}
        _logger.info(
            "supervised reference (%s, C=%g; %s): validation AUROC %.4g, %d training rows, %.1f s",
            result.get("label"),
            C,
            result.get("features"),
            metrics.get("expression_hidden.auroc") or float("nan"),
            result.get("train_rows") or 0,
            result.get("seconds") or 0.0,
        )
    save_reference(storage, name, result)
    return result


def score_reference_on_test(
    storage_url: str,
    name: str,
    data_path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Score study ``name``'s reference on its test split (``confirm``) and store the result.

    The reference is fitted again on the training split (deterministic: the launch's numbers)
    with the stored C and bins, then scored on validation and test; the stored attribute gains
    ``test_rows`` and ``test_metrics`` (``test.expression_hidden.*``). A study without a
    reference, with a failed one, or already scored on test is left as it is; a failure is a
    warning.

    Returns:
        The stored reference afterwards, or ``None`` when the study has none.
    """
    from sweep.store.rdb import open_storage
    from sweep.store.study import load_config
    from sweep.store.study import load_reference

    storage = open_storage(storage_url)
    try:
        config = load_config(storage, name)
        stored = load_reference(storage, name)
        if stored is None or stored.get("error") or stored.get("test_metrics"):
            return stored
        try:
            result = run_reference(
                config,
                data_path or config.data_path,
                C=float(stored.get("C") or REFERENCE_C),
                bin_width=int(stored.get("bin_width") or REFERENCE_BIN_WIDTH),
                score_test=True,
                env=env,
            )
        except SweepError as e:
            _logger.warning("the supervised reference could not be scored on test (%s)", e)
            return stored
        save_reference(storage, name, result)
        return result
    finally:
        storage.engine.dispose()
