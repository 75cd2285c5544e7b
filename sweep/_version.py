"""The package version, in a module of its own so that any module may import it without
going through ``sweep/__init__`` (and its lazy attributes)."""

__version__ = "0.1.0"
