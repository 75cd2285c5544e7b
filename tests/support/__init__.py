"""What tests share, outside any test module: a test imports from here, never from another test.

* :mod:`tests.support.cli`: run the ``sweep`` CLI in-process or as a real process.
* :mod:`tests.support.postgres`: a fresh PostgreSQL database per test.
* :mod:`tests.support.study_writer`: cheap studies written through Optuna, no training.
* :mod:`tests.support.objective`: an :class:`~sweep.run.objective.Objective` for stand-in children.
* :mod:`tests.support.faults`: real `sweep` processes and their studies, for the fault suite.
* :mod:`tests.support.hypermodels`: the tiny KerasTuner hypermodels the CLI loads by path.
"""
