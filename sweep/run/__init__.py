"""Orchestration: launch and resume, the worker's claim loop, the objective, the trial's child.

The parent processes here never import TensorFlow; :mod:`sweep.train`'s engine runs only in the
child process (:mod:`sweep.run._child`).
"""
