"""Display objects the subcommands return: a message, a job table, the model list and one model's fields.

Each has ``text/plain`` and escaped ``text/html``, so ``%fal jobs`` reads the same in a terminal and in a saved
notebook. They read their data when built (on the main thread) and are cheap to show twice.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import counted
from .card_data import prompt_of, state_name, thumbnail_uri
from .html import BADGE_COLOURS
from .html import esc as _e
from .model_info import ModelInfo

__all__ = ["Message", "Table", "job_table", "models_table", "model_info"]

_TABLE = "border-collapse:collapse;font-size:12px;font-family:system-ui,-apple-system,sans-serif"
_CELL = "border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top"
ROW_THUMB_SIDE = 96
ROW_THUMB_BYTES = 6_000


class Message:
    """A line or a few of text (``%fal config``, ``%fal cancel``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": f'<pre style="margin:0">{_e(self.text)}</pre>'}

    def __repr__(self) -> str:
        return self.text


class Cell:
    """A table cell: ``text`` for terminals, ``html`` (already safe) for notebooks."""

    def __init__(self, text: object, html_: str | None = None) -> None:
        self.text = "" if text is None else str(text)
        self.html = _e(self.text) if html_ is None else html_


class Table:
    """Rows of :class:`Cell` (or plain values) under a title."""

    def __init__(self, title: str, headers: list[str], rows: list[list[Any]]) -> None:
        self.title = title
        self.headers = headers
        self.rows = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self._text(), "text/html": self._html()}

    def __repr__(self) -> str:
        return self._text()

    def _text(self) -> str:
        if not self.rows:
            return f"{self.title}: none"
        table = [self.headers] + [[c.text for c in row] for row in self.rows]
        widths = [min(60, max(len(r[i]) for r in table)) for i in range(len(self.headers))]
        lines = ["  ".join(v[:60].ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in table]
        return "\n".join([self.title, *lines])

    def _html(self) -> str:
        if not self.rows:
            return f"<div><b>{_e(self.title)}</b>: none</div>"
        head = "".join(f'<th style="{_CELL}">{_e(h)}</th>' for h in self.headers)
        body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{c.html}</td>' for c in row) + "</tr>"
                       for row in self.rows)
        return (f'<div><b>{_e(self.title)}</b><table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>")


def _badge(state: str) -> Cell:
    colour = BADGE_COLOURS.get(state, "#374151")
    return Cell(state, f'<span style="color:{colour};font-weight:600">{_e(state)}</span>')


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _outputs(job: Any, thumbs: bool) -> Cell:
    files = [Path(p) for p in (getattr(job, "files", None) or [])]
    if not files:
        return Cell("")
    text = ", ".join(f.name for f in files)
    uri = thumbnail_uri(files[0], ROW_THUMB_SIDE, ROW_THUMB_BYTES) if thumbs else ""
    if not uri:
        return Cell(text)
    more = f" +{len(files) - 1}" if len(files) > 1 else ""
    return Cell(text, f'<img src="{_e(uri)}" alt="{_e(files[0].name)}" title="{_e(text)}" '
                      f'style="max-height:64px;max-width:96px;vertical-align:middle"/>{_e(more)}')


def job_table(title: str, jobs: list[Any], *, thumbs: bool = False) -> Table:
    """One row per job: id, created, model, state, prompt, outputs."""
    rows = []
    judged = any(_judgement(job) for job in jobs)
    for job in jobs:
        prompt = prompt_of(job)
        state = state_name(job.state)
        rows.append([job.id, _when(getattr(job, "created_at", None)), job.model, _badge(state),
                     prompt if len(prompt) <= 80 else prompt[:80] + "…", _outputs(job, thumbs)]
                    + ([_judgement(job)] if judged else []))
    headers = ["id", "created", "model", "state", "prompt", "outputs"] + (["rating · label"] if judged else [])
    return Table(title, headers, rows)


def _judgement(job: Any) -> str:
    """``4/5 · keeper`` when the user rated or labelled the job, else ""."""
    rating, label = getattr(job, "rating", None), getattr(job, "label_text", None)
    parts = ([f"{rating}/5"] if isinstance(rating, int) else []) + ([str(label)] if label else [])
    return " · ".join(parts)


def models_table(specs: list[Any]) -> Table:
    rows = [[s.id, ", ".join(s.aliases), s.category, s.title] for s in specs]
    return Table(counted(len(specs), "model"), ["id", "aliases", "category", "title"], rows)


def model_info(spec: Any, price: Any = None) -> ModelInfo:
    """A model described for a person: description in full, price, limits as lines, one entry per field.
    ``price`` holds ``unit_price``, ``unit`` and ``currency`` (fal's price list), or is ``None``."""
    if price is not None and not isinstance(price, dict):
        price = {"unit_price": price.unit_price, "unit": price.unit, "currency": price.currency}
    return ModelInfo(spec.describe(), price)
