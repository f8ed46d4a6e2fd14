"""The model catalogue: one schema per model, the single source for validation, forms and ``model-info``.

Bundled models come from ``models.json`` next to this file. Any other fal model can be described by its
per-model OpenAPI document (:func:`lookup` with a ``fetch`` callable from a higher layer; this package never
does HTTP) and is then registered here for the rest of the process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from ..errors import UnknownModelError
from ._files import IMAGE_SIZE_PRESETS
from ._schema import inline_refs
from ._spec import CATEGORIES, MediaField, ModelSpec

__all__ = [
    "IMAGE_SIZE_PRESETS",
    "ModelSpec",
    "MediaField",
    "CATEGORIES",
    "get",
    "resolve",
    "models",
    "register",
    "lookup",
    "close_models",
    "bundled",
    "Lookup",
    "known",
    "SCHEMA_MAX_AGE",
]

log = logging.getLogger("fal_notebook")

_registered: dict[str, ModelSpec] = {}
_lock = threading.Lock()

Fetch = Callable[[str], dict]


class Lookup(Protocol):
    """Where the grammar (``%fal``) and the CLI get a model's spec: one callable, injected from above.

    ``fetch=False`` asks for what is at hand only (bundled, registered, cached on disk) and never waits for
    the network; otherwise a missing schema may be fetched from fal. Raises :class:`UnknownModelError`."""

    def __call__(self, model: str, /, *, fetch: bool = True) -> ModelSpec: ...


def known(model: str, /, *, fetch: bool = True) -> ModelSpec:
    """The :class:`Lookup` without a network: bundled and registered models only (``fetch`` is ignored)."""
    return get(model)


def _spec_from_entry(endpoint_id: str, entry: dict) -> ModelSpec:
    return ModelSpec(
        id=endpoint_id,
        title=entry.get("title", endpoint_id),
        category=entry.get("category", ""),
        aliases=tuple(entry.get("aliases", ())),
        input_schema=entry["input"],
        output=entry.get("output", "images"),
        media_fields={k: MediaField(**v) for k, v in entry.get("media_fields", {}).items()},
        limits=entry.get("limits", {}),
        source="bundled",
        description=entry.get("description", ""),
        output_schema=entry.get("output_schema", {}),
    )


@lru_cache(maxsize=1)
def _bundle() -> dict[str, ModelSpec]:
    """Parse ``models.json`` once. ``same_as`` copies another entry (kling's two tiers share one schema)."""
    text = resources.files(__package__).joinpath("models.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    raw = doc["models"]
    specs: dict[str, ModelSpec] = {}
    for endpoint_id, entry in raw.items():
        if "same_as" in entry:
            entry = {**raw[entry["same_as"]], **{k: v for k, v in entry.items() if k != "same_as"}}
        specs[endpoint_id] = _spec_from_entry(endpoint_id, inline_refs(entry, doc))
    return specs


def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for spec in list(_bundle().values()) + list(_registered.values()):
        for alias in spec.aliases:
            table.setdefault(alias.lower(), spec.id)
    return table


def bundled() -> list[ModelSpec]:
    """Only the models shipped with the package."""
    return list(_bundle().values())


def _find(model: str) -> ModelSpec | None:
    name = model.strip().strip("/")
    for candidate in (name, f"fal-ai/{name}"):
        spec = _registered.get(candidate) or _bundle().get(candidate)
        if spec is not None:
            return spec
    target = _aliases().get(name.lower())
    if target is None:
        return None
    return _registered.get(target) or _bundle().get(target)


def get(model: str) -> ModelSpec:
    """The spec for an endpoint id or alias, from the bundle or earlier registrations (no I/O)."""
    if isinstance(model, ModelSpec):
        return model
    spec = _find(model)
    if spec is None:
        raise UnknownModelError(_unknown_message(model, offline=False))
    return spec


def resolve(model: str) -> str:
    """The endpoint id for an alias or id. An unknown id with an owner (``owner/app``) is returned as is."""
    spec = _find(model)
    if spec is not None:
        return spec.id
    name = model.strip().strip("/")
    if "/" in name:
        return name
    raise UnknownModelError(_unknown_message(model, offline=False))


def models() -> list[ModelSpec]:
    """Every known model: bundled first, then those registered from OpenAPI documents."""
    specs = dict(_bundle())
    specs.update(_registered)
    return list(specs.values())


def register(spec: ModelSpec) -> ModelSpec:
    """Make a spec (usually from :func:`lookup`) known to :func:`get` for the rest of the process."""
    with _lock:
        _registered[spec.id] = spec
    return spec


def close_models(model: str, n: int = 2) -> list[str]:
    """Known ids and aliases that look like ``model``: what "did you mean …?" offers for a typo."""
    import difflib

    name = model.strip().strip("/").lower()
    names = set(_aliases())
    for spec in models():
        names.update({spec.id.lower(), spec.id.lower().removeprefix("fal-ai/")})
    return difflib.get_close_matches(name, sorted(names), n=n, cutoff=0.75)


def _unknown_message(model: str, *, offline: bool, reason: str = "") -> str:
    known = ", ".join(sorted(_aliases()))
    where = "not bundled, not cached, and its schema could not be fetched" if offline else "not in the catalogue"
    text = f"unknown model {model!r}: {where}"
    near = close_models(model)
    if near:
        text += f" (did you mean {' or '.join(near)}?)"
    if reason:
        text += f" ({reason})"
    return (
        f"{text}. Check the endpoint id (e.g. 'fal-ai/flux/dev') or use an alias ({known}). "
        "To submit without schema checks, pass validate=False (CLI/magic: --no-validate)."
    )


SCHEMA_MAX_AGE = 7 * 24 * 3600.0  # a cached OpenAPI document is fetched again after a week (models change)


def lookup(model: str, *, fetch: Fetch | None = None, cache_dir: Path | str | None = None,
           max_age: float | None = SCHEMA_MAX_AGE) -> ModelSpec:
    """Find a spec: bundled → registered → disk cache (younger than ``max_age`` s) → ``fetch(endpoint_id)`` →
    an older cached copy (offline beats unknown); registers what it finds.

    ``fetch`` returns fal's per-model OpenAPI document (a dict) and may raise anything; the document is then
    cached in ``cache_dir``. Raises :class:`UnknownModelError` saying how to submit without checks.
    """
    if isinstance(model, ModelSpec):
        return model
    spec = _find(model)
    if spec is not None:
        return spec
    endpoint_id = resolve(model)
    from . import openapi

    fresh_for = max_age if fetch is not None else None  # nothing to refresh from: any cached copy will do
    doc = openapi.load_cached(endpoint_id, cache_dir, max_age=fresh_for) if cache_dir is not None else None
    reason = "no fetcher given" if fetch is None else ""
    if doc is None and fetch is not None:
        doc, reason = _try_fetch(fetch, endpoint_id)
        if doc is not None and cache_dir is not None:
            openapi.save_cached(doc, endpoint_id, cache_dir)
        elif doc is None and cache_dir is not None:
            doc = openapi.load_cached(endpoint_id, cache_dir)
    if doc is None:
        raise UnknownModelError(_unknown_message(model, offline=True, reason=reason))
    return register(openapi.spec_from_openapi(doc, endpoint_id))


def _try_fetch(fetch: Fetch, endpoint_id: str) -> tuple[dict | None, str]:
    try:
        doc: Any = fetch(endpoint_id)
    except Exception as exc:  # the fetcher belongs to a higher layer; any failure means "offline/unknown"
        log.info("fetching the schema of %s failed: %s", endpoint_id, exc)
        return None, f"fetching its OpenAPI schema failed: {exc}"
    if not isinstance(doc, dict):
        return None, "the OpenAPI schema was not a JSON object"
    return doc, ""
