"""A group of jobs (``--n``, ``--sweep``, ``sweep()``) as one picture: a strip for one axis, a labelled grid
(rows × columns) for two, one grid per page for the axes beyond. Plain values in, strings out.

Why one output and not one card per job: a sweep is read as a whole (which column is best?), and one display
id is one update to coalesce. Each tile shows its job's state while it runs and its thumbnail once done; the
HTML is static, so the saved notebook keeps the grid.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..media import VIDEO_SUFFIXES
from .card_data import local_href, prompt_of, short_value, state_name, thumbnail_uri
from .html import badge, esc

__all__ = ["Tile", "GroupData", "tile_data", "tile_html", "group_axes", "group_data", "group_html", "group_text",
           "tile_budget", "TILE_SIDE", "TILE_BYTES", "GROUP_BYTES"]

TILE_SIDE = 256
TILE_BYTES = 24_000  # a 4×4 grid stays under ~0.5 MB in the saved notebook
GROUP_BYTES = 600_000  # all the thumbnails of a larger group together (each redraw sends them all)
SMALL_TILE = (128, 2_500)  # the least a tile gets: side px, bytes
_MUTED = "color:#6b7280"
_BOX = ("font-family:system-ui,-apple-system,sans-serif;font-size:12px;border:1px solid #d1d5db;"
        "border-radius:6px;padding:8px 10px;margin:2px 0")
_TILE = "display:inline-block;vertical-align:top;margin:2px;text-align:center;min-width:120px"
_IMG = "max-width:220px;max-height:220px;border-radius:4px;display:block;margin:0 auto"
_EMPTY = ("width:160px;height:110px;display:flex;align-items:center;justify-content:center;"
          "background:#f3f4f6;border-radius:4px;margin:0 auto")
_AXIS = "font-family:ui-monospace,monospace;font-size:11px;color:#3730a3;padding:2px 6px;white-space:nowrap"


@dataclass(frozen=True)
class Tile:
    """One job in a grid or a comparison: its state and, once done, a small thumbnail."""

    job_id: str
    state: str
    thumb: str = ""
    href: str = ""  # an http(s) URL or a path next to the notebook; never anything else
    kind: str = "image"
    error: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class GroupData:
    """``axes``: (field, shown values) in order; ``tiles``: (index into each axis's values, tile)."""

    model: str
    prompt: str
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    tiles: tuple[tuple[tuple[int, ...], Tile], ...]


def _seed_of(job: Any) -> int | None:
    seed = getattr(job, "seed", None)
    if seed is None:
        arguments = getattr(job, "arguments", None) or {}
        seed = arguments.get("seed") if isinstance(arguments, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def tile_budget(count: int) -> tuple[int, int]:
    """``(side px, bytes)`` of each tile's thumbnail in a group of ``count``: full size up to 4×4, then
    smaller so the whole group stays near :data:`GROUP_BYTES` (a 200-job grid is not 200 × 24 KB per redraw)."""
    if count * TILE_BYTES <= GROUP_BYTES:
        return TILE_SIDE, TILE_BYTES
    max_bytes = max(SMALL_TILE[1], GROUP_BYTES // count)
    return (192 if max_bytes >= 8_000 else SMALL_TILE[0]), max_bytes


def tile_data(job: Any, side: int = TILE_SIDE, max_bytes: int = TILE_BYTES, *, cached_only: bool = False) -> Tile:
    """Read one job into a :class:`Tile` (on the drawing thread; local files only, never the network).
    ``cached_only``: a thumbnail only if one was made before (see ``thumbnail_uri``)."""
    state = state_name(getattr(job, "state", ""))
    files = [Path(p) for p in (getattr(job, "files", None) or [])]
    first = files[0] if files else None
    error = getattr(job, "error", None)
    return Tile(
        job_id=str(getattr(job, "id", "?")),
        state=state,
        thumb=thumbnail_uri(first, side, max_bytes, cached_only=cached_only) if first is not None else "",
        href=_relative(first) if first is not None else "",
        kind="video" if first is not None and first.suffix.lower() in VIDEO_SUFFIXES else "image",
        error=(str(error) or type(error).__name__) if error is not None else "",
        seed=_seed_of(job),
    )


def _relative(path: Path) -> str:
    """A path next to the notebook as ``./…`` (a file named ``javascript:…`` stays a path, never a scheme)."""
    rel = local_href(path)
    return f"./{rel}" if rel else ""


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def group_axes(arguments: Sequence[dict], axes: Sequence[str] | None = None) -> list[str]:
    """The fields that vary across the group, in the order given (``axes``) or of first appearance, seed last."""
    if axes:
        return list(axes)
    names = list(dict.fromkeys(name for a in arguments for name in a))
    varying = [n for n in names if len({_key(a.get(n)) for a in arguments}) > 1]
    return [n for n in varying if n != "seed"] + [n for n in varying if n == "seed"]


def group_data(jobs: Sequence[Any], axes: Sequence[str] | None = None, *, cached_only: bool = False) -> GroupData:
    """Place every job of the group on the axes (``axes`` names them in order; by default the fields that
    differ). Identical requests without a seed are numbered ``#1…``. Thumbnails get :func:`tile_budget`;
    ``cached_only``: only those made before (a live redraw leaves the decoding to another thread)."""
    arguments = [a if isinstance(a, dict) else {} for a in (getattr(j, "arguments", None) for j in jobs)]
    names = group_axes(arguments, axes)
    values: list[dict[str, str]] = [{} for _ in names]  # per axis: key → shown value, in order
    places: list[dict[str, int]] = [{} for _ in names]  # per axis: key → its index
    coords = []
    for args in arguments:
        where = []
        for axis, name in enumerate(names):
            key = _key(args.get(name))
            if key not in places[axis]:
                places[axis][key] = len(values[axis])
                values[axis][key] = short_value(args.get(name))
            where.append(places[axis][key])
        coords.append(tuple(where))
    shown = tuple((name, tuple(v.values())) for name, v in zip(names, values, strict=True))
    if not names and len(jobs) > 1:  # identical requests: one axis, their place in the group
        shown = (("#", tuple(str(i + 1) for i in range(len(jobs)))),)
        coords = [(i,) for i in range(len(jobs))]
    first = jobs[0] if jobs else None
    side, max_bytes = tile_budget(len(jobs))
    return GroupData(
        model=str(getattr(first, "model", "")),
        prompt=prompt_of(first) if first is not None and "prompt" not in names else "",
        axes=shown,
        tiles=tuple((c, tile_data(j, side, max_bytes, cached_only=cached_only))
                    for c, j in zip(coords, jobs, strict=True)),
    )


def _label(name: str, value: str) -> str:
    return f"#{value}" if name == "#" else f"{name}={value}"


def tile_html(tile: Tile, caption: str = "") -> str:
    if tile.thumb:
        picture = f'<img src="{esc(tile.thumb)}" alt="{esc(tile.job_id)}" style="{_IMG}"/>'
        if tile.href:
            picture = f'<a href="{esc(tile.href)}" target="_blank" rel="noopener">{picture}</a>'
    else:
        picture = f'<div style="{_EMPTY}">{badge(tile.state)}</div>'
    parts = [f"<code>{esc(tile.job_id[:6])}</code>"]
    if tile.thumb:
        parts.append(badge(tile.state) if tile.state != "COMPLETED" else "")
    if tile.seed is not None:
        parts.append(f'<span style="{_MUTED}">seed {tile.seed}</span>')
    text = " ".join(p for p in parts if p)
    head = f'<div style="{_AXIS}">{esc(caption)}</div>' if caption else ""
    error = (f'<div style="color:#b91c1c;font-size:11px;max-width:220px;white-space:pre-wrap">'
             f'{esc(tile.error[:200])}</div>') if tile.error else ""
    return (f'<div class="fal-tile" data-fal-job="{esc(tile.job_id)}" data-fal-state="{esc(tile.state)}" '
            f'style="{_TILE}">{head}{picture}<div style="margin-top:2px">{text}</div>{error}</div>')


def _cell(data: GroupData, fixed: dict[int, int]) -> list[Tile]:
    return [t for c, t in data.tiles if all(c[a] == i for a, i in fixed.items())]


def _strip(data: GroupData, fixed: dict[int, int]) -> str:
    name, labels = data.axes[0] if data.axes else ("", ())
    tiles = [(c, t) for c, t in data.tiles if all(c[a] == i for a, i in fixed.items())]
    body = "".join(tile_html(t, _label(name, labels[c[0]]) if name else "") for c, t in tiles)
    return f'<div class="fal-strip" style="display:flex;flex-wrap:wrap;gap:4px">{body}</div>'


def _grid(data: GroupData, fixed: dict[int, int]) -> str:
    (row_name, rows), (col_name, cols) = data.axes[0], data.axes[1]
    corner = f'<th style="{_AXIS};{_MUTED}">{esc(row_name)} \\ {esc(col_name)}</th>'
    head = corner + "".join(f'<th class="fal-col" style="{_AXIS}">{esc(_label(col_name, c))}</th>' for c in cols)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c in range(len(cols)):
            tiles = _cell(data, {**fixed, 0: r, 1: c})
            cells.append(f'<td style="vertical-align:top;padding:2px">{"".join(tile_html(t) for t in tiles)}</td>')
        body.append(f'<tr><th class="fal-row" style="{_AXIS};text-align:right">{esc(_label(row_name, row))}</th>'
                    f'{"".join(cells)}</tr>')
    return (f'<table class="fal-grid" style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _summary(data: GroupData) -> str:
    counts = Counter(t.state for _, t in data.tiles)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def group_html(data: GroupData) -> str:
    """The whole group as one static HTML fragment (what the saved notebook keeps)."""
    shape = " × ".join(f"{len(values)} {name}" for name, values in data.axes) or f"{len(data.tiles)} job(s)"
    prompt = (f'<div class="fal-prompt" style="margin-top:2px;white-space:pre-wrap">{esc(data.prompt[:600])}</div>'
              if data.prompt else "")
    header = (f'<div><b>{esc(data.model)}</b> <span style="{_MUTED}">{esc(shape)} · '
              f'{esc(_summary(data))}</span></div>{prompt}')
    if len(data.axes) <= 1:
        body = _strip(data, {})
    elif len(data.axes) == 2:
        body = _grid(data, {})
    else:
        pages = []
        extra = data.axes[2:]
        for combo in itertools.product(*(range(len(values)) for _, values in extra)):
            title = ", ".join(_label(name, values[i]) for (name, values), i in zip(extra, combo, strict=True))
            fixed = {axis + 2: i for axis, i in enumerate(combo)}
            pages.append(f'<details class="fal-page" open style="margin-top:4px"><summary style="cursor:pointer">'
                         f'{esc(title)}</summary>{_grid(data, fixed)}</details>')
        body = "".join(pages)
    return (f'<div class="fal-group" data-fal-jobs="{len(data.tiles)}" style="{_BOX}">{header}'
            f'<div style="margin-top:6px;overflow-x:auto">{body}</div></div>')


def group_text(data: GroupData) -> str:
    """The group for terminals and ``text/plain``: one line per job, its place on the axes first."""
    lines = [f"fal group · {data.model} · {len(data.tiles)} job(s): {_summary(data)}"]
    for coords, tile in data.tiles:
        place = ", ".join(_label(name, values[i]) for (name, values), i in zip(data.axes, coords, strict=True))
        tail = f" {tile.href}" if tile.href else (f" {tile.error[:80]}" if tile.error else "")
        lines.append(f"  [{place}] {tile.job_id} {tile.state}{tail}")
    return "\n".join(lines)
