"""Job cards: one output per job, drawn from the job's current state and updated in place by display id.

Why plain HTML and not a widget: the same ``text/html`` is what JupyterLab shows live, what the saved notebook
keeps, and what nbconvert / GitHub render, so there is one picture to get right (jupyter-notes §2, §6.3).

Threads: a job's ``on_change`` callbacks run on the runtime thread. They only schedule
:meth:`LiveCard._refresh` on the kernel's loop with ``call_soon_threadsafe(..., context=<submitting cell>)``,
coalesced, so every display call happens on the main thread with the submitting cell's parent header. With no
running loop (terminal IPython, scripts) nothing is drawn from the background: the extension reports finished jobs
at the next prompt instead.

    card = LiveCard(job).show()     # display once, then redrawn as the job moves
    resend_final()                  # re-publish finished cards from the current cell (for nbclient/papermill)
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._html import CardData, Media, card_html, card_text

__all__ = [
    "JobCard", "LiveCard", "card_data", "jobs_of", "show", "thumbnail_uri", "resend_final", "finished_unannounced",
    "notice",
]

log = logging.getLogger("fal_notebook")

THUMB_SIDE = 384
THUMB_BYTES = 56_000  # base64 adds a third: ≤ ~75 KB per image in the saved notebook
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
_CARDS: list[LiveCard] = []
_CARDS_LOCK = threading.Lock()


def _state_name(state: Any) -> str:
    return str(getattr(state, "value", state) or "")


@functools.lru_cache(maxsize=256)
def _thumbnail(path: str, mtime_ns: int, size: int, side: int, max_bytes: int) -> str:
    """A light JPEG data URI of one local image, or of a video's first frame (cached per file version);
    "" when it cannot be made."""
    from . import media

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


def thumbnail_uri(path: Path, side: int = THUMB_SIDE, max_bytes: int = THUMB_BYTES) -> str:
    """A data URI thumbnail of a local image or video, ≤ ``max_bytes`` before base64; "" if none."""
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    return _thumbnail(str(path), stat.st_mtime_ns, stat.st_size, side, max_bytes)


def _local_href(path: Path) -> str:
    """The file relative to the kernel's folder (JupyterLab resolves it to ``/files/...``), or ""."""
    try:
        rel = os.path.relpath(Path(path).resolve(), Path.cwd().resolve())
    except ValueError:  # another drive on Windows
        return ""
    return "" if rel.startswith("..") else Path(rel).as_posix()


def _result(job: Any) -> dict:
    if _state_name(getattr(job, "state", "")) != "COMPLETED":
        return {}
    try:
        result = job.result(timeout=0)
    except Exception:  # the card shows job.error; a result that cannot be read just shows no links
        return {}
    return result if isinstance(result, dict) else {}


def _remote_files(result: dict) -> list[dict]:
    """fal's file objects in output order: ``images`` / ``image`` / ``video``."""
    files = [f for f in result.get("images") or [] if isinstance(f, dict)]
    for key in ("image", "video"):
        if isinstance(result.get(key), dict):
            files.append(result[key])
    return [f for f in files if isinstance(f.get("url"), str)]


def _media(job: Any) -> tuple[Media, ...]:
    remote = _remote_files(_result(job))
    local = [Path(p) for p in (getattr(job, "files", None) or [])]
    items = []
    for i in range(max(len(local), len(remote))):
        path = local[i] if i < len(local) else None
        info = remote[i] if i < len(remote) else {}
        url = info.get("url", "")
        name = path.name if path else url.rsplit("/", 1)[-1]
        is_video = Path(name).suffix.lower() in VIDEO_SUFFIXES or str(info.get("content_type", "")).startswith(
            "video/")
        href = (_local_href(path) if path else "") or url
        thumb = thumbnail_uri(path) if path else ("" if is_video else url)
        items.append(Media("video" if is_video else "image", str(path) if path else "", href, thumb,
                           info.get("width"), info.get("height")))
    return tuple(items)


def _error(job: Any) -> tuple[str, tuple[str, ...]]:
    error = getattr(job, "error", None)
    if error is None:
        return "", ()
    text = str(error) or type(error).__name__
    detail = getattr(error, "detail", None)
    lines: list[str] = []
    if isinstance(detail, list):
        for entry in detail:
            if isinstance(entry, dict):
                loc = ".".join(str(p) for p in entry.get("loc", ()) if p != "body")
                lines.append(f"{loc}: {entry.get('msg', entry)}" if loc else str(entry.get("msg", entry)))
            else:
                lines.append(str(entry))
    elif detail and str(detail) not in text:
        lines.append(str(detail))
    if getattr(error, "error_type", None):
        lines.append(f"error type: {error.error_type}")
    return f"{type(error).__name__}: {text}", tuple(lines)


