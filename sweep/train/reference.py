"""The supervised reference: what a simple model reaches on the same rows as the sweep's trials.

An L2-regularised logistic regression (scikit-learn, ``C`` = :data:`sweep.config.REFERENCE_C`)
predicts the label from **binned mark densities**: for each mark section (every section but the
last, the label), the mean of each bin of ``bin_width`` columns (100 bp), so ``3 x 40 = 120``
features for the notes' layout (a last, narrower bin where a width is not a multiple). It is
fitted on the study's training split, as the file is split for every trial (not balanced: the
AUROC ranks rows and does not depend on the class ratio, and the F1 threshold is chosen on the
training rows, which corrects the calibration), scored on the validation split with the metrics
a trial reports for its label-hidden probe (``expression_hidden.*``: like the probe, the
reference predicts expression from the marks alone), and on the test split only when asked
(``score_test``: for ``confirm``, never at launch).

Deterministic: the same rows give the same model and the same numbers. This module imports
numpy and scikit-learn (never TensorFlow, Optuna or a database); ``sweep launch`` runs it in a
child process (:mod:`sweep.run.reference`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.config import REFERENCE_BIN_WIDTH
from sweep.config import REFERENCE_C
from sweep.config import REFERENCE_LABEL
from sweep.errors import DataError
from sweep.train.data import Dataset
from sweep.train.metrics import SectionLike
from sweep.train.metrics import choose_threshold
from sweep.train.metrics import label_metrics

#: The metric prefix of the reference's scores: expression predicted from the marks alone.
PREFIX = "expression_hidden"
_MAX_ITER = 5000


def bin_starts(width: int, bin_width: int = REFERENCE_BIN_WIDTH) -> np.ndarray:
    """First column of each bin of a section ``width`` columns wide (the last may be narrower).

    Raises:
        DataError: ``width`` or ``bin_width`` is below 1.
    """
    if width < 1 or bin_width < 1:
        raise DataError(f"bins: width and bin_width must be >= 1, got {width} and {bin_width}")
    return np.arange(0, width, bin_width, dtype=np.int64)


def binned_features(
    rows: np.ndarray, sections: Sequence[SectionLike], bin_width: int = REFERENCE_BIN_WIDTH
) -> np.ndarray:
    """Per mark section, the mean of each bin of ``bin_width`` columns.

    Args:
        rows: ``(n, d)`` 0/1 rows (``uint8``; not copied to float as a whole).
        sections: Column ranges in order; the last one is the label and is left out.
        bin_width: Columns per bin.

    Returns:
        ``(n, sum over mark sections of ceil(width / bin_width))`` float64, sections in order,
        bins in column order; each value is the share of ones in its bin.
    """
    x = np.asarray(rows)
    parts = []
    for section in sections[:-1]:
        width = section.stop - section.start
        starts = bin_starts(width, bin_width)
        sizes = np.diff(np.append(starts, width)).astype(np.float64)
        block = x[:, section.start : section.stop]
        sums = np.add.reduceat(block, starts, axis=1, dtype=np.float64)
        parts.append(sums / sizes)
    return np.concatenate(parts, axis=1) if parts else np.zeros((x.shape[0], 0))


def describe_features(
    sections: Sequence[SectionLike], bin_width: int = REFERENCE_BIN_WIDTH
) -> str:
    """``"per mark section, the mean of each 100-bp bin: H3K4me1 40, ... (200 features)"``."""
    counts = [(s.name, len(bin_starts(s.stop - s.start, bin_width))) for s in sections[:-1]]
    listed = ", ".join(f"{name} {n}" for name, n in counts)
    total = sum(n for _, n in counts)
    return f"per mark section, the mean of each {bin_width}-bp bin: {listed} ({total} features)"


@dataclass(frozen=True)
class Reference:
    """A fitted reference.

    Attributes:
        model: The fitted ``sklearn.linear_model.LogisticRegression``.
        sections: The data's sections (the last is the label).
        C: Inverse regularisation strength.
        bin_width: Columns per bin.
        threshold: The F1-maximising threshold on the training rows (None: one class there).
        train_rows: Rows it was fitted on.
        seconds: Time to build the features and fit.
    """

    model: Any
    sections: tuple[SectionLike, ...]
    C: float
    bin_width: int
    threshold: float | None
    train_rows: int
    seconds: float

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Probability that each row's label is 1, from its marks only: ``(n,)`` float64."""
        features = binned_features(rows, self.sections, self.bin_width)
        return np.asarray(self.model.predict_proba(features)[:, 1], dtype=np.float64)

    def score(self, rows: np.ndarray) -> dict[str, Any]:
        """``expression_hidden.*`` of ``rows`` (a whole split), keyed as a trial's metrics."""
        label = self.sections[-1].start
        values = label_metrics(
            np.asarray(rows)[:, label], self.predict(rows), chosen_threshold=self.threshold
        )
        return {f"{PREFIX}.{key}": value for key, value in values.items()}


