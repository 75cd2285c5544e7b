"""The trial engine: data, the Keras VAE, its losses and training plan, metrics.

A leaf over numpy, scikit-learn and Keras: never imports Optuna, SQLAlchemy or the other layers.
Importing this package is cheap; TensorFlow loads with :mod:`sweep.train.model`.
"""
