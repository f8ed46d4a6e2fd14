"""fal's per-model OpenAPI documents ⇄ :class:`ModelSpec`, and their disk cache.

fal publishes one OpenAPI 3.0.4 document per endpoint (``/api/openapi/queue/openapi.json?endpoint_id=``):
``<Model>Input`` / ``<Model>Output`` schemas with ``x-fal-order-properties``, ``$ref``s to shared schemas
(``Image``, ``ImageSize``, ``File``) and paths under the full endpoint id. The emulator serves
:func:`openapi_from_spec` for its models, so reading and writing must round-trip.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from ..errors import UnknownModelError
from ._detect import detect_limits, detect_media, guess_category, output_kind
from ._files import write_json_atomic
from ._schema import inline_refs
from ._spec import ModelSpec

__all__ = ["spec_from_openapi", "openapi_from_spec", "queue_document", "schema_name", "load_cached", "save_cached",
           "cache_path"]

_ORDER = "x-fal-order-properties"
_JSON = "application/json"


def spec_from_openapi(doc: dict, endpoint_id: str) -> ModelSpec:
    """Build a spec from fal's document: the input is the POST submit body, the output the result GET."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise UnknownModelError(f"the OpenAPI document for {endpoint_id} has no paths; it cannot describe the model")
    input_schema = _normalize(inline_refs(_submit_schema(doc, endpoint_id), doc))
    output_schema = _normalize(inline_refs(_result_schema(doc, endpoint_id), doc))
    input_schema.pop("title", None)
    output_schema.pop("title", None)
    media = detect_media(input_schema)
    output = output_kind(output_schema)
    info = doc.get("info") or {}
    meta = info.get("x-fal-metadata") or {}
    title = str(info.get("title") or endpoint_id)
    description = str(info.get("description") or "")
    return ModelSpec(
        id=endpoint_id,
        title=endpoint_id if title.startswith("Queue OpenAPI for") else title,
        category=str(meta.get("category") or guess_category(media, output)),
        input_schema=input_schema,
        output=output,
        media_fields=media,
        limits=detect_limits(input_schema, media),
        source="openapi",
        description="" if description.startswith("The OpenAPI schema for") else description,
        output_schema=output_schema,
    )


def _json_schema(operation: dict, *, body: bool) -> dict | None:
    holder = operation.get("requestBody", {}) if body else operation.get("responses", {}).get("200", {})
    schema = (holder.get("content") or {}).get(_JSON, {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _submit_schema(doc: dict, endpoint_id: str) -> dict:
    paths = doc["paths"]
    posts = [(path, item["post"]) for path, item in paths.items() if isinstance(item, dict) and "post" in item]
    posts.sort(key=lambda pair: pair[0].strip("/") != endpoint_id)  # the exact submit path first
    for _, operation in posts:
        schema = _json_schema(operation, body=True)
        if schema is not None:
            return schema
    raise UnknownModelError(f"the OpenAPI document for {endpoint_id} has no submit (POST) request body")


def _result_schema(doc: dict, endpoint_id: str) -> dict:
    for path, item in doc["paths"].items():
        if re.search(r"/requests/\{[^}]+\}/?$", path) and isinstance(item, dict) and "get" in item:
            schema = _json_schema(item["get"], body=False)
            if schema is not None:
                return schema
    schemas = (doc.get("components") or {}).get("schemas") or {}
    outputs = [name for name in schemas if name.endswith("Output")]
    return {"$ref": f"#/components/schemas/{outputs[0]}"} if outputs else {}


def _normalize(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema 2020-12: apply ``x-fal-order-properties``, ``nullable``, boolean
    ``exclusiveMinimum``, and fold one-item ``allOf`` wrappers (pydantic's way of adding a description)."""
    if isinstance(node, list):
        return [_normalize(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _normalize(value) for key, value in node.items()}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        node = {**all_of[0], **{k: v for k, v in node.items() if k != "allOf"}}
    order = node.pop(_ORDER, None)
    if isinstance(order, list) and isinstance(node.get("properties"), dict):
        props = node["properties"]
        node["properties"] = {**{k: props[k] for k in order if k in props}, **props}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), bool):
            flag = node.pop(bound)
            if flag and limit in node:
                node[bound] = node.pop(limit)
    if node.pop("nullable", False) is True:
        node = _nullable(node)
    return node


def _nullable(node: dict) -> dict:
    kind = node.get("type")
    if isinstance(kind, str):
        return {**node, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**node, "type": [*kind, "null"]} if "null" not in kind else node
    return {"anyOf": [node, {"type": "null"}]}


# ---------------------------------------------------------------------------------------------- writing


def schema_name(endpoint_id: str) -> str:
    """``fal-ai/flux/dev/image-to-image`` → ``FluxDevImageToImage`` (fal drops the owner)."""
    parts = endpoint_id.split("/")[1:] or endpoint_id.split("/")
    words = re.split(r"[^A-Za-z0-9]+", " ".join(parts))
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"


def _hoist(node: Any, shared: dict[str, dict], *, top: bool = False) -> Any:
    """Move titled object schemas (``Image``, ``ImageSize``…) into ``components.schemas``, as fal does."""
    if isinstance(node, list):
        return [_hoist(item, shared) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _hoist(value, shared) for key, value in node.items()}
    if isinstance(out.get("properties"), dict):
        out[_ORDER] = list(out["properties"])
    title = out.get("title")
    if top or out.get("type") != "object" or not isinstance(title, str) or not re.fullmatch(r"\w+", title):
        return out
    if shared.setdefault(title, out) != out:
        return out  # a different schema already has this name: keep this one inline
    return {"$ref": f"#/components/schemas/{title}"}


def openapi_from_spec(spec: ModelSpec) -> dict:
    """A document in fal's per-model shape; :func:`spec_from_openapi` reads it back to an equal spec
    (``aliases`` and ``source`` aside)."""
    name = schema_name(spec.id)
    shared: dict[str, dict] = {}
    schemas = {
        f"{name}Input": _hoist(copy.deepcopy(spec.input_schema), shared, top=True),
        f"{name}Output": _hoist(copy.deepcopy(spec.output_schema or {"type": "object"}), shared, top=True),
    }
    schemas.update(shared)
    info = {
        "title": spec.title,
        "version": "1.0.0",
        "description": spec.description,
        "x-fal-metadata": {
            "endpointId": spec.id,
            "category": spec.category,
            "playgroundUrl": f"https://fal.ai/models/{spec.id}",
            "documentationUrl": f"https://fal.ai/models/{spec.id}/api",
        },
    }
    return queue_document(spec.id, info, schemas)


def queue_document(endpoint_id: str, info: dict, schemas: dict) -> dict:
    """The frame of fal's per-model document around ``info`` and the ``<Name>Input`` / ``<Name>Output``
    ``schemas``: ``QueueStatus``, the key scheme, and the queue's paths under the full endpoint id."""
    return {
        "openapi": "3.0.4",
        "info": info,
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                                               "description": 'Fal Key, as "Key <key_id>:<key_secret>"'}},
            "schemas": {"QueueStatus": _queue_status(), **schemas},
        },
        "paths": _paths(endpoint_id, schema_name(endpoint_id)),
        "servers": [{"url": "https://queue.fal.run"}],
        "security": [{"apiKeyAuth": []}],
    }


