"""fal.ai's image and video models, native in Jupyter.

``%load_ext fal_notebook`` gives ``%fal`` / ``%%fal``; ``fal_notebook.submit(...)`` returns a ``Job`` at once.
Importing this package is cheap: the names below load their modules (and httpx, Pillow, ipywidgets) on first
use, through the module ``__getattr__``. ``QueueClient`` is fal's queue API alone, without the job store.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name → module that defines it
_EXPORTS: dict[str, str] = {
    # the Job API
    "submit": "jobs", "run": "jobs", "run_async": "jobs", "get": "jobs", "jobs": "jobs", "wait": "jobs",
    "as_completed": "jobs", "resume": "jobs", "manager": "jobs", "Job": "jobs", "JobGroup": "jobs",
    "JobState": "jobs", "JobManager": "jobs", "UNFINISHED": "jobs",
    # iterating: groups, comparison, export
    "sweep": "jobs", "compare": "views.compare", "export": "views.export", "read_settings": "views.export",
    # the queue client, for scripts that want fal's calls without the job store
    "QueueClient": "client", "AsyncQueueClient": "client", "RetryPolicy": "client",
    # the extension
    "load_ipython_extension": "notebook", "unload_ipython_extension": "notebook",
    # the form panel (ipywidgets and anywidget load when it is made)
    "panel": "notebook.panel.panel",
    # settings and errors
    "load_settings": "config", "Settings": "config",
    "FalError": "errors", "ConfigError": "errors", "UsageError": "errors", "ValidationError": "errors",
    "UnknownModelError": "errors", "UploadError": "errors", "TransportError": "errors",
    "FalTimeoutError": "errors",
    "RequestError": "errors", "AuthError": "errors", "NotFoundError": "errors", "JobFailedError": "errors",
    "ResultExpiredError": "errors", "JobCancelledError": "errors",
    # fal's platform: prices, spend, history, the whole catalogue
    "estimate": "jobs", "submit_many": "jobs", "spend": "jobs", "import_history": "jobs", "adopt": "jobs",
    "search_models": "jobs", "PlatformClient": "client", "AsyncPlatformClient": "client",
    "CostLimitError": "errors",
}

__all__ = [
    "__version__",
    "submit", "run", "run_async", "get", "jobs", "wait", "as_completed", "resume", "manager",
    "Job", "JobGroup", "JobState", "JobManager", "UNFINISHED",
    "sweep", "compare", "export", "read_settings",
    "QueueClient", "AsyncQueueClient", "RetryPolicy",
    "load_ipython_extension", "unload_ipython_extension",
    "panel",
    "load_settings", "Settings",
    "FalError", "ConfigError", "UsageError", "ValidationError", "UnknownModelError", "UploadError",
    "TransportError", "FalTimeoutError", "RequestError", "AuthError", "NotFoundError", "JobFailedError",
    "ResultExpiredError", "JobCancelledError",
    "estimate", "submit_many", "spend", "import_history", "adopt", "search_models", "PlatformClient",
    "AsyncPlatformClient", "CostLimitError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fal_notebook' has no attribute {name!r}")
    imported = importlib.import_module(f".{module}", __name__)
    # `jobs` is both the submodule and its listing function: the module is callable (see jobs.py)
    value = imported if name == "jobs" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
