"""One form control per JSON Schema property: what it shows, the value it gives, the problems next to it.

A field's value is JSON-ready or :data:`UNSET` (nothing to send). ``touched`` says the user (or ``set``) gave
it a value; the form sends untouched optional fields not at all, so fal's own defaults apply. Values are typed
by the schema as the ``%fal`` grammar types them (:func:`coerce_value`), and anything that does not parse is
passed on as typed so the catalogue's validation names the problem — one source of truth for what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W

from ...catalog import MediaField
from ...errors import UsageError
from ...parsers.model_call import coerce_value, schema_branches
from ...views.html import esc

__all__ = ["UNSET", "Field", "TextField", "EnumField", "BoolField", "NumberField", "JsonField", "tooltip_of",
           "LABEL_WIDTH", "LABEL_STYLE", "MediaLookup", "first_with"]

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__bool__": lambda self: False})()
LABEL_WIDTH = "150px"
LABEL_STYLE = {"description_width": LABEL_WIDTH}
_WIDE = W.Layout(width="100%")
SLIDER_MAX_STEPS = 200  # integer ranges wider than this get a bounded text box, not a slider
PROMPT_NAMES = ("prompt", "negative_prompt")

MediaLookup = Callable[[str], "MediaField | None"]


def tooltip_of(schema: Mapping[str, Any]) -> str:
    return str(schema.get("description") or schema.get("title") or "")


class Field:
    """Base: a labelled control plus a problem line. Subclasses build ``control`` and read/write values."""

    def __init__(self, name: str, schema: Mapping[str, Any], *, required: bool = False, path: str = "") -> None:
        self.name, self.schema, self.required = name, schema, required
        self.path = path or name
        self.touched = False
        self._watchers: list[Callable[[], None]] = []
        self.problem = W.HTML("", layout=W.Layout(display="none", margin=f"0 0 0 {LABEL_WIDTH}"))
        self.problem.add_class("fal-form-problem")
        self.control = self.build()
        self.widget = W.VBox([self.control, self.problem], layout=W.Layout(width="100%"))
        self.widget.add_class("fal-form-field")

    # -- for subclasses ---------------------------------------------------------------------------------
    def build(self) -> W.Widget:
        raise NotImplementedError

    def get(self) -> Any:
        """The JSON value to send, or UNSET."""
        raise NotImplementedError

    def put(self, value: Any) -> None:
        """Show ``value`` in the control (no notification bookkeeping)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------
    @property
    def tooltip(self) -> str:
        return tooltip_of(self.schema)

    def set(self, value: Any) -> None:
        """Fill the field (Reuse settings, Use as input): it counts as given by the user."""
        self.put(value)
        self._edited()

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def _edited(self, _change: Any = None) -> None:
        self.touched = True
        for callback in list(self._watchers):
            callback()

    def _listen(self, widget: W.Widget, name: str = "value") -> None:
        widget.observe(self._edited, names=name)

    def show_problems(self, texts: list[str]) -> None:
        self.problem.value = "<br>".join(f'<span style="color:#b3261e">⚠ {esc(t)}</span>' for t in texts)
        self.problem.layout.display = "block" if texts else "none"

    def _described(self, widget: W.Widget) -> W.Widget:
        widget.tooltip = self.tooltip
        if hasattr(widget, "description"):
            widget.description = self.name
            widget.style = LABEL_STYLE
        return widget


class TextField(Field):
    """A string: one line, or a text area for prompts and long texts."""

    def build(self) -> W.Widget:
        default = self.schema.get("default", "")
        multi = self.name in PROMPT_NAMES or (self.schema.get("maxLength") or 0) > 300
        cls = W.Textarea if multi else W.Text
        widget = cls(value=str(default) if default is not None else "", layout=_WIDE,
                     placeholder=str((self.schema.get("examples") or [""])[0]))
        if multi:
            widget.rows = 3
        self._text = self._described(widget)
        self._listen(widget)
        return widget

    def get(self) -> Any:
        return self._text.value if self._text.value != "" else UNSET

    def put(self, value: Any) -> None:
        self._text.value = "" if value is None else str(value)


