"""The HTML and text of a job card, built from plain values: no IPython, no job objects, no I/O.

Inline styles only: GitHub, nbviewer and JupyterLab's sanitiser drop ``<style>`` blocks in saved notebooks but keep
the elements. Every value that came from a user or from fal (prompt, logs, errors, file names, URLs) goes through
:func:`html.escape` here and nowhere else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from ..errors import counted
from ..media import is_web_url

__all__ = ["CardData", "Media", "card_html", "card_text", "progress_text", "esc", "pair_text", "safe_link",
           "BADGE_COLOURS"]

BADGE_COLOURS = {
    "SUBMITTING": "#6b7280",
    "IN_QUEUE": "#b45309",
    "IN_PROGRESS": "#1d4ed8",
    "COMPLETED": "#15803d",
    "FAILED": "#b91c1c",
    "CANCELLED": "#6b7280",
    "EXPIRED": "#9a3412",
    "UNKNOWN": "#7c3aed",
    "NOT_RECEIVED": "#9a3412",
}
LOG_LINES = 200  # the tail shown; the full log stays on the job
PROMPT_CHARS = 600

_CARD = ("font-family:system-ui,-apple-system,sans-serif;font-size:13px;border:1px solid #d1d5db;"
         "border-radius:6px;padding:8px 10px;margin:2px 0;max-width:980px")
_GRID = "display:flex;flex-wrap:wrap;gap:6px;margin-top:6px"
_THUMB = "max-width:320px;max-height:200px;border-radius:4px;display:block"
_MUTED = "color:#6b7280"
_CHIP = ("background:#eef2ff;color:#3730a3;border:1px solid #c7d2fe;border-radius:9px;padding:0 7px;"
         "font-size:11px;font-family:ui-monospace,monospace;white-space:nowrap")


@dataclass(frozen=True)
class Media:
    """One output file: ``thumb`` is a data URI (may be empty), ``href`` the full-size link (may be empty)."""

    kind: str  # "image" | "video"
    path: str = ""
    href: str = ""
    thumb: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class CardData:
    """What a card shows, already read from the job (so building HTML never touches live state)."""

    job_id: str
    model: str
    state: str
    prompt: str = ""
    request_id: str | None = None
    queue_position: int | None = None
    elapsed: float | None = None
    inference_time: float | None = None
    logs: tuple[str, ...] = ()
    media: tuple[Media, ...] = ()
    error: str = ""
    error_detail: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    variant: tuple[tuple[str, str], ...] = ()  # what tells this job apart in its group: (field, value), ("#", "2 of 3")
    options: tuple[tuple[str, str], ...] = ()
    money: str = ""  # "est. $0.30" before the end, "cost $0.30" after ("" without a price)  # the other inputs the user chose (not defaults), shortened
    more_media: int = 0  # outputs not shown (a result with very many files): "and N more"


def esc(value: object) -> str:
    """Escape anything for HTML text or an attribute value (``None`` is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


_e = esc
_THUMB_URI = re.compile(r"data:image/(jpeg|png|gif|webp);base64,[A-Za-z0-9+/=]*")


def safe_link(url: str, *, image: bool = False) -> str:
    """``url`` when it may go into ``href``/``src``: http(s), a path relative to the notebook (a local output
    file), or for ``image`` a base64 picture; "" otherwise. A server's ``javascript:``, ``file:`` or
    ``data:text/html`` URL never becomes a link, whatever it says."""
    url = str(url or "")
    if is_web_url(url):
        return url
    if image and _THUMB_URI.fullmatch(url):
        return url
    if not url or url.startswith(("/", "\\")) or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return ""
    head = url.replace("\\", "/").split("/", 1)[0]
    return "" if ":" in head else url  # a scheme of any kind (javascript:, file:, c:) is no local path


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{int(value // 60)} min {int(value % 60)} s"


def _badge(state: str) -> str:
    colour = BADGE_COLOURS.get(state, "#374151")
    return (f'<span class="fal-badge" style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;'
            f'font-size:11px;font-weight:600">{_e(state)}</span>')


badge = _badge  # the state badge, shared with group tiles and lineage lines


def pair_text(name: str, value: str) -> str:
    """``aspect_ratio=9:16``, or ``#2 of 3`` for the place among identical requests."""
    return f"#{value}" if name == "#" else f"{name}={value}"


def _queue(card: CardData) -> str:
    if card.state == "IN_QUEUE" and card.queue_position is not None:
        return f"queue position {int(card.queue_position)}"
    return ""


def _header(card: CardData) -> str:
    facts = [f"<code>{_e(card.job_id)}</code>"]
    if _queue(card):
        facts.append(f'<b class="fal-queue">{_queue(card)}</b>')
    if card.elapsed is not None:
        facts.append(f"elapsed {_seconds(card.elapsed)}")
    if card.inference_time is not None:
        facts.append(f"inference {_seconds(card.inference_time)}")
    if card.money:
        facts.append(f'<span class="fal-cost">{_e(card.money)}</span>')
    chips = "".join(f' <span class="fal-variant" style="{_CHIP}">{_e(pair_text(n, v))}</span>'
                    for n, v in card.variant)
    return (f'<div><b>{_e(card.model)}</b> {_badge(card.state)}{chips} '
            f'<span style="{_MUTED}">{" · ".join(facts)}</span></div>')


def _options(card: CardData) -> str:
    if not card.options:
        return ""
    items = " · ".join(f"<code>{_e(pair_text(n, v))}</code>" for n, v in card.options)
    return f'<div class="fal-options" style="margin-top:2px;font-size:11px;{_MUTED}">{items}</div>'


def _prompt(card: CardData) -> str:
    if not card.prompt:
        return ""
    text = card.prompt if len(card.prompt) <= PROMPT_CHARS else card.prompt[:PROMPT_CHARS] + "…"
    return f'<div class="fal-prompt" style="margin-top:4px;white-space:pre-wrap">{_e(text)}</div>'


def _logs(card: CardData) -> str:
    if not card.logs:
        return ""
    tail = card.logs[-LOG_LINES:]
    opened = "" if card.state in ("COMPLETED", "CANCELLED", "EXPIRED", "NOT_RECEIVED") else " open"
    return (f'<details{opened} style="margin-top:4px"><summary style="cursor:pointer;{_MUTED}">logs '
            f'({counted(len(card.logs), "line")})</summary><pre style="max-height:160px;overflow:auto;margin:2px 0;'
            f'font-size:11px">{_e(chr(10).join(tail))}</pre></details>')


def _image(item: Media, alt: str) -> str:
    size = f"{item.width}×{item.height}" if item.width and item.height else ""
    title = _e(f"{item.path} {size}".strip())
    thumb, href = safe_link(item.thumb, image=True), safe_link(item.href)
    if thumb:
        inner = f'<img src="{_e(thumb)}" alt="{_e(alt)}" title="{title}" style="{_THUMB}"/>'
    else:
        inner = f'<span style="{_MUTED}">{_e(item.path or "image")}</span>'
    if href:
        return f'<a href="{_e(href)}" target="_blank" rel="noopener">{inner}</a>'
    return inner


def _video(item: Media) -> str:
    """A player for the live notebook, and a still for everywhere else: the poster frame is embedded (a light
    JPEG) as the player's poster and as its fallback content, which renderers that drop ``<video>`` (and a saved
    notebook after fal's URL expired) still show; the local copy is linked by its path beside the notebook."""
    thumb, href = safe_link(item.thumb, image=True), safe_link(item.href)
    local = safe_link(item.path) if item.path and not is_web_url(item.path) else ""
    still = (f'<img class="fal-poster" src="{_e(thumb)}" alt="video: first frame" title="{_e(item.path)}" '
             f'style="{_THUMB}"/>' if thumb else "")
    if local and still:
        still = f'<a href="{_e(local)}" target="_blank" rel="noopener">{still}</a>'
    link = (f'<div style="font-size:11px"><a href="{_e(local)}" target="_blank" rel="noopener">▶ '
            f'{_e(item.path)}</a></div>' if local else "")
    if not href:
        return (still or f'<span style="{_MUTED}">{_e(item.path or "video")}</span>') + link
    poster = f' poster="{_e(thumb)}"' if thumb else ""
    return (f'<div class="fal-video"><video controls preload="metadata" src="{_e(href)}"{poster} '
            f'style="max-width:480px;max-height:320px;border-radius:4px">{still}</video>{link}</div>')


def _media(card: CardData) -> str:
    if not card.media:
        return ""
    alt = card.prompt[:120] or card.model
    tiles = [_video(m) if m.kind == "video" else _image(m, alt) for m in card.media]
    paths = [m.path for m in card.media if m.path]
    listing = ""
    if paths:
        rows = "<br/>".join(f"<code>{_e(p)}</code>" for p in paths)
        listing = f'<div style="margin-top:4px;font-size:11px;{_MUTED}">{rows}</div>'
    if card.more_media:
        listing += f'<div class="fal-more" style="{_MUTED}">and {int(card.more_media)} more</div>'
    return f'<div class="fal-media" style="{_GRID}">{"".join(tiles)}</div>{listing}'


def _error(card: CardData) -> str:
    if not card.error:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in card.error_detail)
    detail = f'<ul style="margin:2px 0 0 16px;padding:0">{items}</ul>' if items else ""
    colour = BADGE_COLOURS["CANCELLED"] if card.state == "CANCELLED" else "#b91c1c"  # a cancel is no failure
    return (f'<div class="fal-error" style="color:{colour};margin-top:4px;white-space:pre-wrap">'
            f"{_e(card.error)}{detail}</div>")


def card_html(card: CardData) -> str:
    """The whole card as one HTML fragment (static: it is also what the saved notebook keeps)."""
    notes = "".join(f'<div style="{_MUTED};margin-top:4px">{_e(n)}</div>' for n in card.notes)
    body = _header(card) + _prompt(card) + _options(card) + _error(card) + _media(card) + _logs(card) + notes
    return f'<div class="fal-card" data-fal-job="{_e(card.job_id)}" style="{_CARD}">{body}</div>'


def card_text(card: CardData) -> str:
    """The card for terminals and ``text/plain``: a status line, then the prompt, files and error."""
    facts = [card.model, card.state, *(pair_text(n, v) for n, v in card.variant)]
    if _queue(card):
        facts.append(_queue(card))
    if card.elapsed is not None:
        facts.append(_seconds(card.elapsed))
    if card.money:
        facts.append(card.money)
    lines = [f"fal job {card.job_id} · " + " · ".join(facts)]
    if card.prompt:
        prompt = card.prompt if len(card.prompt) <= 100 else card.prompt[:100] + "…"
        lines.append(f"  prompt: {prompt}")
    if card.options:
        lines.append("  options: " + ", ".join(pair_text(n, v) for n, v in card.options))
    lines += [f"  {m.kind}: {m.path or m.href}" for m in card.media]
    if card.more_media:
        lines.append(f"  and {card.more_media} more")
    if card.error:
        lines.append(f"  {'note' if card.state == 'CANCELLED' else 'error'}: {card.error}")
        lines += [f"    {line}" for line in card.error_detail]
    return "\n".join(lines)


def progress_text(card: CardData, width: int = 100) -> str:
    """One line for a terminal that waits (``--wait``): state, queue position, elapsed, the newest log line;
    cut to ``width`` characters so rewriting it in place never wraps."""
    facts = [f"fal {card.job_id[:6]}", card.state, *(pair_text(n, v) for n, v in card.variant)]
    if _queue(card):
        facts.append(_queue(card))
    if card.elapsed is not None:
        facts.append(_seconds(card.elapsed))
    if card.logs:
        facts.append(" ".join(str(card.logs[-1]).split()))
    line = " · ".join(facts)
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
