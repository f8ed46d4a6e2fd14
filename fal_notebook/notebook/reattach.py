"""Running a ``%fal`` cell again shows the job it already started instead of paying for it twice.

"Restart & Run All" is the most common thing people do, and it re-runs every ``%fal`` cell, jobs in flight
included. A cell is known by the frontend's cell id (JupyterLab sends it with each execution), else by its source;
its key also hashes the request itself (model and every argument, images by their pixels), so an edited prompt
or another ``{var}`` is a new request. While the cell's previous job for that request is unfinished, the magic
shows that job's live card again; ``--new`` submits anyway, and ``FAL_NOTEBOOK_REATTACH=finished`` also reuses
completed jobs (a cheap "Run All"), ``off`` never reuses.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

__all__ = ["CellRuns", "request_fingerprint", "reusable"]


def _digest(value: Any) -> str:
    """JSON's ``default`` for what JSON cannot hold: content, never ``repr`` (which carries memory addresses)."""
    tobytes = getattr(value, "tobytes", None)
    if callable(tobytes):  # a PIL image or an array: its pixels and shape
        meta = f"{getattr(value, 'mode', '')}{getattr(value, 'size', '')}{getattr(value, 'shape', '')}"
        return "sha256:" + hashlib.sha256(meta.encode() + tobytes()).hexdigest()
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return f"{type(value).__name__}:{value}"


def request_fingerprint(model: str, requests: list[dict[str, Any]]) -> str:
    text = json.dumps([model, requests], sort_keys=True, default=_digest, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class CellRuns:
    """The cell being run (set by the ``pre_run_cell`` event) and how often it has asked for each request."""

    def __init__(self) -> None:
        self.cell: str | None = None
        self._seen: Counter[str] = Counter()

    def start_cell(self, info: Any) -> None:
        cell_id = getattr(info, "cell_id", None)
        source = getattr(info, "raw_cell", None)
        self.cell = f"id:{cell_id}" if cell_id else (f"source:{source}" if source else None)
        self._seen.clear()

    def key(self, model: str, requests: list[dict[str, Any]]) -> str | None:
        """This request's key in this cell; the second identical call in one cell gets another key."""
        if self.cell is None:
            return None
        fingerprint = request_fingerprint(model, requests)
        self._seen[fingerprint] += 1
        text = f"{self.cell}\n{fingerprint}\n{self._seen[fingerprint]}"
        return hashlib.sha256(text.encode()).hexdigest()


def reusable(found: list[Any], mode: str) -> bool:
    """Whether the jobs a cell made last time stand in for a new submit: any still running, or (``finished``
    mode) all completed. Failed or cancelled runs are submitted again."""
    if mode == "off" or not found:
        return False
    if any(not job.done for job in found):
        return True
    return mode == "finished" and all(getattr(job.state, "value", job.state) == "COMPLETED" for job in found)
