"""Which models the emulator serves, how it checks their input, and what they return.

Catalogue models come from :mod:`fal_notebook.catalog`; a few extra models exist only as OpenAPI documents
(:mod:`.extra_models`). Invalid input is reported the way fal's apps do: a pydantic-style ``detail`` list that the
result GET returns with 422.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fal_notebook import catalog
from fal_notebook.catalog import ModelSpec
from fal_notebook.catalog.openapi import openapi_from_spec
from fal_notebook.catalog.seeds import returns_seed
from fal_notebook.catalog.validate import jsonschema_module
from fal_notebook.emulator import render
from fal_notebook.emulator.blobs import BlobStore
from fal_notebook.emulator.extra_models import EXTRA_MODEL_IDS, extra_openapi
from fal_notebook.emulator.openapi_doc import schema_name
from fal_notebook.errors import UnknownModelError, ValidationError

__all__ = ["EmulatedModel", "find_model", "known_model_ids", "validate_input", "make_output"]

log = logging.getLogger("fal_notebook")

_TYPE_ERRORS = {
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "string": ("string_type", "Input should be a valid string"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "array": ("list_type", "Input should be a valid list"),
    "object": ("dict_type", "Input should be a valid dictionary"),
}


@dataclass(frozen=True, eq=False)  # one object per model (cached below), hashed by identity
class EmulatedModel:
    endpoint_id: str
    category: str
    output: str  # "images" | "video"
    schema_root: dict[str, Any]  # a document whose "$ref" points at the input schema (refs resolve inside it)
    spec: ModelSpec | None = None  # when the catalogue knows the model

    def openapi(self) -> dict[str, Any]:
        if self.spec is None:
            doc = extra_openapi(self.endpoint_id)
            assert doc is not None
            return doc
        return openapi_from_spec(self.spec)


_MADE: dict[int, tuple[ModelSpec, EmulatedModel]] = {}  # id(spec) → (spec, model)
_MADE_LOCK = threading.Lock()


def _from_spec(spec: ModelSpec) -> EmulatedModel:
    """One model per catalogue spec (made per request before: each submit and result paid for it again)."""
    with _MADE_LOCK:
        made = _MADE.get(id(spec))
        if made is not None and made[0] is spec:
            return made[1]
    root = {"$ref": "#/definitions/Input", "definitions": {"Input": spec.input_schema}}
    model = EmulatedModel(spec.id, spec.category, spec.output, root, spec)
    with _MADE_LOCK:
        if len(_MADE) >= 256:  # specs registered over and over: start again rather than grow
            _MADE.clear()
        _MADE[id(spec)] = (spec, model)
    return model


@functools.cache  # the extra models never change: one each (a deep copy of the document per request before)
def _from_openapi(endpoint_id: str) -> EmulatedModel:
    doc = extra_openapi(endpoint_id) or {}
    name = schema_name(endpoint_id)
    category = doc["info"]["x-fal-metadata"]["category"]
    output = "video" if category.endswith("video") else "images"
    root = {"$ref": f"#/components/schemas/{name}Input", "components": doc["components"]}
    return EmulatedModel(endpoint_id, category, output, root)


def find_model(endpoint_id: str) -> EmulatedModel | None:
    """The model with exactly this endpoint id (fal knows no aliases), or ``None``."""
    if endpoint_id in EXTRA_MODEL_IDS:
        return _from_openapi(endpoint_id)
    try:
        spec = catalog.get(endpoint_id)
    except UnknownModelError:
        return None
    return _from_spec(spec) if spec.id == endpoint_id else None


def known_model_ids() -> list[str]:
    return sorted({m.id for m in catalog.models()} | EXTRA_MODEL_IDS)


# ---------------------------------------------------------------------------------------------- validation


def _expected(values: list[Any]) -> str:
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _pydantic_entry(error: Any) -> tuple[str, str, dict[str, Any] | None]:
    """(type, msg, ctx) worded as fal's pydantic apps word them."""
    kind, value = str(error.validator), error.validator_value
    if kind == "enum":
        return "enum", f"Input should be {_expected(value)}", {"expected": _expected(value)}
    if kind == "type":
        name = value if isinstance(value, str) else value[0]
        return (*_TYPE_ERRORS.get(name, ("value_error", error.message)), None)
    bounds = {"minimum": ("greater_than_equal", "greater than or equal to", "ge"),
              "maximum": ("less_than_equal", "less than or equal to", "le"),
              "exclusiveMinimum": ("greater_than", "greater than", "gt"),
              "exclusiveMaximum": ("less_than", "less than", "lt")}
    if kind in bounds:
        code, words, key = bounds[kind]
        return code, f"Input should be {words} {value}", {key: value}
    if kind in {"maxItems", "minItems"}:
        code, words = ("too_long", "at most") if kind == "maxItems" else ("too_short", "at least")
        actual = len(error.instance) if isinstance(error.instance, list) else 0
        return code, f"List should have {words} {value} items after validation, not {actual}", None
    return "value_error", error.message, None


@functools.lru_cache(maxsize=64)
def _validator_for(model: EmulatedModel) -> Any:
    return jsonschema_module().Draft7Validator(model.schema_root)


