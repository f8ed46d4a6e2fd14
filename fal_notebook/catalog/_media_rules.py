"""Checks for fields that take a file: what a value may be, and the limits on local videos.

A media value may be an http(s) URL, a data URI of the right family, a local path (uploaded before submit),
a PIL image or bytes. Everything else is a problem, never a crash.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import Problem
from ._schema import format_path, json_type
from ._spec import MediaField, ModelSpec

__all__ = ["MediaReport", "check_media", "PLACEHOLDER", "ACCEPTED"]

PLACEHOLDER = "https://placeholder.invalid/checked-media"
_DATA_URI = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)
ACCEPTED = _ANY = "an http(s) URL, a data URI, a local file path, a PIL image or bytes"
_ANY_REMOTE = "an http(s) URL or a data URI"


@dataclass
class MediaReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    uploads: list[tuple[str, Any]] = field(default_factory=list)


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "size")


def _locations(data: Any, segments: list[str], prefix: list) -> Iterator[tuple[list, Any, Any]]:
    """Yield ``(path, container, key)`` for every place ``segments`` (``[]`` = each list item) reaches."""
    head, rest = segments[0], segments[1:]
    if head == "[]":
        keys: Any = range(len(data)) if isinstance(data, list) else ()
    else:
        keys = (head,) if isinstance(data, dict) and head in data else ()
    for key in keys:
        if rest:
            yield from _locations(data[key], rest, prefix + [key])
        else:
            yield prefix + [key], data, key


def _segments(path: str) -> list[str]:
    return [seg for seg in re.split(r"\.|(\[\])", path) if seg]


def check_media(spec: ModelSpec, view: dict, *, local_files: bool, probe_videos: bool) -> MediaReport:
    """Check every media value in ``view`` (a plain copy of the input), replacing each checked value with a
    placeholder URL so the schema pass only judges structure and does not report the same thing twice."""
    report = MediaReport()
    for name, media in spec.media_fields.items():
        for path, container, key in _locations(view, _segments(name), []):
            value = container[key]
            if media.array:
                if not isinstance(value, list):
                    continue  # the schema pass says "must be a list"
                for index in range(len(value)):
                    _check_one(spec, media, path + [index], value, index, report, local_files, probe_videos)
            else:
                _check_one(spec, media, path, container, key, report, local_files, probe_videos)
    return report


def _check_one(spec: ModelSpec, media: MediaField, path: list, container: Any, key: Any,
               report: MediaReport, local_files: bool, probe_videos: bool) -> None:
    value = container[key]
    if value is None:
        return  # the schema pass reports null where a string is needed
    where = format_path(path)
    problem = _classify(spec, media, where, value, report, local_files, probe_videos)
    if problem is not None:
        report.problems.append(problem)
    container[key] = PLACEHOLDER


def _classify(spec: ModelSpec, media: MediaField, where: str, value: Any, report: MediaReport,
              local_files: bool, probe_videos: bool) -> Problem | None:
    kind = media.kind
    if isinstance(value, str):
        return _classify_string(spec, media, where, value, report, local_files, probe_videos)
    if isinstance(value, os.PathLike):
        return _local_file(spec, media, where, Path(value), report, local_files, probe_videos)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not local_files:
            return Problem(where, "raw bytes cannot be used here (local uploads are off)", _ANY_REMOTE)
        if len(value) == 0:
            return Problem(where, "is empty (0 bytes)", _ANY)
        report.uploads.append((where, value))
        return None
    if _is_pil_image(value):
        if kind not in ("image", "file"):
            return Problem(where, f"an image was given where {_article(kind)} is needed", _ANY)
        if not local_files:
            return Problem(where, "a PIL image cannot be used here (local uploads are off)", _ANY_REMOTE)
        report.uploads.append((where, value))
        return None
    return Problem(where, f"must be {_article(kind)} reference, got {json_type(value)}", _ANY)


def _article(kind: str) -> str:
    return {"image": "an image", "video": "a video", "audio": "an audio file"}.get(kind, "a file")


def _classify_string(spec: ModelSpec, media: MediaField, where: str, value: str, report: MediaReport,
                     local_files: bool, probe_videos: bool) -> Problem | None:
    text = value.strip()
    lowered = text.lower()
    if not text:
        return Problem(where, "is empty", _ANY)
    if lowered.startswith(("http://", "https://")):
        return None if urlsplit(text).hostname else Problem(where, f"{text!r} is not a usable URL (no host)", _ANY)
    if lowered.startswith("data:"):
        return _check_data_uri(spec, media, where, text)
    if re.match(r"^[a-z][a-z0-9+.-]+://", lowered):
        scheme = lowered.split(":", 1)[0]
        return Problem(where, f"URLs with scheme {scheme!r} cannot be fetched by fal", _ANY)
    return _local_file(spec, media, where, Path(text).expanduser(), report, local_files, probe_videos)


def _check_data_uri(spec: ModelSpec, media: MediaField, where: str, text: str) -> Problem | None:
    match = _DATA_URI.match(text)
    if not match:
        return Problem(where, "is not a valid data URI (expected data:<type>;base64,...)", _ANY)
    mime = match.group(1).lower() or "text/plain"
    if media.kind in ("image", "video", "audio") and mime.split("/")[0] != media.kind:
        return Problem(where, f"is a data URI of type {mime}; {_article(media.kind)} is needed",
                       f"data:{media.kind}/...")
    video = spec.limits.get("video") or {}
    max_mb = video.get("max_mb")
    if media.kind == "video" and max_mb and len(text) * 3 // 4 > max_mb * 2**20:
        return Problem(where, f"the data URI holds about {len(text) * 3 / 4 / 2**20:.0f} MB of video",
                       f"at most {max_mb} MB")
    return None


def _local_file(spec: ModelSpec, media: MediaField, where: str, path: Path, report: MediaReport,
                local_files: bool, probe_videos: bool) -> Problem | None:
    if not local_files:
        return Problem(where, f"local files are not accepted here ({str(path)!r})", _ANY_REMOTE)
    if not path.exists():
        return Problem(where, f"no such file: {str(path)!r} (nor a URL or data URI)", _ANY)
    if not path.is_file():
        return Problem(where, f"{str(path)!r} is not a regular file", _ANY)
    family = (mimetypes.guess_type(path.name)[0] or "").split("/")[0]
    if media.kind in ("image", "video", "audio") and family in ("image", "video", "audio") and family != media.kind:
        return Problem(where, f"{path.name!r} looks like {_article(family)}; {_article(media.kind)} is needed",
                       _ANY)
    if media.kind == "video" and spec.limits.get("video"):
        found = check_local_video(spec.limits["video"], where, path, report, probe_videos)
        if found:
            report.problems.extend(found[:-1])
            return found[-1]
    report.uploads.append((where, path))
    return None


def check_local_video(limits: dict, where: str, path: Path, report: MediaReport,
                      probe_videos: bool) -> list[Problem]:
    """Container, then size (no probing needed), then duration and sides from a PyAV probe."""
    from .. import media  # lazy: Pillow and the optional PyAV stay unloaded until a local video is checked

    try:
        found = media.check_video(path, media.VideoLimits.from_dict(limits), probe=probe_videos, field=where)
    except ImportError as exc:
        report.warnings.append(f"{where}: duration and resolution were not checked: {exc}")
        return []
    return found
