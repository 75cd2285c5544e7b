"""Run a user's KerasTuner hypermodel: load it, build it with sweep's ``hp``, fit it, score it.

A hypermodel is found by a reference ``module:attr`` or ``path/to/file.py:attr``; ``attr`` is a
``build_model(hp)`` function, a ``keras_tuner.HyperModel`` subclass (made with no arguments) or
an instance. Runs in a trial's child process (it imports the user's code, so Keras): the
parent side, which turns each ``hp`` call into an Optuna suggestion, is
:mod:`sweep.run.hypermodel`.

Fitting follows KerasTuner: the hypermodel's own ``fit(hp, model, *args, **kwargs)`` when it
defines one, else ``model.fit(*args, **kwargs)``. The arguments are the study's data in the
autoencoder form of the built-in VAE, ``x = y =`` the training rows and ``validation_data =
(val, val)`` (as float32), with ``epochs``, ``batch_size`` and a callback that streams each
epoch's logs to the pruner. The result is scored as KerasTuner does: a ``History`` gives each
metric's value at the epoch where the objective was best, a dict its values, a number the
objective itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import sys
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweep.errors import TrialFailed
from sweep.train.hyperparams import Suggest
from sweep.train.hyperparams import SweepHyperParameters
from sweep.train.hyperparams import default_value

EpochCallback = Callable[[int, Mapping[str, Any]], None]


class HypermodelNotFound(LookupError):
    """The reference names no module, file or attribute; the message says which."""


def split_ref(ref: str) -> tuple[str, str]:
    """``"pkg.mod:attr"`` -> ``("pkg.mod", "attr")``; ``ValueError`` without exactly one ``:``."""
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr or not attr.replace(".", "_").isidentifier():
        raise ValueError(f"--hypermodel expects module:attr or path/to/file.py:attr, got {ref!r}")
    return module, attr


def load_hypermodel(ref: str) -> Any:
    """The object ``ref`` names (a function, a ``HyperModel`` subclass or an instance).

    Raises:
        HypermodelNotFound: the module, file or attribute does not exist.
    """
    module_name, attr = split_ref(ref)
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise HypermodelNotFound(f"hypermodel file '{module_name}' does not exist")
        spec = importlib.util.spec_from_file_location(f"sweep_hypermodel_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                raise HypermodelNotFound(f"no module named {module_name!r}") from None
            raise
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise HypermodelNotFound(f"{module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


class Hypermodel:
    """A loaded hypermodel, whichever form it came in: ``build(hp)`` and ``fit(hp, model...)``.

    Attributes:
        kind: ``"function"``, ``"class"`` or ``"instance"``.
        has_fit: Whether it defines its own ``fit`` (used instead of ``model.fit``).
    """

    def __init__(self, target: Any) -> None:
        if inspect.isclass(target):
            self.kind = "class"
            self._obj: Any = target()
        elif hasattr(target, "build") and callable(target.build):
            self.kind = "instance"
            self._obj = target
        elif callable(target):
            self.kind = "function"
            self._obj = None
            self._build_fn = target
        else:
            raise TypeError(
                f"the hypermodel must be a build_model(hp) function or a keras_tuner.HyperModel "
                f"subclass or instance, got {type(target).__name__}"
            )
        self.has_fit = self._obj is not None and _overrides_fit(self._obj)

    def build(self, hp: SweepHyperParameters) -> Any:
        return self._obj.build(hp) if self._obj is not None else self._build_fn(hp)

    def fit(self, hp: SweepHyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        if self.has_fit:
            return self._obj.fit(hp, model, *args, **kwargs)
        return model.fit(*args, **kwargs)


def _overrides_fit(obj: Any) -> bool:
    fit = getattr(type(obj), "fit", None)
    if fit is None:
        return False
    try:
        from keras_tuner import HyperModel
    except ImportError:  # pragma: no cover - keras_tuner is a dependency
        return True
    return fit is not HyperModel.fit


def preflight(
    ref: str, fixed: Mapping[str, Any], fit_settings: Mapping[str, Any], data: Any
) -> dict[str, Any]:
    """Build once with every hyperparameter at its default and fit one step on one batch.

    What a launch checks before it creates a study: that the hypermodel loads, builds, takes
    the study's rows, and which metrics it reports.

    Returns:
        ``{"kind", "has_fit", "hyperparameters", "reported"}``: the space ``build`` declares in
        ``get_config()`` form, and the metric names the fit reported.

    Raises:
        HypermodelNotFound, UnsupportedHpCall, and whatever the user's ``build`` or ``fit``
        raises (a shape that does not fit the data...).
        TypeError: without its own ``fit``, ``build`` did not return a compiled Keras model.
    """
    import keras
    import numpy as np

    keras.backend.clear_session()
    keras.utils.set_random_seed(int(fit_settings.get("seed", 0)))
    hypermodel = Hypermodel(load_hypermodel(ref))
    hp = SweepHyperParameters(default_value, fixed)
    model = hypermodel.build(hp)
    if not hypermodel.has_fit:
        _check_compiled(model)
    batch = max(1, min(int(fit_settings.get("batch_size", 32)), len(data.train), len(data.val)))
    x = np.asarray(data.train[:batch], dtype="float32")
    val = np.asarray(data.val[:batch], dtype="float32")
    result = hypermodel.fit(
        hp, model, x, x, validation_data=(val, val), epochs=1, batch_size=batch, verbose=0
    )
    metrics, history, _ = metrics_of(result, "", "minimize")
    return {
        "kind": hypermodel.kind,
        "has_fit": hypermodel.has_fit,
        "hyperparameters": hp.get_config(),
        "reported": sorted(set(metrics) | set(history)),
    }


def answer_from(values: Mapping[str, Any]) -> Suggest:
    """Answer each ``hp`` call from ``values`` (a confirmation run's), else its default."""

    def answer(question: Mapping[str, Any]) -> Any:
        name = question["config"]["name"]
        return values[name] if name in values else default_value(question)

    return answer


def _check_compiled(model: Any) -> None:
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"build(hp) must return a compiled keras.Model, got {type(model).__name__}"
        )
    if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
        raise TypeError("build(hp) returned a keras.Model that is not compiled")


