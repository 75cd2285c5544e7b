"""Tests of sweep.run: objective, trial processes, launch, export, reference, hypermodels."""
