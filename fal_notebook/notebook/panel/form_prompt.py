"""The prompt box: a multi-line text area that submits the form on Ctrl+Enter (Cmd+Enter on a Mac).

ipywidgets' ``Textarea`` sends no key events to Python, so this one control is a tiny anywidget: the browser
keeps ``value`` in sync as the user types and sends one ``{"event": "submit"}`` message on Ctrl/Cmd+Enter
(anywidget's ``model.send`` → the widget's ``on_msg``). JupyterLab binds Ctrl+Enter to "run cell"; the text
area carries Lumino's ``data-lm-suppress-shortcuts`` attribute and stops the event, so inside the prompt the
keys submit the form instead of re-running the cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as W
import traitlets

from .fields import UNSET, Field, label_widget

__all__ = ["PromptArea", "PromptField", "SUBMIT_EVENT"]

SUBMIT_EVENT = "submit"

_ESM = r"""
function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "fal-prompt widget-textarea";
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  area.style.width = "100%";
  area.style.boxSizing = "border-box";
  area.style.resize = "vertical";
  const sync = () => {
    area.rows = model.get("rows");
    area.placeholder = model.get("placeholder");
    area.title = model.get("hint") || "";
    area.setAttribute("aria-label", model.get("label") || "prompt");
    area.disabled = model.get("disabled");
    if (area.value !== model.get("value")) area.value = model.get("value");
  };
  sync();
  area.addEventListener("input", () => {
    model.set("value", area.value);
    model.save_changes();
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.stopPropagation();
      model.set("value", area.value);
      model.save_changes();
      model.send({ event: "submit" });
    }
  });
  for (const name of ["value", "rows", "placeholder", "hint", "label", "disabled"]) {
    model.on(`change:${name}`, sync);
  }
  el.appendChild(area);
  return () => {
    for (const name of ["value", "rows", "placeholder", "hint", "label", "disabled"]) {
      model.off(`change:${name}`, sync);
    }
  };
}
export default { render };
"""


class PromptArea(anywidget.AnyWidget):
    """``value`` is the prompt text; ``on_submit(callback)`` runs ``callback()`` on Ctrl/Cmd+Enter."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("prompt").tag(sync=True)
    # the text area's tooltip. Not DOMWidget's ``tooltip``: ipywidgets' view code reads a ``description``
    # next to it, which this widget does not have (the view fails to render).
    hint = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.Int(4).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_callbacks: list[Callable[[], Any]] = []
        self.on_msg(self._message)

    def on_submit(self, callback: Callable[[], Any]) -> None:
        self._submit_callbacks.append(callback)

    def _message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == SUBMIT_EVENT:
            for callback in list(self._submit_callbacks):
                callback()


class PromptField(Field):
    """The ``prompt`` property, shown as a :class:`PromptArea` with its name beside it."""

    def build(self) -> W.Widget:
        default = self.schema.get("default")
        self.area = PromptArea(value="" if default is None else str(default), hint=self.tooltip,
                               placeholder="Describe what you want — Ctrl+Enter submits",
                               layout=W.Layout(flex="1 1 auto", width="auto"))
        self.area.observe(self._edited, names="value")
        return W.HBox([label_widget(self.name, self.tooltip), self.area], layout=W.Layout(width="100%"))

    def get(self) -> Any:
        return self.area.value if self.area.value != "" else UNSET

    def put(self, value: Any) -> None:
        self.area.value = "" if value is None else str(value)
