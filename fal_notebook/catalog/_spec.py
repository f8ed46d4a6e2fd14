"""The catalogue's record of one model: what it takes, what it returns, which fields are media."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelSpec", "MediaField", "CATEGORIES"]

CATEGORIES = ("text-to-image", "image-to-image", "image-to-video", "video-to-video", "text-to-video")


@dataclass(frozen=True)
class MediaField:
    """A field that takes a file: ``kind`` is ``image``, ``video``, ``audio`` or ``file``.

    The key in ``ModelSpec.media_fields`` is a field path; ``[]`` marks "every item of this list", e.g.
    ``elements[].reference_image_urls``. ``array`` says the field holds a list of files.
    """

    kind: str
    array: bool = False
    max_items: int | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "array": self.array, "max_items": self.max_items}


@dataclass(frozen=True)
class ModelSpec:
    """Everything fal_notebook knows about one endpoint.

    >>> spec = catalog.get("nano-banana-pro")
    >>> spec.required, spec.defaults["num_images"]
    (('prompt',), 1)

    ``input_schema`` is a JSON Schema object whose ``properties`` are in form order; ``limits`` holds what no
    schema says (``video``: formats, min/max duration in s, min/max side in px, max_mb; ``max_refs`` with
    ``ref_fields``; ``prompt_refs``: prompt tag such as ``Image`` → the field it counts).
    """

    id: str
    title: str
    category: str
    aliases: tuple[str, ...] = ()
    input_schema: dict = field(default_factory=dict, hash=False, repr=False)
    output: str = "images"
    media_fields: dict[str, MediaField] = field(default_factory=dict, hash=False, repr=False)
    limits: dict = field(default_factory=dict, hash=False, repr=False)
    source: str = "bundled"
    description: str = ""
    output_schema: dict = field(default_factory=dict, hash=False, repr=False)

    @property
    def properties(self) -> dict[str, dict]:
        return self.input_schema.get("properties", {})

    @property
    def fields(self) -> tuple[str, ...]:
        """Input field names in form order."""
        return tuple(self.properties)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("required", ()))

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: prop["default"] for name, prop in self.properties.items() if "default" in prop}

    def enum(self, name: str) -> list | None:
        """The allowed values of a field, looking inside ``anyOf`` unions too; None when it is free."""
        prop = self.properties.get(name)
        if prop is None:
            return None
        if "enum" in prop:
            return list(prop["enum"])
        for sub in [*prop.get("anyOf", ()), *prop.get("oneOf", ())]:
            if "enum" in sub:
                return list(sub["enum"])
        return None

    def describe(self) -> dict:
        """A JSON-ready summary for ``model-info``, the form panel and the CLI."""
        from ._schema import describe_schema, range_text

        fields = []
        for name, prop in self.properties.items():
            media = self.media_fields.get(name)
            fields.append({
                "name": name,
                "type": describe_schema({k: v for k, v in prop.items() if k not in ("minimum", "maximum")}),
                "required": name in self.required,
                "default": prop.get("default"),
                "enum": self.enum(name),
                "range": range_text(prop),
                "media": media.to_json() if media else None,
                "description": prop.get("description", ""),
            })
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "aliases": list(self.aliases),
            "description": self.description,
            "output": self.output,
            "fields": fields,
            "media_fields": {k: v.to_json() for k, v in self.media_fields.items()},
            "limits": self.limits,
            "source": self.source,
        }