def _ref_content(name: str) -> dict:
    return {_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _paths(endpoint_id: str, name: str) -> dict:
    request_id = {"name": "request_id", "in": "path", "required": True,
                  "schema": {"type": "string", "description": "Request ID"}}
    logs = {"name": "logs", "in": "query", "required": False,
            "schema": {"type": "number", "description": "Whether to include logs (`1`) in the response or not (`0`)."}}
    base = f"/{endpoint_id}/requests/{{request_id}}"
    status = {"200": {"description": "The request status.", "content": _ref_content("QueueStatus")}}
    cancelled = {"200": {"description": "The request was cancelled.", "content": {_JSON: {"schema": {
        "type": "object", "properties": {"success": {"type": "boolean"}}}}}}}
    return {
        f"{base}/status": {"get": {"parameters": [request_id, logs], "responses": status}},
        f"{base}/cancel": {"put": {"parameters": [request_id], "responses": cancelled}},
        f"/{endpoint_id}": {"post": {
            "requestBody": {"required": True, "content": _ref_content(f"{name}Input")},
            "responses": {"200": {"description": "The request status.", "content": _ref_content("QueueStatus")}},
        }},
        base: {"get": {"parameters": [request_id], "responses": {
            "200": {"description": "Result of the request.", "content": _ref_content(f"{name}Output")}}}},
    }


def _queue_status() -> dict:
    text = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
            "request_id": {**text, "description": "The request id."},
            "response_url": {**text, "description": "The response url."},
            "status_url": {**text, "description": "The status url."},
            "cancel_url": {**text, "description": "The cancel url."},
            "logs": {"type": "object", "description": "The logs.", "additionalProperties": True},
            "metrics": {"type": "object", "description": "The metrics.", "additionalProperties": True},
            "queue_position": {"type": "integer", "description": "The queue position."},
        },
        "required": ["status", "request_id"],
    }


# ---------------------------------------------------------------------------------------------- disk cache


def cache_path(endpoint_id: str, cache_dir: Path | str) -> Path:
    """One file per endpoint: a readable, safe stem plus a short hash so different ids never collide."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", endpoint_id).strip("._")[:80] or "model"
    digest = hashlib.sha256(endpoint_id.encode()).hexdigest()[:10]
    return Path(cache_dir).expanduser() / f"{stem}-{digest}.json"


def load_cached(endpoint_id: str, cache_dir: Path | str, *, max_age: float | None = None) -> dict | None:
    """The cached document, or None when absent, older than ``max_age`` seconds, or unreadable."""
    path = cache_path(endpoint_id, cache_dir)
    try:
        if max_age is not None and time.time() - path.stat().st_mtime > max_age:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def save_cached(doc: dict, endpoint_id: str, cache_dir: Path | str) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a schema behind."""
    return write_json_atomic(cache_path(endpoint_id, cache_dir), doc)
