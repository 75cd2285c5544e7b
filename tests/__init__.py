"""The test suite; each folder mirrors a package of sweep/ (tiers: tests/conftest.py)."""