def card_data(job: Any) -> CardData:
    """Read everything a card shows from the job, once, on the calling thread."""
    arguments = getattr(job, "arguments", None) or {}
    prompt = arguments.get("prompt", "") if isinstance(arguments, dict) else ""
    error, detail = _error(job)
    return CardData(
        job_id=str(getattr(job, "id", "?")),
        model=str(getattr(job, "model", "")),
        state=_state_name(getattr(job, "state", "")),
        prompt=prompt if isinstance(prompt, str) else str(prompt),
        request_id=getattr(job, "request_id", None),
        queue_position=getattr(job, "queue_position", None),
        elapsed=getattr(job, "elapsed", None),
        inference_time=getattr(job, "inference_time", None),
        logs=tuple(str(line) for line in (getattr(job, "logs", None) or ())),
        media=_media(job),
        error=error,
        error_detail=detail,
    )


class JobCard:
    """A static picture of a job: ``text/html`` with embedded thumbnails plus ``text/plain``.

    >>> display(JobCard(job))
    """

    def __init__(self, job: Any) -> None:
        self.job = job

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = card_data(self.job)
        return {"text/html": card_html(data), "text/plain": card_text(data)}

    def __repr__(self) -> str:
        return card_text(card_data(self.job))


class LiveCard:
    """One displayed card of one job, redrawn in place on the kernel loop whenever the job changes."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.handle: Any = None
        self.live = False  # True when a kernel loop redraws it
        self.final_sent = False  # a finished card was published from inside a later cell
        self.announced = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: contextvars.Context | None = None
        self._lock = threading.Lock()
        self._scheduled = False
        self._unsubscribe: Any = None

    def show(self) -> LiveCard:
        """Display the card once and, inside a kernel, follow the job. Call on the main thread in a cell."""
        from IPython.display import display

        shown_state = _state_name(self.job.state)
        self.handle = display(JobCard(self.job), display_id=True)
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.live = self._loop is not None
        if self.live and not self.job.done:
            self._ctx = contextvars.copy_context()
            self._unsubscribe = self.job.on_change(self._changed)
            if _state_name(self.job.state) != shown_state:  # moved between display and subscribe
                self._changed()
        with _CARDS_LOCK:
            _CARDS.append(self)
        return self

    def _changed(self) -> None:
        """Runtime thread: schedule one redraw on the kernel loop unless one is already pending."""
        with self._lock:
            if self._scheduled or self._loop is None:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._refresh, context=self._ctx)
        except RuntimeError:  # the kernel's loop is closed: nobody is watching any more
            self._stop()

    def _refresh(self) -> None:
        """Kernel loop, in the submitting cell's context: redraw from the job's current state."""
        with self._lock:
            self._scheduled = False
        done = bool(self.job.done)
        try:
            self.handle.update(JobCard(self.job))
        except Exception:
            log.exception("could not redraw the card of job %s", getattr(self.job, "id", "?"))
        if done:
            self._stop()

    def _stop(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def resend(self) -> None:
        """Publish the current card again from the calling cell (nbclient records only the running cell's)."""
        if self.handle is not None:
            self.handle.update(JobCard(self.job))
        if self.job.done:
            self.final_sent = True


def jobs_of(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list | tuple) else [obj]


def show(obj: Any) -> list[LiveCard]:
    """Display one card per job of a ``Job`` or a ``JobGroup``."""
    return [LiveCard(job).show() for job in jobs_of(obj)]


def resend_final(jobs: Iterable[Any] | None = None) -> int:
    """Re-publish cards from the current cell: those of ``jobs`` (finished or not) and every finished card
    not yet re-published. Returns how many were sent. Call on the main thread, inside a cell."""
    wanted = {id(job) for job in jobs} if jobs is not None else set()
    with _CARDS_LOCK:
        cards = list(_CARDS)
    sent = 0
    for card in cards:
        if id(card.job) in wanted or (card.job.done and not card.final_sent):
            card.resend()
            sent += 1
    _prune()
    return sent


def _prune() -> None:
    with _CARDS_LOCK:
        _CARDS[:] = [c for c in _CARDS if not (c.job.done and c.final_sent and (c.live or c.announced))]


def finished_unannounced() -> list[Any]:
    """Jobs shown without a kernel loop (terminal) that finished since the last call; each is returned once."""
    with _CARDS_LOCK:
        cards = [c for c in _CARDS if not c.live and not c.announced and c.job.done]
        for card in cards:
            card.announced = True
    seen: dict[int, Any] = {}
    for card in cards:
        seen.setdefault(id(card.job), card.job)
    return list(seen.values())


def notice(job: Any) -> str:
    """One line saying a job finished, for a terminal prompt."""
    data = card_data(job)
    where = ", ".join(m.path or m.href for m in data.media)
    tail = f": {where}" if where else (f": {data.error}" if data.error else "")
    return f"[fal] job {data.job_id} ({data.model}) {data.state}{tail}"