def _schema_problems(model: EmulatedModel, arguments: Any) -> list[dict[str, Any]]:
    validator = _validator_for(model)
    problems: list[dict[str, Any]] = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "required":
            present = error.instance if isinstance(error.instance, dict) else {}
            problems += [{"loc": ["body", *path, name], "msg": "Field required", "type": "missing"}
                         for name in error.validator_value if name not in present]
            continue
        kind, msg, ctx = _pydantic_entry(error)
        entry = {"loc": ["body", *path], "msg": msg, "type": kind, "input": error.instance}
        problems.append({**entry, "ctx": ctx} if ctx else entry)
    return problems


def _catalogue_problems(model: EmulatedModel, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """What the catalogue's own rules refuse (media values, reference totals), as fal's 422 entries."""
    from fal_notebook.catalog.validate import validate

    try:
        validate(model.endpoint_id, arguments, local_files=False, probe_videos=False)
    except ValidationError as exc:
        return [{"loc": ["body", p.field], "msg": p.message + (f" (allowed: {p.allowed})" if p.allowed else ""),
                 "type": "value_error"} for p in exc.problems]
    except Exception as exc:  # a catalogue bug must not take the emulator down
        log.warning("catalogue validation failed for %s: %s", model.endpoint_id, type(exc).__name__)
    return []


def validate_input(model: EmulatedModel, arguments: Any) -> list[dict[str, Any]]:
    """fal-style 422 ``detail`` entries; empty when the input is acceptable."""
    if not isinstance(arguments, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    problems = _schema_problems(model, arguments)
    seen = {tuple(p["loc"][:2]) for p in problems}
    if model.spec is not None:
        problems += [p for p in _catalogue_problems(model, arguments) if tuple(p["loc"][:2]) not in seen]
    return problems


# ---------------------------------------------------------------------------------------------- outputs


def _media(store: BlobStore, name: str, data: bytes, content_type: str) -> dict[str, Any]:
    key = store.new_key(name, content_type)
    blob = store.put_bytes(key, data)
    return {"url": f"/media/{blob.key}", "content_type": content_type, "file_name": name, "file_size": blob.size}


def _images(model: EmulatedModel, arguments: dict[str, Any], store: BlobStore, seed: int) -> list[dict[str, Any]]:
    fmt = str(arguments.get("output_format") or arguments.get("format") or _default_format(model)).lower()
    width, height = render.image_size_for(arguments, _auto_source_size(model, arguments, store))
    prompt = str(arguments.get("prompt", ""))
    images = []
    for index in range(max(1, min(int(arguments.get("num_images") or 1), 8))):
        data, content_type = render.render_image(width, height, fmt, prompt, index, seed)
        ext = "jpg" if content_type == "image/jpeg" else content_type.split("/")[1]
        entry = _media(store, f"output_{index}.{ext}", data, content_type)
        images.append({**entry, "width": width, "height": height})
    return images


def _default(model: EmulatedModel, name: str) -> Any:
    return model.spec.defaults.get(name) if model.spec is not None else None


def _default_format(model: EmulatedModel) -> str:
    for name in ("output_format", "format"):
        if _default(model, name) is not None:
            return str(_default(model, name))
    return "png" if model.spec is not None else "jpeg"


def _served_key(url: str) -> str:
    """The blob key of a URL this emulator serves (``…/files/<key>`` or ``…/media/<key>``), else ""."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return "/".join(segments[1:]) if len(segments) == 3 and segments[0] in ("files", "media") else ""


def _auto_source_size(model: EmulatedModel, arguments: dict[str, Any], store: BlobStore) -> tuple[int, int] | None:
    """With ``aspect_ratio: auto`` (the edit models' default) fal keeps the first input image's ratio. The
    emulator can read it only for an image it serves itself (an upload or an output); others give a square."""
    if model.spec is None or arguments.get("aspect_ratio", _default(model, "aspect_ratio")) != "auto":
        return None
    for name, field in model.spec.media_fields.items():
        value = arguments.get(name)
        first = value[0] if isinstance(value, list) and value else value
        blob = store.get(_served_key(first)) if field.kind == "image" and isinstance(first, str) else None
        if blob is not None:
            from PIL import Image

            try:
                with Image.open(blob.path) as image:
                    return image.size
            except OSError:
                return None
    return None


def make_output(model: EmulatedModel, arguments: dict[str, Any], store: BlobStore, run_s: float) -> dict[str, Any]:
    """The model's result JSON with media URLs relative to the emulator (``/media/...``)."""
    given = arguments.get("seed")
    seed = given if isinstance(given, int) and not isinstance(given, bool) else random.randrange(2**31)
    # the seed comes back only where the real model's output has one (FLUX: yes; nano-banana, Kling: no)
    echo = {"seed": seed} if model.spec is None or returns_seed(model.spec) else {}
    if model.output == "video":
        return {"video": _media(store, "output.mp4", render.sample_mp4(), "video/mp4"), **echo}
    images = _images(model, arguments, store, seed)
    if "nano-banana" in model.endpoint_id:
        return {"images": images, "description": "", **echo}
    return {"images": images, "timings": {"inference": round(run_s, 3)}, **echo,
            "has_nsfw_concepts": [False] * len(images), "prompt": str(arguments.get("prompt", ""))}


def absolutize(value: Any, base: str) -> Any:
    """Copy of an output with every relative ``url`` made absolute for this request's host."""
    if isinstance(value, dict):
        return {k: (base + v if k == "url" and isinstance(v, str) and v.startswith("/") else absolutize(v, base))
                for k, v in value.items()}
    if isinstance(value, list):
        return [absolutize(v, base) for v in value]
    return value
