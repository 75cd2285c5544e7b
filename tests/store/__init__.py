"""Tests of sweep.store: storages, the budget lock, the read path, confirmation studies."""
