"""Reading a job into :class:`~fal_notebook._html.CardData`: state, prompt, errors, files and thumbnails.

Runs on whatever thread draws the card; it reads a job snapshot (``Job.snapshot()``: plain values read once, so
drawing never reaches back into the runtime or the store) and the local files. Thumbnails are cached per file version, so redrawing a finished card is cheap.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import JobCancelledError, detail_lines
from ..media import VIDEO_SUFFIXES, data_uri_type, is_web_url
from .html import CardData, Media
from .money import cost_text

__all__ = ["card_data", "prompt_of", "thumbnail_uri", "state_name", "options_of", "group_variants", "short_value",
           "THUMB_SIDE", "THUMB_BYTES", "local_href"]

log = logging.getLogger("fal_notebook")

THUMB_SIDE = 384
THUMB_BYTES = 56_000  # base64 adds a third: ≤ ~75 KB per image in the saved notebook
VALUE_CHARS = 40  # an option value on a card is a reminder, not the full input
CARD_MEDIA = 24  # tiles on one card; a result with more says "and N more"


def state_name(state: Any) -> str:
    return str(getattr(state, "value", state) or "")


_CACHE_SIZE = 256  # thumbnails kept (each ≤ THUMB_BYTES): a 200-job grid redraws without re-encoding
_cache: OrderedDict[tuple[str, int, int, int, int], str] = OrderedDict()
_cache_lock = threading.Lock()


def _thumbnail(path: str, mtime_ns: int, size: int, side: int, max_bytes: int, cached_only: bool = False) -> str:
    """A light JPEG data URI of one local image, or of a video's first frame (cached per file version);
    "" when it cannot be made, or (``cached_only``) is not made yet."""
    key = (path, mtime_ns, size, side, max_bytes)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    if cached_only:
        return ""
    uri = _make_thumbnail(path, side, max_bytes)
    with _cache_lock:
        _cache[key] = uri
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return uri


def _make_thumbnail(path: str, side: int, max_bytes: int) -> str:
    from .. import media

    source: Any = path
    try:
        if Path(path).suffix.lower() in VIDEO_SUFFIXES:
            source = _first_frame(path)
        data = media.thumbnail_jpeg(source, max_side=side, max_bytes=max_bytes)
    except Exception as exc:  # a thumbnail is decoration: never let it break the card
        log.debug("no thumbnail for %s: %s", path, exc)
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _first_frame(path: str) -> Any:
    """The first frame of a video as a PIL image (PyAV, the ``video`` extra)."""
    import av

    with av.open(path) as container:
        for frame in container.decode(video=0):
            return frame.to_image()
    raise ValueError(f"no video frame in {path}")


def thumbnail_uri(path: Path, side: int = THUMB_SIDE, max_bytes: int = THUMB_BYTES, *,
                  cached_only: bool = False) -> str:
    """A data URI thumbnail of a local image or video, ≤ ``max_bytes`` before base64; "" if none.
    ``cached_only``: only one made before (a redraw on the kernel's thread never decodes images)."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    return _thumbnail(str(path), stat.st_mtime_ns, stat.st_size, side, max_bytes, cached_only)


def _local_href(path: Path) -> str:
    """The file relative to the kernel's folder (JupyterLab resolves it to ``/files/...``), or ""."""
    return _relative_to(str(path), os.getcwd())


@functools.lru_cache(maxsize=1024)
def _relative_to(path: str, cwd: str) -> str:
    """Cached: resolving walks every folder of the path, and a 200-tile grid asks on every redraw."""
    try:
        rel = os.path.relpath(Path(path).resolve(), Path(cwd).resolve())
    except ValueError:  # another drive on Windows
        return ""
    return "" if rel.startswith("..") else Path(rel).as_posix()


local_href = _local_href  # shared with group tiles


def _result(job: Any) -> dict:
    if state_name(getattr(job, "state", "")) != "COMPLETED":
        return {}
    try:
        result = job.result(timeout=0)
    except Exception:  # the card shows job.error; a result that cannot be read just shows no links
        return {}
    return result if isinstance(result, dict) else {}


def remote_files(result: dict) -> list[dict]:
    """fal's file objects in output order: ``images`` / ``image`` / ``video``."""
    files = [f for f in result.get("images") or [] if isinstance(f, dict)]
    for key in ("image", "video"):
        if isinstance(result.get(key), dict):
            files.append(result[key])
    return [f for f in files if isinstance(f.get("url"), str)]


def _media(job: Any) -> tuple[tuple[Media, ...], int]:
    """The tiles (at most :data:`CARD_MEDIA`) and how many more outputs there are."""
    remote = remote_files(_result(job))
    local = [Path(p) for p in (getattr(job, "files", None) or [])]
    items = []
    total = max(len(local), len(remote))
    for i in range(min(total, CARD_MEDIA)):
        path = local[i] if i < len(local) else None
        info = remote[i] if i < len(remote) else {}
        url = info.get("url", "")
        url = url if is_web_url(url) else ""  # a server's javascript:/file: URL is never a link
        name = path.name if path else url.rsplit("/", 1)[-1]
        is_video = Path(name).suffix.lower() in VIDEO_SUFFIXES or str(info.get("content_type", "")).startswith(
            "video/")
        local_href = _local_href(path) if path else ""
        thumb = thumbnail_uri(path) if path else ("" if is_video else url)
        shown = local_href or (str(path) if path else "")  # short when next to the notebook
        items.append(Media("video" if is_video else "image", shown, local_href or url, thumb,
                           _int(info.get("width")), _int(info.get("height"))))
    return tuple(items), total - len(items)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error(job: Any) -> tuple[str, tuple[str, ...]]:
    error = getattr(job, "error", None)
    if error is None:
        return "", ()
    if isinstance(error, JobCancelledError):  # asked for by the user: a plain note, not fal's long id in red
        return ("cancelled on fal" if getattr(error, "request_id", None) else "cancelled before it was sent"), ()
    text = str(error) or type(error).__name__
    detail = getattr(error, "detail", None)
    lines: list[str] = []
    if isinstance(detail, list):
        lines = detail_lines(detail)
    elif detail and str(detail) not in text:
        lines.append(str(detail))
    if getattr(error, "error_type", None):
        lines.append(f"error type: {error.error_type}")
    return f"{type(error).__name__}: {text}", tuple(lines)


def prompt_of(job: Any) -> str:
    """The job's prompt text, "" when its model takes none."""
    arguments = getattr(job, "arguments", None) or {}
    prompt = arguments.get("prompt", "") if isinstance(arguments, dict) else ""
    return prompt if isinstance(prompt, str) else str(prompt)


def short_value(value: Any) -> str:
    """One option value, short: a file URL by its name, a data URI by its type, long text cut."""
    if isinstance(value, list | tuple):
        names = [short_value(v) for v in value[:2]]
        return ", ".join(names) + (f" +{len(value) - 2}" if len(value) > 2 else "")
    if isinstance(value, dict) and "$data_uri" in value:  # how the store keeps an inline file
        value = str(value.get("header") or "data:")
    if isinstance(value, str):
        if value.startswith("data:"):
            text = "inline " + (data_uri_type(value) or "data")
        elif value.startswith(("http://", "https://", "/")) and not any(c.isspace() for c in value):
            text = value.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or value
        else:
            text = value
    else:
        text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _defaults(model: str) -> dict[str, Any]:
    try:
        from .. import catalog

        return catalog.get(model).defaults
    except Exception:  # a model the catalogue does not know: every option counts as chosen
        return {}


def options_of(job: Any, skip: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """The inputs the user chose, besides the prompt: fields whose value is not the model's default."""
    arguments = getattr(job, "arguments", None) or {}
    if not isinstance(arguments, dict):
        return ()
    defaults = _defaults(str(getattr(job, "model", "")))
    return tuple((name, short_value(value)) for name, value in arguments.items()
                 if name != "prompt" and name not in skip and not (name in defaults and defaults[name] == value))


def group_variants(jobs: Sequence[Any]) -> list[tuple[tuple[str, str], ...]]:
    """What tells each job of a group apart: ``(field, value)`` for fields whose values differ across the group,
    and ``("#", "2 of 3")`` among identical requests (``--n``)."""
    args = [getattr(job, "arguments", None) or {} for job in jobs]
    names = list(dict.fromkeys(name for a in args for name in a))
    differing = [n for n in names if len({json.dumps(a.get(n), sort_keys=True, default=str) for a in args}) > 1]
    keys = [json.dumps(a, sort_keys=True, default=str) for a in args]
    variants = []
    for i, (arguments, key) in enumerate(zip(args, keys, strict=True)):
        chips = [(n, short_value(arguments.get(n))) for n in differing]
        twins = keys.count(key)
        if twins > 1:
            chips.append(("#", f"{keys[:i].count(key) + 1} of {twins}"))
        variants.append(tuple(chips))
    return variants


def card_data(job: Any, variant: tuple[tuple[str, str], ...] = ()) -> CardData:
    """Everything a card shows, from a job snapshot (or any object with the same attributes). ``variant`` says what tells this
    job apart from the others of its group (see :func:`group_variants`); those fields leave the option list."""
    prompt = prompt_of(job)
    error, detail = _error(job)
    media, more = _media(job)
    return CardData(
        job_id=str(getattr(job, "id", "?")),
        model=str(getattr(job, "model", "")),
        state=state_name(getattr(job, "state", "")),
        prompt=prompt,
        request_id=getattr(job, "request_id", None),
        queue_position=getattr(job, "queue_position", None),
        elapsed=getattr(job, "elapsed", None),
        inference_time=getattr(job, "inference_time", None),
        logs=tuple(str(line) for line in (getattr(job, "logs", None) or ())),
        media=media,
        more_media=more,
        error=error,
        error_detail=detail,
        variant=variant,
        options=options_of(job, skip=[name for name, _ in variant]),
        money=cost_text(getattr(job, "estimate", None), getattr(job, "cost", None),
                        bool(getattr(job, "done", False))),
    )
