"""Tests of sweep.train: data, model, losses, plan, engine, metrics (Keras, no database)."""
