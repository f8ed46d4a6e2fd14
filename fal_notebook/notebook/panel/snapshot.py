"""The panel as static HTML, for a saved notebook opened without a kernel (nbconvert, GitHub, nbviewer).

The panel's output carries this next to the widget view, so a viewer that cannot run widgets shows the job
list and the newest results instead of "Loading widget…". Inline styles only (saved notebooks lose
``<style>``); every value goes through :func:`~fal_notebook.views.html.esc`; links are http(s) URLs or paths
of local files next to the notebook; pictures are the kernel's own small JPEG data URIs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ...views.html import BADGE_COLOURS, esc
from .records import safe_href

__all__ = ["snapshot_html", "snapshot_text", "local_href", "SNAPSHOT_JOBS", "SNAPSHOT_TILES"]

SNAPSHOT_JOBS = 20  # job rows in the snapshot
SNAPSHOT_TILES = 12  # embedded thumbnails: ~12 × ≤8 KB keeps the saved notebook light
_BOX = ("font-family:system-ui,-apple-system,sans-serif;font-size:13px;border:1px solid #d1d5db;border-radius:6px;"
        "padding:8px 10px;max-width:1100px")
_MUTED = "color:#6b7280"
_TILE = "width:128px;height:128px;object-fit:cover;border-radius:3px;display:block"


def local_href(path: str) -> str:
    """A local file as a link relative to the kernel's folder (where the notebook is), or "" outside it."""
    if not path:
        return ""
    try:
        rel = os.path.relpath(Path(path).resolve(), Path.cwd().resolve())
    except ValueError:  # another drive on Windows
        return ""
    return "" if rel.startswith("..") else Path(rel).as_posix()


def _badge(state: str) -> str:
    colour = BADGE_COLOURS.get(state, "#374151")
    return (f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;font-size:11px;'
            f'font-weight:600">{esc(state)}</span>')


def _job_row(rec: dict) -> str:
    facts = [f"queue position {int(rec['queue'])}"] if rec.get("queue") is not None else []
    if rec.get("progress") is not None:
        facts.append(f"{round(float(rec['progress']) * 100)}%")
    facts.append(f"{float(rec.get('elapsed') or 0):.1f} s")
    cells = [_badge(str(rec.get("state", ""))), f"<b>{esc(rec.get('model'))}</b>", esc(rec.get("prompt")),
             f'<span style="{_MUTED}">{esc(" · ".join(facts))}</span>',
             f'<span style="{_MUTED}">{esc(rec.get("log"))}</span>']
    return "<tr>" + "".join(f'<td style="padding:2px 8px 2px 0">{c}</td>' for c in cells) + "</tr>"


def _tile(rec: dict, thumb: str, href: str) -> str:
    alt = esc(rec.get("prompt") or rec.get("model"))
    if thumb.startswith("data:image/jpeg;base64,"):
        inner = f'<img src="{esc(thumb)}" alt="{alt}" title="{alt}" style="{_TILE}"/>'
    else:
        inner = f'<span style="{_MUTED}">{alt}</span>'
    if href:
        inner = f'<a href="{esc(href)}" target="_blank" rel="noopener">{inner}</a>'
    caption = f'<div style="font-size:11px;{_MUTED};max-width:128px;overflow:hidden">{esc(rec.get("model"))}</div>'
    return f'<div class="fal-snapshot-tile">{inner}{caption}</div>'


def snapshot_html(jobs: Sequence[dict], items: Sequence[dict], thumb: Callable[[str], str],
                  link: Callable[[str], str], title: str = "fal panel") -> str:
    """The job list and the newest results as one HTML fragment. ``thumb(id)`` gives a JPEG data URI (or "")
    and ``link(id)`` the full-size link of a result; both are asked only for the tiles shown."""
    rows = "".join(_job_row(r) for r in jobs[:SNAPSHOT_JOBS])
    more_jobs = len(jobs) - SNAPSHOT_JOBS
    job_part = (f'<table style="border-collapse:collapse">{rows}</table>' if rows
                else f'<div style="{_MUTED}">no jobs</div>')
    if more_jobs > 0:
        job_part += f'<div style="{_MUTED}">and {more_jobs} more</div>'
    shown = items[:SNAPSHOT_TILES]
    tiles = "".join(_tile(r, thumb(r["id"]), _href(link(r["id"]))) for r in shown)
    more = f'<div style="{_MUTED}">and {len(items) - len(shown)} more in the job store</div>' if len(items) > len(
        shown) else ""
    gallery = (f'<div style="display:flex;flex-wrap:wrap;gap:6px">{tiles}</div>{more}' if tiles
               else f'<div style="{_MUTED}">no finished results</div>')
    note = "a snapshot: run the notebook to get the live panel (the jobs themselves are kept in the job store)"
    return (f'<div class="fal-panel-snapshot" style="{_BOX}"><div><b>{esc(title)}</b> '
            f'<span style="{_MUTED}">{esc(note)}</span></div>'
            f'<div style="margin-top:6px"><b>Jobs</b></div>{job_part}'
            f'<div style="margin-top:6px"><b>Gallery</b></div>{gallery}</div>')


def _href(value: str) -> str:
    """Only http(s) URLs and relative paths of local files (no scheme, no ``//host``) become links."""
    if safe_href(value):
        return value
    if value and ":" not in value.split("/", 1)[0] and not value.startswith(("/", "\\")):
        return value
    return ""


def snapshot_text(jobs: Sequence[dict], items: Sequence[dict]) -> str:
    live = sum(1 for r in jobs if not r.get("done"))
    return f"fal panel: {len(jobs)} job(s) ({live} running), {len(items)} result(s) in the gallery"

