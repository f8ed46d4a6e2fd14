"""Fields that hold other fields — objects, a preset-or-custom union, lists with add/remove rows — and
:func:`make_field`, which picks the field for a schema (the two recurse into each other, so they live here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ...parsers.model_call import schema_branches
from .field_media import MediaInput
from .fields import (
    LABEL_WIDTH,
    UNSET,
    BoolField,
    EnumField,
    Field,
    JsonField,
    MediaLookup,
    NumberField,
    TextField,
    first_with,
    label_widget,
)
from .form_prompt import PromptField

__all__ = ["ObjectField", "UnionField", "ArrayField", "make_field", "close_tree"]


class ObjectField(Field):
    """An object with known properties (Kling's ``elements`` items, a custom ``image_size``): sub-fields."""

    def __init__(self, name: str, schema: Mapping[str, Any], *, required: bool = False, path: str = "",
                 media: MediaLookup | None = None) -> None:
        self._media = media or (lambda _path: None)
        super().__init__(name, schema, required=required, path=path)

    def build(self) -> W.Widget:
        props = first_with(self.schema, "properties").get("properties", {})
        needed = set(first_with(self.schema, "properties").get("required", ()))
        self.fields = {key: make_field(key, sub, required=key in needed, path=f"{self.path}.{key}",
                                       media=self._media) for key, sub in props.items()}
        for sub in self.fields.values():
            sub.watch(self._edited)
        box = W.VBox([f.widget for f in self.fields.values()], layout=W.Layout(width="100%"))
        box.add_class("fal-form-object")
        return box

    def get(self) -> Any:
        out = {key: f.get() for key, f in self.fields.items()}
        out = {key: value for key, value in out.items() if value is not UNSET}
        return out or UNSET

    def reset(self) -> None:
        for sub in self.fields.values():
            sub.reset()
        super().reset()

    def put(self, value: Any) -> None:
        value = value if isinstance(value, Mapping) else {}
        for key, sub in self.fields.items():
            if key in value:
                sub.put(value[key])
                sub.touched = True


class UnionField(Field):
    """A preset or a custom object (``image_size``: ``landscape_4_3`` or ``{width, height}``)."""

    CUSTOM = "custom…"

    def build(self) -> W.Widget:
        branches = schema_branches(self.schema)
        enum = next(b for b in branches if "enum" in b)
        shape = next(b for b in branches if b.get("type") == "object")
        default = self.schema.get("default")
        options = [(str(m), m) for m in enum["enum"]] + [(self.CUSTOM, self.CUSTOM)]
        start = default if default in enum["enum"] else (self.CUSTOM if isinstance(default, Mapping) else
                                                          enum["enum"][0])
        self._pick = self._described(W.Dropdown(options=options, value=start))
        self._custom = ObjectField(self.name, shape, path=self.path)
        if isinstance(default, Mapping):
            self._custom.put(default)
        self._custom.widget.layout.display = "flex" if start == self.CUSTOM else "none"
        self._custom.watch(self._edited)
        self._pick.observe(self._switched, names="value")
        return W.VBox([self._pick, self._custom.widget], layout=W.Layout(width="100%"))

    def reset(self) -> None:
        self._custom.reset()
        super().reset()

    def _switched(self, change: Any) -> None:
        self._custom.widget.layout.display = "flex" if change["new"] == self.CUSTOM else "none"
        self._edited()

    def get(self) -> Any:
        if self._pick.value == self.CUSTOM:
            return self._custom.get()
        return self._pick.value

    def put(self, value: Any) -> None:
        if isinstance(value, Mapping):
            self._custom.put(value)
            self._pick.value = self.CUSTOM
        elif any(member == value for _label, member in self._pick.options):
            self._pick.value = value



class ArrayField(Field):
    """A list: one row per item with **Remove**, and **Add** (off at ``maxItems``)."""

    def __init__(self, name: str, schema: Mapping[str, Any], *, required: bool = False, path: str = "",
                 media: MediaLookup | None = None) -> None:
        self._media = media or (lambda _path: None)
        self.rows: list[Field] = []
        shape = first_with(schema, "items")
        self.items = shape.get("items", {})
        self.max_items = shape.get("maxItems", schema.get("maxItems"))
        own = self._media(path or name)
        self.kind = own.kind if own is not None and own.array else None
        super().__init__(name, schema, required=required, path=path)

    def build(self) -> W.Widget:
        self._rows = W.VBox([], layout=W.Layout(width="100%", margin=f"0 0 0 {LABEL_WIDTH}"))
        what = self.kind or "item"
        self._add = W.Button(description=f"Add {what}", tooltip=f"Add one {what} to {self.name}")
        self._add.on_click(lambda _b: self.add_row())
        head = W.HBox([label_widget(self.name, self.tooltip), self._add])
        self._sync_add()
        return W.VBox([head, self._rows], layout=W.Layout(width="100%"))

    def _item_field(self, index: int) -> Field:
        item_path = f"{self.path}[]"
        if self.kind is not None:
            return MediaInput(f"{index + 1}", self.items, path=item_path, kind=self.kind)
        return make_field(f"{index + 1}", self.items, path=item_path, media=self._media)

    def add_row(self, value: Any = UNSET) -> Field | None:
        if self.max_items is not None and len(self.rows) >= self.max_items:
            return None
        row = self._item_field(len(self.rows))
        if value is not UNSET:
            row.put(value)
        row.watch(self._edited)
        remove = W.Button(description="Remove", tooltip=f"Remove this item from {self.name}")
        remove.on_click(lambda _b, r=row: self.remove_row(r))
        row._line = W.HBox([row.widget, remove], layout=W.Layout(width="100%"))  # type: ignore[attr-defined]
        self.rows.append(row)
        self._relayout()
        self._edited()
        return row

    def remove_row(self, row: Field) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self._relayout()
            close_tree(row._line)  # type: ignore[attr-defined]
            self._edited()

    def _relayout(self) -> None:
        self._rows.children = [r._line for r in self.rows]  # type: ignore[attr-defined]
        self._sync_add()

    def _sync_add(self) -> None:
        full = self.max_items is not None and len(self.rows) >= self.max_items
        self._add.disabled = full
        self._add.tooltip = f"{self.name} takes at most {self.max_items}" if full else f"Add one to {self.name}"

    def own_problems(self) -> list[str]:
        return [p for r in self.rows for p in getattr(r, "own_problems", lambda: [])()]

    def get(self) -> Any:
        values = [r.get() for r in self.rows]
        values = [v for v in values if v is not UNSET]
        return values or UNSET

    def put(self, value: Any) -> None:
        for row in self.rows:
            close_tree(row._line)  # type: ignore[attr-defined]
        self.rows = []
        for item in value if isinstance(value, (list, tuple)) else ([] if value is None else [value]):
            self.add_row(item)
        self._relayout()

    def put_media(self, url: str) -> bool:
        """Use ``url`` in the first empty row, else a new row; False when the list is full."""
        for row in self.rows:
            if row.get() is UNSET:
                row.set(url)
                return True
        return self.add_row(url) is not None


def make_field(name: str, schema: Mapping[str, Any], *, required: bool = False, path: str = "",
               media: MediaLookup | None = None) -> Field:
    """The field for one property. ``media(path)`` says whether a path (``elements[].frontal_image_url``)
    takes a file."""
    path = path or name
    media = media or (lambda _path: None)
    found = media(path)
    branches = schema_branches(schema) or [{}]
    kinds = {b.get("type") for b in branches}
    if found is not None and not found.array:
        return MediaInput(name, schema, required=required, path=path, kind=found.kind)
    if "array" in kinds:
        return ArrayField(name, schema, required=required, path=path, media=media)
    if len(branches) > 1 and any("enum" in b for b in branches) and "object" in kinds:
        return UnionField(name, schema, required=required, path=path)
    head = branches[0]
    if "enum" in head:
        return EnumField(name, schema, required=required, path=path)
    if head.get("type") == "boolean":
        return BoolField(name, schema, required=required, path=path)
    if head.get("type") in ("integer", "number"):
        return NumberField(name, schema, required=required, path=path)
    if head.get("type") == "string" and path == "prompt":
        return PromptField(name, schema, required=required, path=path)
    if head.get("type") == "string":
        return TextField(name, schema, required=required, path=path)
    if head.get("type") == "object" and head.get("properties"):
        return ObjectField(name, schema, required=required, path=path, media=media)
    return JsonField(name, schema, required=required, path=path)


def close_tree(widget: W.Widget) -> None:
    """Close a widget and everything inside it, so removed rows and old forms do not leak comms."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()
