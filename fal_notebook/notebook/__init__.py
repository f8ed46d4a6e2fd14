"""Jupyter and IPython: the extension, the ``%fal`` magics, live cards (and, next, the panel).

Importing this folder imports nothing heavy; IPython is imported by the modules that need it.
"""

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython):  # noqa: ANN001, ANN201 - IPython's hook signature
    from .extension import load_ipython_extension as load

    return load(ipython)


def unload_ipython_extension(ipython):  # noqa: ANN001, ANN201
    from .extension import unload_ipython_extension as unload

    return unload(ipython)
