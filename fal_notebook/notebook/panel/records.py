"""What the panel's board syncs about a job: a light record (a few hundred bytes), and on demand its details.

Records carry no pictures: the board asks for the thumbnails of the tiles it shows (see ``board.py``), so the
synced state of a gallery of hundreds of jobs stays small. Everything here only reads jobs; nothing is sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...media import VIDEO_SUFFIXES
from ...views.card_data import prompt_of, remote_files, short_value, state_name
from ...views.compare import compare_data

__all__ = ["job_record", "progress_of", "detail_of", "comparison_of", "media_of", "model_for_media",
           "reusable", "short_model", "safe_href", "LOG_CHARS", "PROMPT_CHARS"]

LOG_CHARS = 160  # the last log line, cut: a record is a reminder, the full log stays on the job
PROMPT_CHARS = 140
# "step 4/28", "12/28 [00:03<…]" (tqdm), "45%": what fal apps commonly log while they work
_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def short_model(model: str) -> str:
    return model[len("fal-ai/"):] if model.startswith("fal-ai/") else model


def safe_href(value: Any) -> str:
    """``value`` when it is an http(s) URL (the only links the board draws), else ""."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in text) else ""


def progress_of(logs: Sequence[str]) -> float | None:
    """The fraction done that the newest log line states (``step 4/28``, ``45%``), or None."""
    for line in reversed(logs[-3:]):
        match = _PERCENT.search(line)
        if match and 0 <= float(match.group(1)) <= 100:
            return round(float(match.group(1)) / 100, 3)
        match = _FRACTION.search(line)
        if match and 0 < int(match.group(2)) and int(match.group(1)) <= int(match.group(2)):
            return round(int(match.group(1)) / int(match.group(2)), 3)
    return None


def _kind(path: Path | str) -> str:
    return "video" if os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES else "image"  # a gallery has hundreds


def job_record(job: Any, mine: bool = True) -> dict[str, Any]:
    """The light, JSON-ready record of one job that the board shows in its job list and gallery."""
    state = state_name(job.state)
    logs = job.logs
    files = job.files
    last = logs[-1] if logs else ""
    prompt = prompt_of(job)
    return {
        "id": job.id,
        "model": short_model(job.model),
        "state": state,
        "done": bool(job.done),  # the view offers Cancel and ticks the clock only while this is false
        "queue": job.queue_position if state == "IN_QUEUE" else None,
        "elapsed": round(job.elapsed, 1),
        "log": last if len(last) <= LOG_CHARS else last[: LOG_CHARS - 1] + "…",
        "progress": progress_of(logs) if state == "IN_PROGRESS" else None,
        "thumb": _kind(files[0]) if files else "",
        "files": len(files),
        "created": round(job.created_at.timestamp(), 3),
        "prompt": prompt if len(prompt) <= PROMPT_CHARS else prompt[: PROMPT_CHARS - 1] + "…",
        "mine": mine,
    }


def _result(job: Any) -> dict:
    if state_name(job.state) != "COMPLETED":
        return {}
    try:
        result = job.result(timeout=0)
    except Exception:  # a result that cannot be read just shows no links
        return {}
    return result if isinstance(result, dict) else {}


def media_of(job: Any) -> list[dict[str, str]]:
    """Each output: its kind, the local copy and fal's URL (http(s) only), in fal's order."""
    remote = remote_files(_result(job))
    local = job.files
    items = []
    for i in range(max(len(local), len(remote))):
        path = str(local[i]) if i < len(local) else ""
        url = safe_href(remote[i].get("url")) if i < len(remote) else ""
        content_type = str(remote[i].get("content_type", "")) if i < len(remote) else ""
        kind = "video" if content_type.startswith("video/") else _kind(path or url.split("?", 1)[0])
        items.append({"kind": kind, "path": path, "url": url, "name": Path(path or url).name})
    return items


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def detail_of(job: Any) -> dict[str, Any]:
    """What the board shows for a selected job: inputs, seed, model, timings, files (read once, JSON-ready)."""
    arguments = job.arguments if isinstance(job.arguments, dict) else {}
    seed = job.seed  # the seed used: shown in its own row, so not again among the inputs
    error = job.error
    return {
        "id": job.id,
        "model": job.model,
        "state": state_name(job.state),
        "prompt": prompt_of(job),
        "inputs": [[name, short_value(value)] for name, value in arguments.items() if name not in ("prompt", "seed")],
        "seed": "" if seed is None else str(seed),
        "timings": [[label, text] for label, text in (
            ("created", _when(job.created_at)), ("submitted", _when(job.submitted_at)),
            ("started", _when(job.started_at)), ("finished", _when(job.finished_at)),
            ("elapsed", f"{job.elapsed:.1f} s"),
            ("inference", f"{job.inference_time:.2f} s" if job.inference_time is not None else ""),
        ) if text],
        "files": media_of(job),
        "error": f"{type(error).__name__}: {error}" if error is not None else "",
    }


def comparison_of(jobs: Sequence[Any]) -> dict[str, Any]:
    """Side by side, as the board shows it: the rows of :func:`~fal_notebook.views.compare.compare_data` (what
    ``fal_notebook.compare`` shows too: the model, every input field, the seed used), ``differs`` when they differ."""
    data = compare_data(jobs)
    rows = []
    for row in data.rows:
        values = [short_model(m) for m in data.models] if row.name == "model" else [v or "—" for v in row.values]
        rows.append({"field": row.name, "values": values, "differs": row.differs})
    return {"ids": [j.id for j in jobs], "rows": rows}


def reusable(arguments: dict) -> dict:
    """The stored input made submittable again: an inline file kept by the store becomes its local copy."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            if "$data_uri" in value and value.get("path"):
                return str(value["path"])
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {name: plain(value) for name, value in (arguments or {}).items()}


def _top_level_kinds(spec: Any) -> set[str]:
    return {f.kind for path, f in spec.media_fields.items() if "[" not in path and "." not in path}


def model_for_media(kind: str, current: str | None, specs: Iterable[Any] | None = None) -> str | None:
    """A model that takes a ``kind`` file (image, video) as input, closest to ``current`` first: its own edit
    variant (``nano-banana-pro`` → ``nano-banana-pro/edit``), then its family (``kling-video/…``), then any."""
    if specs is None:
        from ... import catalog

        specs = catalog.models()
    fitting = [s for s in specs if kind in _top_level_kinds(s)]
    if not fitting:
        return None
    current = current or ""
    family = "/".join(current.split("/")[:2])

    def rank(item: tuple[int, Any]) -> tuple[int, int]:
        index, spec = item
        if current and spec.id.startswith(current + "/"):
            return 0, index
        return (1 if family and spec.id.startswith(family + "/") else 2), index

    return min(enumerate(fitting), key=rank)[1].id

