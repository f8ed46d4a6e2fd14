"""The panel: a form from the model's schema, this notebook's live job list and a gallery, in one widget.

Importing this folder is cheap; ``panel.py`` (ipywidgets, anywidget) loads on first use:
``fal_notebook.panel(model)`` and ``%fal panel MODEL`` call :func:`.panel.panel`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Panel"]


def __getattr__(name: str) -> Any:
    if name == "Panel":
        from .panel import Panel

        return Panel
    raise AttributeError(name)
