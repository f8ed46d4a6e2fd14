"""What an OpenAPI schema does not say outright, read from field names and fal's descriptions.

fal marks no field as "takes an image"; its convention is ``*_url`` / ``*_urls`` names, and limits such as
Kling's "Only .mp4/.mov formats, 3-10s duration, 720-2160px resolution, max 200MB" live in descriptions.
"""

from __future__ import annotations

import re
from typing import Any

from ._spec import MediaField

__all__ = ["detect_media", "detect_limits", "output_kind", "guess_category"]

_KINDS = ("video", "image", "audio")
_TAG = re.compile(r"@(Video|Image|Element)1\b", re.IGNORECASE)


def _kind(name: str, schema: dict) -> str:
    for text in (name.lower(), str(schema.get("description", "")).lower()):
        for kind in _KINDS:
            if kind in text:
                return kind
    return "file"


def _is_array(schema: dict) -> bool:
    if schema.get("type") == "array":
        return True
    return any(s.get("type") == "array" for s in schema.get("anyOf", ()) if isinstance(s, dict))


def _array_items(schema: dict) -> dict:
    if "items" in schema:
        return schema["items"]
    arrays = [s for s in schema.get("anyOf", ()) if isinstance(s, dict) and s.get("type") == "array"]
    return arrays[0].get("items", {}) if arrays else {}


def detect_media(schema: dict, prefix: str = "") -> dict[str, MediaField]:
    """Fields named ``*_url`` / ``*_urls`` (also inside list items and sub-objects) take a file; the kind
    comes from the name, else the description. Keys are paths such as ``elements[].frontal_image_url``."""
    found: dict[str, MediaField] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        path = f"{prefix}{name}"
        array = _is_array(prop)
        if re.search(r"_urls?$", name) or name in ("image", "video", "audio"):
            max_items = prop.get("maxItems") if array else None
            found[path] = MediaField(_kind(name, prop), array, max_items)
            continue
        items = _array_items(prop) if array else {}
        if isinstance(items, dict) and items.get("properties"):
            found.update(detect_media(items, f"{path}[]."))
        elif prop.get("properties"):
            found.update(detect_media(prop, f"{path}."))
    return found


def _video_limits(description: str) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    formats = re.findall(r"\.(mp4|mov|webm|mkv|avi|m4v)\b", description, re.IGNORECASE)
    if formats and "format" in description.lower():
        limits["formats"] = [f".{f.lower()}" for f in dict.fromkeys(formats)]
    match = re.search(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*s(?:ec(?:onds?)?)?\b", description)
    if match:
        limits["min_duration"], limits["max_duration"] = _number(match.group(1)), _number(match.group(2))
    match = re.search(r"(\d+)\s*-\s*(\d+)\s*px", description)
    if match:
        limits["min_side"], limits["max_side"] = int(match.group(1)), int(match.group(2))
    match = re.search(r"max(?:imum)?\s*(\d+(?:\.\d+)?)\s*MB", description, re.IGNORECASE)
    if match:
        limits["max_mb"] = _number(match.group(1))
    return limits


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def detect_limits(schema: dict, media: dict[str, MediaField]) -> dict[str, Any]:
    """Video limits, the reference total and the prompt's ``@Tag1`` references, from descriptions."""
    props = schema.get("properties", {})
    limits: dict[str, Any] = {}
    for name, field in media.items():
        if field.kind == "video" and not field.array and name in props:
            video = _video_limits(str(props[name].get("description", "")))
            if video:
                limits["video"] = {"field": name, **video}
                break
    totals = {name: re.search(r"maximum\s+(\d+)\s+total", str(p.get("description", "")), re.IGNORECASE)
              for name, p in props.items() if isinstance(p, dict)}
    totals = {name: int(m.group(1)) for name, m in totals.items() if m}
    if totals:
        limits["max_refs"] = min(totals.values())
        limits["ref_fields"] = sorted(totals)
    refs = _prompt_refs(props, media)
    if refs:
        limits["prompt_field"] = "prompt"
        limits["prompt_refs"] = refs
    return limits


def _prompt_refs(props: dict, media: dict[str, MediaField]) -> dict[str, str]:
    if "prompt" not in props:
        return {}
    refs: dict[str, str] = {}
    for name, prop in props.items():
        if name == "prompt" or not isinstance(prop, dict):
            continue
        for tag in _TAG.findall(str(prop.get("description", ""))):
            refs.setdefault(tag.capitalize(), name)
    videos = [name for name, f in media.items() if f.kind == "video" and not f.array and name in props]
    if "Video" not in refs and len(videos) == 1 and _TAG.search(str(props["prompt"].get("description", ""))):
        if any(t.lower() == "video" for t in _TAG.findall(str(props["prompt"].get("description", "")))):
            refs["Video"] = videos[0]
    return refs


def output_kind(schema: dict) -> str:
    """``video`` or ``images`` (the two kinds jobs download and show); ``image``/``audio``/``json`` else."""
    props = schema.get("properties", {})
    for key, kind in (("video", "video"), ("videos", "video"), ("images", "images"), ("image", "image"),
                      ("audio", "audio"), ("audio_file", "audio")):
        if key in props:
            return kind
    return "json"


def guess_category(media: dict[str, MediaField], output: str) -> str:
    """fal's category names, when the document's ``x-fal-metadata`` does not give one."""
    kinds = {f.kind for f in media.values()}
    source = "video" if "video" in kinds else "image" if "image" in kinds else "text"
    target = "video" if output == "video" else "image"
    return f"{source}-to-{target}"
