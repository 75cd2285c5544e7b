"""The trial engine: data, the Keras VAE, its losses and training plan, metrics.

A leaf over numpy, scikit-learn and Keras: never imports Optuna, SQLAlchemy or the other layers.
Importing this package (or :mod:`~sweep.train.engine`) is cheap; TensorFlow loads with
:mod:`~sweep.train.model` and :mod:`~sweep.train.plan`, which :func:`~sweep.train.engine.run_trial`
imports when it runs. Metric names live in the stdlib-only :mod:`sweep.names`.
"""
