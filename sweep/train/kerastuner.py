"""The notes' VAE as a KerasTuner ``HyperModel``: ``NotesVAE(space="notes", data=...)``.

Built from the same search-space file a sweep uses (:mod:`sweep.space`), so KerasTuner users
can tune it natively::

    import keras_tuner
    from sweep.train.kerastuner import NotesVAE

    hypermodel = NotesVAE(space="notes", data="my.npz")
    tuner = keras_tuner.Hyperband(
        hypermodel,
        objective=keras_tuner.Objective("expression_hidden.auroc", "max"),
        max_epochs=10,
        directory="kt",
        project_name="notes",
    )
    tuner.search()  # data and epochs come from NotesVAE and the space

``build(hp)`` declares each searched name as the matching ``hp`` call (``int`` -> ``hp.Int``,
``float`` -> ``hp.Float``, log and step kept, ``categorical`` -> ``hp.Choice``, ``when:`` ->
``parent_name``/``parent_values``), turns the values into :class:`sweep.params.TrialParams`
exactly as :meth:`sweep.space.SearchSpace.suggest` does and builds the model with
:func:`sweep.train.plan.build_vae`: the same model a sweep trial builds for those values.
``fit(hp, model, ...)`` trains it with the trial engine (:func:`sweep.train.engine.run_trial`:
same split, KL warm-up, callbacks and scoring) and returns the validation metrics, one of which
is KerasTuner's objective. The arguments KerasTuner passes are ignored except ``epochs`` (minus
``initial_epoch``, for Hyperband) and ``callbacks``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras_tuner

from sweep.dialects import declare
from sweep.params import PARAM_NAMES
from sweep.params import TrialParams
from sweep.space import SearchSpace
from sweep.space import load_space
from sweep.train.data import BUNDLED_DATA
from sweep.train.data import Dataset
from sweep.train.data import load_dataset


class NotesVAE(keras_tuner.HyperModel):  # type: ignore[misc]
    """The VAE of a sweep's search space, as a KerasTuner hypermodel.

    Args:
        space: A search-space file or a bundled space's name (``notes``...), or a parsed
            :class:`~sweep.space.SearchSpace`.
        data: A data file, a loaded :class:`~sweep.train.data.Dataset`, or ``None`` for the
            bundled K562 data.
        val_fraction, test_fraction, split_seed: The split, as ``sweep launch`` makes it.
        **kwargs: ``keras_tuner.HyperModel`` arguments (``name``, ``tunable``).
    """

    def __init__(
        self,
        space: str | Path | SearchSpace = "notes",
        data: str | Path | Dataset | None = None,
        *,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.space = space if isinstance(space, SearchSpace) else load_space(space)
        self.data = (
            data
            if isinstance(data, Dataset)
            else load_dataset(
                data or BUNDLED_DATA,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                split_seed=split_seed,
            )
        )

    @property
    def objective(self) -> keras_tuner.Objective:
        """The space's (first) objective as a ``keras_tuner.Objective``."""
        first = self.space.objectives[0]
        return keras_tuner.Objective(
            first.metric, "max" if first.direction == "maximize" else "min"
        )

    def declare(self, hp: Any) -> dict[str, Any]:
        """Declare every searched name on ``hp``; the active values (switches included)."""
        values: dict[str, Any] = {}
        for name, spec in sorted(self.space.search.items(), key=lambda item: "when" in item[1]):
            parent = dict(spec.get("when") or {})
            scope: dict[str, Any] = {}
            if parent:
                ((parent_name, parent_value),) = parent.items()
                scope = {"parent_name": parent_name, "parent_values": [parent_value]}
            value = declare(hp, name, spec, **scope)
            if value is not None:
                values[name] = value
        return values

    def params(self, hp: Any) -> TrialParams:
        """The :class:`TrialParams` of ``hp``'s values (fixed values from the space)."""
        values = {k: v for k, v in self.declare(hp).items() if k in PARAM_NAMES}
        return TrialParams.from_dict({**self.space.fixed, **values})

    def build(self, hp: Any) -> Any:
        """The compiled VAE for ``hp`` (:func:`sweep.train.plan.build_vae`)."""
        from sweep.train.plan import build_vae

        return build_vae(self.params(hp), self.data.n_features)

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Train ``model`` with the trial engine; the validation metrics (finite numbers)."""
        from sweep.train.engine import run_trial

        params = self.params(hp)
        if "epochs" in kwargs:
            epochs = int(kwargs["epochs"]) - int(kwargs.get("initial_epoch") or 0)
            params = TrialParams.from_dict({**params.to_dict(), "epochs": max(epochs, 1)})
        result = run_trial(
            params, self.data, model=model, callbacks=list(kwargs.get("callbacks") or [])
        )
        return {
            k: float(v)
            for k, v in result.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