def run_hypermodel_trial(
    ref: str,
    *,
    suggest: Suggest,
    fixed: Mapping[str, Any],
    fit_settings: Mapping[str, Any],
    objective: str,
    direction: str,
    data: Any,
    on_epoch: EpochCallback | None = None,
    score_test: bool = False,
) -> dict[str, Any]:
    """Build and fit one trial of the hypermodel ``ref``; its metrics and hyperparameters.

    Args:
        ref: ``module:attr`` or ``path/file.py:attr``.
        suggest: Called for each new active hyperparameter (its config form); its value.
        fixed: Values set with ``--set`` (returned without asking).
        fit_settings: ``epochs`` and ``batch_size``.
        objective: The metric to optimise (``val_loss``...).
        direction: ``minimize`` or ``maximize``.
        data: A :class:`sweep.train.data.Dataset` (training and validation rows).
        on_epoch: Called after each epoch with the Keras logs.
        score_test: Also evaluate the model on the test split (confirmation runs): each
            validation metric ``val_X`` is stored as ``test.val_X``, the same metric measured
            on the test rows (``model.evaluate``'s ``X``).

    Returns:
        ``metrics``, ``test_metrics``, ``history``, ``epochs_run``, ``seconds`` and
        ``hyperparameters``.

    Raises:
        TrialFailed: the objective is missing or not finite.
    """
    import keras
    import numpy as np

    started = time.perf_counter()
    keras.backend.clear_session()
    seed = int(fit_settings.get("seed", 0))
    keras.utils.set_random_seed(seed)
    hypermodel = Hypermodel(load_hypermodel(ref))
    hp = SweepHyperParameters(suggest, fixed)
    model = hypermodel.build(hp)
    callbacks = [] if on_epoch is None else [_EpochStream(on_epoch)]
    x = np.asarray(data.train, dtype="float32")
    val = np.asarray(data.val, dtype="float32")
    result = hypermodel.fit(
        hp,
        model,
        x,
        x,
        validation_data=(val, val),
        epochs=int(fit_settings["epochs"]),
        batch_size=int(fit_settings["batch_size"]),
        callbacks=callbacks,
        verbose=0,
    )
    metrics, history, epochs = metrics_of(result, objective, direction)
    value = metrics.get(objective)
    if value is None or not math.isfinite(float(value)):
        known = ", ".join(sorted(metrics)) or "none"
        raise TrialFailed(f"objective {objective} is {value} for this trial (metrics: {known})")
    test_metrics: dict[str, float] = {}
    if score_test and data.test is not None and len(data.test):
        test = np.asarray(data.test, dtype="float32")
        scores = model.evaluate(test, test, return_dict=True, verbose=0)
        test_metrics = {
            f"test.val_{k}": float(v) for k, v in scores.items() if math.isfinite(float(v))
        }
    return {
        "metrics": metrics,
        "test_metrics": test_metrics,
        "history": history,
        "epochs_run": epochs,
        "seconds": time.perf_counter() - started,
        "hyperparameters": hp.get_config(),
    }


def metrics_of(
    result: Any, objective: str, direction: str
) -> tuple[dict[str, float], dict[str, list[float]], int | None]:
    """What ``fit`` returned as ``(metrics, per-epoch history, epochs)``, as KerasTuner reads it.

    A ``History`` (or anything with a ``history`` dict of lists): every metric at the epoch
    where ``objective`` was best in ``direction``; a dict: its numbers; a number: the objective.
    """
    curves = getattr(result, "history", None)
    if isinstance(curves, Mapping):
        history = {str(k): [float(v) for v in values] for k, values in curves.items()}
        epochs = max((len(v) for v in history.values()), default=0)
        chosen = _best_epoch(history.get(objective, []), direction)
        if chosen is None:
            chosen = epochs - 1
        metrics = {k: v[chosen] for k, v in history.items() if 0 <= chosen < len(v)}
        return metrics, history, epochs
    if isinstance(result, Mapping):
        return {str(k): float(v) for k, v in result.items()}, {}, None
    if isinstance(result, (int, float)) or hasattr(result, "item"):
        return {objective: float(result)}, {}, None
    raise TrialFailed(
        f"fit returned {type(result).__name__}; expected a History, a dict of metrics or a number"
    )


def _best_epoch(values: list[float], direction: str) -> int | None:
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None
    return (min(finite) if direction == "minimize" else max(finite))[1]


class _EpochStream:
    """A Keras callback that hands each epoch's logs to ``on_epoch`` (made lazily: Keras)."""

    def __new__(cls, on_epoch: EpochCallback) -> Any:  # noqa: D102
        import keras

        class Stream(keras.callbacks.Callback):  # type: ignore[misc]
            def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
                on_epoch(epoch, {k: float(v) for k, v in (logs or {}).items()})

        return Stream()