class EnumField(Field):
    """A choice among the schema's values (any JSON scalar); optional ones without a default may be unset."""

    _NONE = "(not set)"

    def build(self) -> W.Widget:
        members = first_with(self.schema, "enum")["enum"]
        options: list[tuple[str, Any]] = [(str(m), m) for m in members]
        default = self.schema.get("default", UNSET)
        if default is UNSET or default not in members:
            options.insert(0, (self._NONE, None))
            default = None
        self._pick = self._described(W.Dropdown(options=options, value=default))
        self._listen(self._pick)
        return self._pick

    def get(self) -> Any:
        return UNSET if self._pick.value is None else self._pick.value

    def put(self, value: Any) -> None:
        for _label, member in self._pick.options:
            if member == value or (member is not None and str(member) == str(value)):
                self._pick.value = member
                return
        self._pick.value = None if any(m is None for _l, m in self._pick.options) else self._pick.value


class BoolField(Field):
    def build(self) -> W.Widget:
        self._box = self._described(W.Checkbox(value=bool(self.schema.get("default", False)), indent=True))
        self._listen(self._box)
        return self._box

    def get(self) -> Any:
        return bool(self._box.value)

    def put(self, value: Any) -> None:
        self._box.value = bool(value)


def _step(low: float, high: float, kind: str, schema: Mapping[str, Any]) -> float:
    if "multipleOf" in schema:
        return schema["multipleOf"]
    if kind == "integer":
        return 1
    span = high - low
    return 10 ** math.floor(math.log10(span / 100)) if span > 0 else 0.01


def _bounds(schema: Mapping[str, Any], kind: str) -> tuple[float | None, float | None]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and schema.get("exclusiveMinimum") is not None:
        low = schema["exclusiveMinimum"] + (1 if kind == "integer" else 0)
    if high is None and schema.get("exclusiveMaximum") is not None:
        high = schema["exclusiveMaximum"] - (1 if kind == "integer" else 0)
    return low, high


class NumberField(Field):
    """A slider when the schema bounds a small range, a bounded box for a wide one, else a free text box
    (empty = not set, e.g. ``seed``). Integers stay integers."""

    def build(self) -> W.Widget:
        kind = first_with(self.schema, "type").get("type", "number")
        self.kind = kind
        low, high = _bounds(self.schema, kind)
        default = self.schema.get("default")
        self._free = None
        if low is not None and high is not None:
            step = _step(low, high, kind, self.schema)
            value = default if default is not None else low
            if kind == "integer":
                cls = W.IntSlider if high - low <= SLIDER_MAX_STEPS else W.BoundedIntText
                widget = cls(value=int(value), min=int(low), max=int(high), step=int(step))
            else:
                widget = W.FloatSlider(value=float(value), min=float(low), max=float(high), step=step,
                                       readout_format=f".{max(0, -math.floor(math.log10(step)))}f")
        elif default is not None:
            widget = (W.IntText if kind == "integer" else W.FloatText)(value=default)
        else:
            placeholder = "random" if self.name == "seed" else "not set"
            widget = self._free = W.Text(value="", placeholder=placeholder)
        self._num = self._described(widget)
        self._listen(widget)
        return widget

    def get(self) -> Any:
        if self._free is None:
            return self._num.value
        text = self._free.value.strip()
        if not text:
            return UNSET
        try:
            return coerce_value(self.name, {"type": self.kind}, text)
        except UsageError:
            return text  # validation names it: "must be integer, got string '12a'"

    def put(self, value: Any) -> None:
        if self._free is not None:
            self._free.value = "" if value is None else str(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._num.value = int(value) if self.kind == "integer" else float(value)


class JsonField(Field):
    """Anything the other fields do not cover: its JSON text."""

    def build(self) -> W.Widget:
        import json

        default = self.schema.get("default")
        self._json = json
        self._raw = self._described(W.Text(value="" if default is None else json.dumps(default), layout=_WIDE,
                                           placeholder="JSON"))
        self._listen(self._raw)
        return self._raw

    def get(self) -> Any:
        text = self._raw.value.strip()
        if not text:
            return UNSET
        try:
            return self._json.loads(text)
        except ValueError:
            return text

    def put(self, value: Any) -> None:
        self._raw.value = value if isinstance(value, str) else self._json.dumps(value)


def first_with(schema: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The first alternative that has ``key`` (an optional field is ``anyOf: [X, null]``)."""
    for branch in schema_branches(schema):
        if key in branch:
            return branch
    return schema
