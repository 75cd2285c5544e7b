"""Hypermodels the KerasTuner tests sweep (tests/run/test_kerastuner.py)."""
