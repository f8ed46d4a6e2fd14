"""Per-model OpenAPI documents in fal's shape (OpenAPI 3.0.4, ``x-fal-metadata``, paths under the full id),
for the emulator's extra models (catalogue models use ``fal_notebook.catalog.openapi.openapi_from_spec``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["build_openapi", "schema_name", "QUEUE_STATUS", "IMAGE"]

QUEUE_STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
        "request_id": {"type": "string", "description": "The request id."},
        "response_url": {"type": "string", "description": "The response url."},
        "status_url": {"type": "string", "description": "The status url."},
        "cancel_url": {"type": "string", "description": "The cancel url."},
        "logs": {"type": "object", "description": "The logs.", "additionalProperties": True},
        "metrics": {"type": "object", "description": "The metrics.", "additionalProperties": True},
        "queue_position": {"type": "integer", "description": "The queue position."},
    },
    "required": ["status", "request_id"],
}
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
def schema_name(endpoint_id: str) -> str:
    """``fal-ai/fast-sdxl`` → ``FastSdxl``; ``fal-ai/flux/dev/image-to-image`` → ``FluxDevImageToImage``."""
    parts = endpoint_id.split("/")[1:] or endpoint_id.split("/")
    words = re.split(r"[^A-Za-z0-9]+", " ".join(parts))
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out.setdefault("x-fal-order-properties", list(schema.get("properties", {})))
    return out


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _request_paths(endpoint_id: str) -> dict[str, Any]:
    rid = [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    base = f"/{endpoint_id}/requests/{{request_id}}"
    logs = {"name": "logs", "in": "query", "required": False, "schema": {"type": "number"}}
    return {
        f"{base}/status": {
            "get": {
                "parameters": rid + [logs],
                "responses": {"200": {"description": "The request status.", "content": _json("QueueStatus")}},
            }
        },
        f"{base}/cancel": {
            "put": {
                "parameters": rid,
                "responses": {"200": {"description": "The request was cancelled.", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "success": {"type": "boolean"}}}}}}},
            }
        },
    }


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
    paths = _request_paths(endpoint_id)
    paths[f"/{endpoint_id}"] = {
        "post": {
            "requestBody": {"required": True, "content": _json(f"{name}Input")},
            "responses": {"200": {"description": "The request status.", "content": _json("QueueStatus")}},
        }
    }
    paths[f"/{endpoint_id}/requests/{{request_id}}"] = {
        "get": {
            "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Result of the request.", "content": _json(f"{name}Output")}},
        }
    }
    schemas = {"QueueStatus": QUEUE_STATUS, f"{name}Input": _ordered(input_schema),
               f"{name}Output": _ordered(output_schema), **(shared or {})}
    return {
        "openapi": "3.0.4",
        "info": _info(endpoint_id, category),
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                                               "description": 'Fal Key, as "Key <key_id>:<key_secret>"'}},
            "schemas": schemas,
        },
        "paths": paths,
        "servers": [{"url": "https://queue.fal.run"}],
        "security": [{"apiKeyAuth": []}],
    }
