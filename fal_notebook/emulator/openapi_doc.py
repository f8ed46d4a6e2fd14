"""Per-model OpenAPI documents in fal's shape for the emulator's extra models, framed by
:func:`fal_notebook.catalog.openapi.queue_document` (catalogue models use ``openapi_from_spec``), with the
titles and descriptions fal's own documents carry.
"""

from __future__ import annotations

from typing import Any

from fal_notebook.catalog.openapi import queue_document, schema_name

__all__ = ["build_openapi", "schema_name", "IMAGE"]

IMAGE: dict[str, Any] = {
    "title": "Image",
    "type": "object",
    "description": "Represents an image file.",
    "x-fal-order-properties": ["url", "content_type", "file_name", "file_size", "width", "height"],
    "properties": {
        "url": {"type": "string", "title": "Url", "description": "The URL where the file can be downloaded from."},
        "content_type": {"type": "string", "title": "Content Type"},
        "file_name": {"type": "string", "title": "File Name"},
        "file_size": {"type": "integer", "title": "File Size"},
        "width": {"type": "integer", "title": "Width"},
        "height": {"type": "integer", "title": "Height"},
    },
    "required": ["url"],
}


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out.setdefault("x-fal-order-properties", list(schema.get("properties", {})))
    return out


def _info(endpoint_id: str, category: str) -> dict[str, Any]:
    return {
        "title": "Queue OpenAPI for " + endpoint_id,
        "version": "1.0.0",
        "description": "The OpenAPI schema for the " + endpoint_id + " queue.",
        "x-fal-metadata": {
            "endpointId": endpoint_id,
            "category": category,
            "thumbnailUrl": "https://fal.media/files/placeholder/thumbnail.jpg",
            "playgroundUrl": f"https://fal.ai/models/{endpoint_id}",
            "documentationUrl": f"https://fal.ai/models/{endpoint_id}/api",
        },
    }


def build_openapi(
    endpoint_id: str,
    *,
    category: str,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    shared: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A document shaped like ``GET fal.ai/api/openapi/queue/openapi.json?endpoint_id=…``."""
    name = schema_name(endpoint_id)
    schemas = {f"{name}Input": _ordered(input_schema), f"{name}Output": _ordered(output_schema), **(shared or {})}
    return queue_document(endpoint_id, _info(endpoint_id, category), schemas)
