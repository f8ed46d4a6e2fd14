"""Exported files that carry their own settings, a captioned contact sheet, and ``prompts.jsonl`` lines.

Why embedded and not only a side file: a picture copied elsewhere keeps what made it (ComfyUI and AUTOMATIC1111
do the same). The bytes of the picture are never re-encoded: a PNG gets a ``tEXt`` chunk before ``IEND``, a
JPEG an XMP ``APP1`` segment after its header, a WebP an ``XMP `` chunk (with the ``VP8X`` header that says so);
anything else (video) a ``.json`` file beside it. :func:`read_settings` reads any of them back.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, unescape

__all__ = ["KEY", "embed_settings", "read_settings", "sidecar_path", "SheetItem", "contact_sheet", "prompt_line",
           "ExportReport", "export"]

KEY = "fal_notebook"  # the PNG text key, and the XMP property name
_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_NS = "urn:fal-notebook:settings:1"
_XMP = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        f'xmlns:fn="{_NS}"><fn:{KEY}>{{body}}</fn:{KEY}></rdf:Description></rdf:RDF></x:xmpmeta>'
        '<?xpacket end="w"?>')
_XMP_BODY = re.compile(rf"<fn:{KEY}>(.*?)</fn:{KEY}>", re.DOTALL)
_PNG = b"\x89PNG\r\n\x1a\n"


def _json(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def embed_settings(data: bytes, settings: Mapping[str, Any]) -> bytes | None:
    """``data`` with ``settings`` embedded, or ``None`` when the format has no place for them (use a sidecar)."""
    text = _json(settings)
    if data.startswith(_PNG):
        return _png_with(data, text)
    if data[:2] == b"\xff\xd8":
        return _jpeg_with(data, text)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_with(data, text)
    return None


def read_settings(path: str | Path) -> dict[str, Any] | None:
    """The settings embedded in an exported file (or in its sidecar ``.json``); ``None`` when it has none."""
    path = Path(path)
    data = path.read_bytes()
    found = None
    if data.startswith(_PNG):
        found = _png_text(data)
    elif data[:2] == b"\xff\xd8" or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        match = _XMP_BODY.search(data.decode("utf-8", "replace"))
        found = unescape(match.group(1)) if match else None
    if found is None and sidecar_path(path).exists():
        found = sidecar_path(path).read_text(encoding="utf-8")
    return json.loads(found) if found is not None else None


# -- PNG -------------------------------------------------------------------------------------------------------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_chunks(data: bytes):
    pos = len(_PNG)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        yield pos, kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _png_with(data: bytes, text: str) -> bytes:
    body = KEY.encode("latin-1") + b"\x00" + text.encode("ascii")  # _json escapes non-ASCII: tEXt is Latin-1
    for pos, kind, _ in _png_chunks(data):
        if kind == b"IEND":
            return data[:pos] + _chunk(b"tEXt", body) + data[pos:]
    raise ValueError("not a complete PNG (no IEND chunk)")


def _png_text(data: bytes) -> str | None:
    prefix = KEY.encode("latin-1") + b"\x00"
    for _, kind, body in _png_chunks(data):
        if kind == b"tEXt" and body.startswith(prefix):
            return body[len(prefix):].decode("latin-1")
    return None


# -- JPEG ------------------------------------------------------------------------------------------------------
def _xmp(text: str) -> bytes:
    return _XMP.replace("{body}", escape(text)).encode("utf-8")


def _jpeg_with(data: bytes, text: str) -> bytes | None:
    payload = _XMP_ID + _xmp(text)
    if len(payload) + 2 > 0xFFFF:
        return None  # too long for one segment: the sidecar carries it
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2
    while data[pos:pos + 2] in (b"\xff\xe0", b"\xff\xe1") and pos + 4 <= len(data):  # after JFIF / EXIF
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
    return data[:pos] + segment + data[pos:]


# -- WebP ------------------------------------------------------------------------------------------------------
def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind = data[pos:pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return chunks


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _webp_with(data: bytes, text: str) -> bytes:
    chunks = [(k, b) for k, b in _riff_chunks(data) if k != b"XMP "]
    if chunks and chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= 0x04  # the XMP flag
        chunks[0] = (b"VP8X", bytes(header))
    else:  # a simple WebP: add the extended header the XMP chunk needs
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        flags = 0x04 | (0x10 if chunks and chunks[0][0] == b"VP8L" and _has_alpha(data) else 0)
        size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", bytes([flags, 0, 0, 0]) + size))
    chunks.append((b"XMP ", _xmp(text)))
    body = b"WEBP" + b"".join(_riff(k, b) for k, b in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _has_alpha(data: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return "A" in image.getbands()


# -- contact sheet and prompts ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SheetItem:
    """One picture on the contact sheet: a local image (or ``None`` for a video without a frame) and captions."""

    image: Any  # a PIL image, or None
    caption: Sequence[str]


def contact_sheet(items: Sequence[SheetItem], *, side: int = 256, columns: int = 4) -> bytes:
    """A PNG grid of the pictures, each captioned below (job id, seed, what differs, rating)."""
    from PIL import Image, ImageDraw

    columns = max(1, min(columns, len(items) or 1))
    rows = max(1, -(-len(items) // columns))
    line_height, lines = 12, max((len(item.caption) for item in items), default=1)
    cell_w, cell_h = side + 8, side + 8 + line_height * lines + 4
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for index, item in enumerate(items):
        x, y = (index % columns) * cell_w + 4, (index // columns) * cell_h + 4
        if item.image is not None:
            thumb = item.image.convert("RGB")
            thumb.thumbnail((side, side))
            sheet.paste(thumb, (x + (side - thumb.width) // 2, y + (side - thumb.height) // 2))
        else:
            draw.rectangle([x, y, x + side - 1, y + side - 1], fill=(229, 231, 235))
        for n, text in enumerate(item.caption):
            draw.text((x, y + side + 2 + n * line_height), str(text)[:side // 6], fill=(17, 24, 39))
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()


def prompt_line(settings: Mapping[str, Any], files: Sequence[str], extra: Mapping[str, Any]) -> str:
    """One ``prompts.jsonl`` line: the settings, the exported file names and the user's judgement."""
    return json.dumps({**extra, **settings, "files": list(files)}, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export` wrote: files (settings embedded or in a sidecar), the sheet, the prompts file."""

    directory: Path
    files: tuple[Path, ...]
    skipped: tuple[str, ...]  # "id: why" for jobs without files to export
    contact_sheet: Path | None
    prompts: Path

    def __repr__(self) -> str:
        skipped = f"; skipped {len(self.skipped)}: {', '.join(self.skipped)}" if self.skipped else ""
        return f"exported {len(self.files)} file(s) to {self.directory}{skipped}"


def export(jobs: Sequence[Any], directory: str | Path) -> ExportReport:
    """Write each finished job's files to ``directory`` with its settings embedded, plus ``contact-sheet.png``
    and ``prompts.jsonl``. The originals are left as they are. The settings are ``{"model", "arguments" (the
    seed included), "job_id", "request_id"}``: ``fal_notebook.submit(s["model"], s["arguments"])`` makes the
    job again."""
    from PIL import Image

    from ..media import IMAGE_SUFFIXES

    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped: list[str] = []
    sheet: list[SheetItem] = []
    lines: list[str] = []
    for job in jobs:
        sources = [Path(p) for p in job.files]
        if not sources:
            skipped.append(f"{job.id}: {getattr(job.state, 'value', job.state)}, no files")
            continue
        made = job.settings()
        settings = {"model": made.pop("model"), "arguments": made, "job_id": job.id, "request_id": job.request_id}
        names = []
        for index, source in enumerate(sources):
            target = folder / f"{job.id}_{index}{source.suffix.lower()}"
            data = source.read_bytes()
            embedded = embed_settings(data, settings)
            target.write_bytes(embedded if embedded is not None else data)
            if embedded is None:
                sidecar_path(target).write_text(_json(settings), encoding="utf-8")
            written.append(target)
            names.append(target.name)
            image = None
            if source.suffix.lower() in IMAGE_SUFFIXES:
                with Image.open(source) as opened:
                    image = opened.copy()
            caption = [job.id[:6] + (f"  seed {made['seed']}" if "seed" in made else ""),
                       str(made.get("prompt", ""))[:40]]
            if getattr(job, "rating", None):
                caption.append(f"rating {job.rating}/5")
            sheet.append(SheetItem(image, caption))
        extra = {"rating": getattr(job, "rating", None), "label": getattr(job, "label_text", None),
                 "note": getattr(job, "note_text", None)}
        lines.append(prompt_line(settings, names, extra))
    sheet_path = None
    if sheet:
        sheet_path = folder / "contact-sheet.png"
        sheet_path.write_bytes(contact_sheet(sheet))
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return ExportReport(folder, tuple(written), tuple(skipped), sheet_path, prompts)
