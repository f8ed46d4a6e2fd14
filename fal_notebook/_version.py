"""The version, in a module of its own so lower layers read it without importing the package face (httpx's
``__version__.py`` does the same)."""

__version__ = "0.1.0"