def fit_reference(
    data: Dataset, *, C: float = REFERENCE_C, bin_width: int = REFERENCE_BIN_WIDTH
) -> Reference:
    """Fit the reference on ``data``'s training split (as the file is split, not balanced).

    Validation and test rows play no part: the threshold too is chosen on the training rows.

    Raises:
        DataError: ``C`` is not a positive number, or the training rows hold one class only.
    """
    from sklearn.linear_model import LogisticRegression

    if isinstance(C, bool) or not isinstance(C, (int, float)) or not C > 0 or C == float("inf"):
        raise DataError(f"reference: C must be a positive number, got {C!r}")
    started = time.perf_counter()
    y = np.asarray(data.train[:, data.label_column], dtype=np.int64)
    ones = int(y.sum())
    if ones in (0, y.size):
        raise DataError(
            f"reference: the training rows hold one class only ({ones} of {y.size} with "
            f"{data.sections[-1].name}=1); a classifier needs both"
        )
    features = binned_features(data.train, data.sections, bin_width)
    model = LogisticRegression(C=float(C), max_iter=_MAX_ITER)
    model.fit(features, y)
    train_scores = np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
    return Reference(
        model=model,
        sections=tuple(data.sections),
        C=float(C),
        bin_width=int(bin_width),
        threshold=choose_threshold(y, train_scores),
        train_rows=int(y.size),
        seconds=time.perf_counter() - started,
    )


def reference_result(
    data: Dataset,
    *,
    C: float = REFERENCE_C,
    bin_width: int = REFERENCE_BIN_WIDTH,
    score_test: bool = False,
) -> dict[str, Any]:
    """Fit the reference and score it: the JSON a study stores (user attribute ``reference``).

    Returns:
        ``model`` (``"logistic"``), ``label`` (how ``best`` names it), ``C``, ``penalty``,
        ``bin_width``, ``features`` (:func:`describe_features`), ``n_features``,
        ``class_weight`` (None: not balanced), ``train_rows``, ``val_rows``, ``split``,
        ``split_sha256``, ``threshold``, ``metrics`` (validation, ``expression_hidden.*``),
        ``seconds``, ``sklearn_version``; with ``score_test`` also ``test_rows`` and
        ``test_metrics`` (``test.expression_hidden.*``).

    Raises:
        DataError: as :func:`fit_reference`; ``score_test`` on data without a test split.
    """
    import sklearn

    if score_test and data.test is None:
        raise DataError(f"data file '{data.path}': no test split to score the reference on")
    reference = fit_reference(data, C=C, bin_width=bin_width)
    features = binned_features(data.val[:1], data.sections, bin_width).shape[1]
    out: dict[str, Any] = {
        "model": "logistic",
        "label": REFERENCE_LABEL if bin_width == 100 else f"logistic, {bin_width}-bp bins",
        "C": reference.C,
        "penalty": "l2",
        "bin_width": reference.bin_width,
        "features": describe_features(data.sections, bin_width),
        "n_features": int(features),
        "class_weight": None,
        "train_rows": reference.train_rows,
        "val_rows": int(data.val.shape[0]),
        "split": data.split,
        "split_sha256": data.split_sha256,
        "threshold": reference.threshold,
        "metrics": reference.score(data.val),
        "seconds": reference.seconds,
        "sklearn_version": sklearn.__version__,
    }
    if score_test and data.test is not None:
        out["test_rows"] = int(data.test.shape[0])
        out["test_metrics"] = {f"test.{k}": v for k, v in reference.score(data.test).items()}
    return out
