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
           "LABEL_WIDTH", "LABEL_STYLE", "MediaLookup", "first_with", "label_html", "label_widget"]

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__bool__": lambda self: False})()
LABEL_WIDTH = "150px"
LABEL_STYLE = {"description_width": LABEL_WIDTH}
_WIDE = W.Layout(width="100%")
SLIDER_MAX_STEPS = 200  # integer ranges wider than this get a bounded text box, not a slider
PROMPT_NAMES = ("prompt", "negative_prompt")

MediaLookup = Callable[[str], "MediaField | None"]


def tooltip_of(schema: Mapping[str, Any]) -> str:
    return str(schema.get("description") or schema.get("title") or "")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def label_html(name: str, tooltip: str) -> str:
    """A field's name with its description as the tooltip (both escaped)."""
    return f'<span title="{esc(tooltip)}">{esc(name)}</span>' if tooltip else esc(name)


def label_widget(name: str, tooltip: str) -> W.HTML:
    """A label of the form's label width, for controls that have no label of their own."""
    label = W.HTML(label_html(name, tooltip), layout=W.Layout(width=LABEL_WIDTH, min_width=LABEL_WIDTH))
    label.add_class("fal-form-label")
    return label


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
        self._initial = self._last = self.get()
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
        """Fill the field (Reuse settings, Use as input): it counts as given by the user, even when the value
        is the default."""
        self.put(value)
        self._edited(force=True)

    def reset(self) -> None:
        """Back to what the schema gives (its default, or nothing), as if never edited."""
        self.put(None if self._initial is UNSET else self._initial)
        self.touched = False
        self._last = self.get()

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def _edited(self, _change: Any = None, *, force: bool = False) -> None:
        """A control changed. Only a change of the value counts: the browser echoes values back (a slider
        snaps 3.5 to 3.4999999999999996), and an echo must neither mark the field as set nor re-check."""
        value = self.get()
        if not force and _same(value, getattr(self, "_last", UNSET)):
            return
        self._last = value
        self.touched = True
        for callback in list(self._watchers):
            callback()

    def _listen(self, widget: W.Widget, name: str = "value") -> None:
        widget.observe(self._edited, names=name)

    def show_problems(self, texts: list[str]) -> None:
        self.problem.value = "<br>".join(f'<span style="color:#b3261e">⚠ {esc(t)}</span>' for t in texts)
        self.problem.layout.display = "block" if texts else "none"

    def _described(self, widget: W.Widget) -> W.Widget:
        """Name the control and give it the field's description as a tooltip.

        ipywidgets 8 puts ``tooltip`` on a text box, dropdown or checkbox only when it has no ``description``,
        so the tooltip goes on the label: an HTML description (a ``<label for=…>`` that names the control) whose
        text carries the ``title``. A checkbox shows its description as its own title, so it gets none and a
        label beside it instead (:meth:`_beside_label`)."""
        widget.tooltip = self.tooltip
        if hasattr(widget, "description") and not isinstance(widget, W.Checkbox):
            widget.description = label_html(self.name, self.tooltip)
            widget.description_allow_html = True
            widget.style = LABEL_STYLE
        return widget

    def _beside_label(self, widget: W.Widget) -> W.Widget:
        return W.HBox([label_widget(self.name, self.tooltip), widget])


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
        self._box = self._described(W.Checkbox(value=bool(self.schema.get("default", False)), indent=False))
        self._listen(self._box)
        return self._beside_label(self._box)

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


def _decimals(step: float) -> int:
    """Digits after the point in a step (0.1 → 1, 0.25 → 2)."""
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".", 1)[1]) if "." in text else 0


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
        self._decimals: int | None = None
        if low is not None and high is not None:
            step = _step(low, high, kind, self.schema)
            value = default if default is not None else low
            if kind == "integer":
                cls = W.IntSlider if high - low <= SLIDER_MAX_STEPS else W.BoundedIntText
                widget = cls(value=int(value), min=int(low), max=int(high), step=int(step))
            else:
                self._decimals = _decimals(step)
                widget = W.FloatSlider(value=float(value), min=float(low), max=float(high), step=step,
                                       readout_format=f".{self._decimals}f")
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
            value = self._num.value
            # a float slider's value is a multiple of its step as the browser computes it (1 + 25 × 0.1 =
            # 3.4999999999999996); send it with the step's decimals
            return round(value, self._decimals) if self._decimals is not None else value
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
        self._raw.value = "" if value is None else value if isinstance(value, str) else self._json.dumps(value)


def first_with(schema: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The first alternative that has ``key`` (an optional field is ``anyOf: [X, null]``)."""
    for branch in schema_branches(schema):
        if key in branch:
            return branch
    return schema
