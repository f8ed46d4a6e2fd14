"""Jobs side by side: one column per job, one row per input field, the fields that differ marked.

``compare_data`` is the plain data (the form panel draws it its own way); ``compare_html`` / ``compare_text``
are the notebook's and the terminal's pictures of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .card_data import short_value
from .group import Tile, tile_data, tile_html
from .html import esc

__all__ = ["CompareRow", "CompareData", "Comparison", "compare", "compare_data", "compare_html", "compare_text",
           "settings_of"]

_MISSING = object()
_DIFF = "background:#fef9c3;font-weight:600"


@dataclass(frozen=True)
class CompareRow:
    name: str
    values: tuple[str, ...]  # shown (shortened); "" where a job has no such field
    differs: bool


@dataclass(frozen=True)
class CompareData:
    tiles: tuple[Tile, ...]
    models: tuple[str, ...]
    rows: tuple[CompareRow, ...]

    @property
    def differing(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.rows if row.differs)


def settings_of(job: Any) -> dict[str, Any]:
    """What made a job: ``model`` and every input field, with the seed it really used (fal's, else the sent one)."""
    arguments = getattr(job, "arguments", None) or {}
    settings = {"model": getattr(job, "model", None), **(arguments if isinstance(arguments, dict) else {})}
    seed = getattr(job, "seed", None)
    if seed is not None:
        settings["seed"] = seed
    return settings


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def compare_data(jobs: Sequence[Any]) -> CompareData:
    """Read the jobs into rows of field values; ``differs`` when not every job has the same value."""
    settings = [settings_of(job) for job in jobs]
    names = list(dict.fromkeys(name for s in settings for name in s))
    rows = []
    for name in names:
        raw = [s.get(name, _MISSING) for s in settings]
        differs = len({"\0missing" if v is _MISSING else _key(v) for v in raw}) > 1
        rows.append(CompareRow(name, tuple("" if v is _MISSING else short_value(v) for v in raw), differs))
    return CompareData(tiles=tuple(tile_data(job) for job in jobs),
                       models=tuple(str(s.get("model") or "") for s in settings), rows=tuple(rows))


def compare_html(data: CompareData) -> str:
    """A table: thumbnails on top, then one row per field; differing rows highlighted."""
    head = "<th></th>" + "".join(f'<th style="vertical-align:top">{tile_html(t)}</th>' for t in data.tiles)
    body = []
    for row in data.rows:
        style = _DIFF if row.differs else ""
        cells = "".join(f'<td style="padding:2px 6px;{style}"><code>{esc(v)}</code></td>' for v in row.values)
        mark = ' class="fal-differs"' if row.differs else ""
        body.append(f'<tr{mark}><th style="text-align:right;padding:2px 6px;{style}">{esc(row.name)}</th>'
                    f"{cells}</tr>")
    summary = ", ".join(data.differing) or "nothing"
    return (f'<div class="fal-compare" style="font-family:system-ui,sans-serif;font-size:12px">'
            f'<div>{len(data.tiles)} jobs · differ in: <b>{esc(summary)}</b></div>'
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def compare_text(data: CompareData) -> str:
    """The comparison for terminals: a column per job, ``*`` before each field that differs."""
    ids = [t.job_id[:6] for t in data.tiles]
    width = max([len(r.name) for r in data.rows] + [5])
    lines = [" " * (width + 2) + "  ".join(f"{i:<24}" for i in ids),
             " " * (width + 2) + "  ".join(f"{t.state:<24}" for t in data.tiles)]
    for row in data.rows:
        mark = "*" if row.differs else " "
        lines.append(f"{mark} {row.name:<{width}}" + "  ".join(f"{v[:24]:<24}" for v in row.values))
    return "\n".join(line.rstrip() for line in lines)





class Comparison:
    """What :func:`compare` returns: displays as the table; ``.data`` is the plain :class:`CompareData`."""

    def __init__(self, data: CompareData) -> None:
        self.data = data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": compare_text(self.data), "text/html": compare_html(self.data)}

    def __repr__(self) -> str:
        return compare_text(self.data)


def compare(*jobs: Any) -> Comparison:
    """Jobs (or one list of them) side by side, the fields that differ highlighted. Each job is read once
    (``job.snapshot()`` when it has one)."""
    if len(jobs) == 1 and isinstance(jobs[0], list | tuple):
        jobs = tuple(jobs[0])
    return Comparison(compare_data([job.snapshot() if hasattr(job, "snapshot") else job for job in jobs]))
