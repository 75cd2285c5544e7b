"""The study database: URLs, Optuna's RDB storage, the budget lock, what a study stores, reads.

Never imports TensorFlow, Keras or :mod:`sweep.train`. Only :mod:`sweep.store._optuna_schema`
names Optuna's tables or private storage methods.
"""
