"""Hypermodels the KerasTuner tests sweep (tests/test_kerastuner.py)."""
