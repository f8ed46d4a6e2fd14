"""Local media: data URIs, video probing and limits, thumbnails, safe file names, test media.

Pillow and PyAV are imported inside functions: ``import fal_notebook`` stays cheap, and PyAV is the optional
``video`` extra (without it, probing raises an ImportError that names the extra).
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import re
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FalError, Problem, UploadError, ValidationError

__all__ = [
    "VideoInfo",
    "VideoLimits",
    "probe_video",
    "check_video",
    "to_data_uri",
    "video_to_data_uri",
    "thumbnail_jpeg",
    "THUMB_MAX_PIXELS",
    "safe_filename",
    "is_web_url",
    "guess_content_type",
    "data_uri_type",
    "sniff_suffix",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "make_test_image",
    "make_mp4",
    "write_mp4",
    "pad_file",
]

MB = 2**20
_EXTRA_TYPES = {".webp": "image/webp", ".mov": "video/quicktime", ".mp4": "video/mp4", ".webm": "video/webm",
                ".mkv": "video/x-matroska", ".avif": "image/avif", ".heic": "image/heic", ".m4a": "audio/mp4"}
_NEED_AV = "PyAV is not installed; install the 'video' extra: pip install 'fal-notebook[video]'"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"})


@dataclass(frozen=True)
class VideoInfo:
    """What a probe found: ``duration`` in seconds, frame size in px, container name, file size in bytes."""

    duration: float
    width: int
    height: int
    container: str
    size: int


@dataclass(frozen=True)
class VideoLimits:
    """What fal's video-editing models accept (Kling O3: .mp4/.mov, 3–10 s, each side 720–2160 px, ≤ 200 MB)."""

    formats: tuple[str, ...] = (".mp4", ".mov")
    min_duration: float | None = 3
    max_duration: float | None = 10
    min_side: int | None = 720
    max_side: int | None = 2160
    max_mb: float | None = 200

    @classmethod
    def from_dict(cls, data: dict) -> VideoLimits:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "formats" in known:
            known["formats"] = tuple(known["formats"])
        return cls(**known)


def guess_content_type(name: str | os.PathLike) -> str:
    """The MIME type for a file name, ``application/octet-stream`` when unknown."""
    suffix = Path(str(name)).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def data_uri_type(uri: str) -> str:
    """The media type a ``data:`` URI names (``image/png``), "" when it names none."""
    return uri[5:].split(",", 1)[0].split(";", 1)[0].strip().lower()


def sniff_suffix(data: bytes) -> str:
    """A file suffix from magic bytes (``.png``, ``.jpg``, ``.webp``, ``.mp4``…), "" when unknown: raw bytes
    kept on disk get a name that says what they are."""
    signatures = ((b"\x89PNG", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"))
    for magic, suffix in signatures:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".mp4" if data[4:8] == b"ftyp" else ""


_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")  # \s is what str.isspace() says (the same Unicode table)


def is_web_url(url: object) -> bool:
    """True for an absolute ``http(s)://host/…`` URL: the only kind that is ever followed, downloaded or made a
    link (a server's ``javascript:``, ``file:`` or ``data:text/html`` URL must never become either)."""
    if not isinstance(url, str) or _SPACE_OR_CONTROL.search(url):
        return False
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest.split("/", 1)[0].strip("@:"))


def safe_filename(name: str, default: str = "file", max_length: int = 120) -> str:
    """A file name that cannot escape its directory: no separators, ``..``, control or reserved characters.

    Keeps the extension when the name must be shortened. Names from URLs and from fal's ``file_name`` go
    through this before they touch the disk.
    """
    text = unicodedata.normalize("NFC", str(name or ""))
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r'[<>:"|?*]', "_", text).strip().lstrip(".").strip()
    if not text or set(text) <= {".", " "}:
        return default
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        stem, ext = text, ""
    room = max_length - (len(ext) + 1 if ext else 0)
    stem = stem[:max(room, 1)].rstrip(" .") or default
    return f"{stem}.{ext}" if ext else stem


def _size_text(size: float, limit: float | None = None) -> str:
    """``250.3 MB``; exact bytes when the rounded figure would not show that ``size`` is over ``limit``."""
    text = f"{size / MB:.1f} MB" if size >= MB else f"{int(size)} bytes"
    if limit is not None and size > limit and round(size / MB, 1) <= limit / MB:
        text = f"{int(size):,} bytes"
    return text


def to_data_uri(path: str | os.PathLike, *, max_bytes: int = 200 * MB, content_type: str | None = None) -> str:
    """A ``data:<type>;base64,...`` URI of a local file, refused above ``max_bytes`` (before reading it).

    base64 grows the payload by a third; prefer uploading (``storage.upload``) for anything large.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise UploadError(f"no such file: {str(source)!r}")
    size = source.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{source.name} is {_size_text(size, max_bytes)}; the limit for a data URI is "
                          f"{_size_text(max_bytes)} (upload it instead)")
    kind = content_type or guess_content_type(source.name)
    parts = [f"data:{kind};base64,"]
    with source.open("rb") as handle:
        while chunk := handle.read(3 * MB):  # a multiple of 3: chunks encode without padding in between
            parts.append(base64.b64encode(chunk).decode("ascii"))
    return "".join(parts)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Duration, frame size and container of a local video, read with PyAV (the ``video`` extra).

    Raises ImportError naming the extra when PyAV is missing, ValidationError when the file is not a video.
    """
    try:
        import av
    except ImportError as exc:
        raise ImportError(_NEED_AV) from exc
    source = Path(path).expanduser()
    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise ValueError("it has no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            info = VideoInfo(duration, stream.codec_context.width, stream.codec_context.height,
                             _container_name(container.format.name, source), source.stat().st_size)
    except (OSError, ValueError, av.FFmpegError) as exc:
        problem = Problem(source.name, f"could not be read as a video: {exc}", ".mp4, .mov")
        raise ValidationError(str(source), [problem]) from exc
    return info


def _duration(container: Any, stream: Any) -> float:
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base: microseconds
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    rate = stream.average_rate
    return float(stream.frames / rate) if rate and stream.frames else 0.0


def _container_name(names: str, source: Path) -> str:
    """FFmpeg reports ``mov,mp4,m4a,...`` for both; name the one the file claims to be."""
    ext = source.suffix.lower().lstrip(".")
    choices = names.split(",")
    return ext if ext in choices else choices[0]


def check_video(path: str | os.PathLike, limits: VideoLimits | None = None, *, probe: bool = True,
                field: str = "video") -> list[Problem]:
    """Every way a local video breaks ``limits``: container, then size (no probe needed), then duration and
    sides. With ``probe`` and without PyAV this raises the ImportError of :func:`probe_video`."""
    limits = limits or VideoLimits()
    source = Path(path).expanduser()
    formats = ", ".join(limits.formats)
    if limits.formats and source.suffix.lower() not in limits.formats:
        return [Problem(field, f"container {source.suffix or '(none)'!r} is not accepted", formats)]
    size = source.stat().st_size
    if limits.max_mb and size > limits.max_mb * MB:
        return [Problem(field, f"the file is {_size_text(size, limits.max_mb * MB)}; the limit is {limits.max_mb:g} MB",
                        f"at most {limits.max_mb:g} MB")]
    if not probe:
        return []
    try:
        info = probe_video(source)
    except ValidationError as exc:
        return [Problem(field, exc.problems[0].message, formats)]
    return _limit_problems(info, limits, field)


def _limit_problems(info: VideoInfo, limits: VideoLimits, field: str) -> list[Problem]:
    problems = []
    low, high = limits.min_duration, limits.max_duration
    if (low is not None and info.duration < low) or (high is not None and info.duration > high):
        problems.append(Problem(field, f"the video is {info.duration:.1f} s long; the limit is {low:g}–{high:g} s",
                                f"{low:g}–{high:g} s"))
    small, big = limits.min_side, limits.max_side
    sides = (info.width, info.height)
    if (small is not None and min(sides) < small) or (big is not None and max(sides) > big):
        problems.append(Problem(field, f"the video is {info.width}×{info.height} px; each side must be "
                                       f"{small}–{big} px", f"each side {small}–{big} px"))
    return problems


def video_to_data_uri(path: str | os.PathLike, limits: VideoLimits | None = None) -> str:
    """A data URI of a local video that passes ``limits`` (probed first); ValidationError otherwise."""
    limits = limits or VideoLimits()
    problems = check_video(path, limits)
    if problems:
        raise ValidationError(str(path), problems)
    max_bytes = int(limits.max_mb * MB) if limits.max_mb else 2**62
    return to_data_uri(path, max_bytes=max_bytes)


THUMB_MAX_PIXELS = 64_000_000  # decoding this much RGBA takes 256 MB; beyond it there is no thumbnail


def _open_image(src: Any) -> Any:
    from PIL import Image

    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(src)))
    return Image.open(Path(src).expanduser())


def _too_big(width: int, height: int, max_pixels: int) -> FalError:
    return FalError(f"no thumbnail: the image is {width}×{height} px ({width * height / 1e6:.0f} MP), above the "
                    f"{max_pixels / 1e6:g} MP limit for thumbnails")


def _reduce_in_strips(image: Any, factor: int) -> Any:
    """``image`` box-reduced by ``factor``, a strip of rows at a time: Pillow's own ``reduce``/``resize`` of an
    RGBA or palette image first converts the whole image (another full-size copy), a strip costs only its own
    rows."""
    from PIL import Image

    if image.mode in ("RGB", "L"):  # reduced as they are, no copy: one call (a worker thread gives the GIL away
        return image.reduce(factor) if factor > 1 else image  # at each call and may wait to get it back)
    mode = {"P": "RGBA", "PA": "RGBA", "1": "L"}.get(image.mode, image.mode)
    width, height = image.size
    rows = factor * max(1, 256 // factor)
    out = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        part = image.crop((0, top, width, min(height, top + rows)))
        if part.mode != mode:
            part = part.convert(mode)
        out.paste(part.reduce(factor) if factor > 1 else part, (0, top // factor))
    return out


def thumbnail_jpeg(src: Any, max_side: int = 512, max_bytes: int = 80_000,
                   max_pixels: int = THUMB_MAX_PIXELS) -> bytes:
    """A JPEG no larger than ``max_side`` px and ``max_bytes`` bytes (quality first, then size, goes down),
    small enough to embed in a notebook's static HTML without bloating it.

    Memory stays bounded: the size is read from the header and an image above ``max_pixels`` is refused
    (``FalError``) before any pixel is decoded; a JPEG is decoded already scaled down (``draft``), and every
    conversion happens on the small copy, never on the full-size image."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap decides
            image = _open_image(src)
    except Image.DecompressionBombError as exc:
        raise FalError(f"no thumbnail: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise _too_big(width, height, max_pixels)
    if image.format == "JPEG":
        image.draft("RGB", (max_side, max_side))  # DCT scaling: decodes 1/2, 1/4 or 1/8 of the pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image.load()
    if max(image.size) > max_side:
        # box-reduce (an area average: no aliasing) to ≥ the target, then resample the last < 2×: a 1024² PNG
        # to 320 px costs ~3 ms instead of ~13 ms resampling from ≥ 2× (the panel makes dozens at once)
        factor = max(1, max(image.size) // max_side)
        image = _reduce_in_strips(image, factor)
        image.thumbnail((max_side, max_side))
    if image.mode not in ("RGB", "L"):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, "white")
        image.paste(rgba, mask=rgba.getchannel("A"))
    side = max_side
    while True:
        thumb = image.copy()
        thumb.thumbnail((side, side))
        for quality in (85, 70, 55, 40, 25):
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes or (side <= 16 and quality == 25):
                return out.getvalue()
        side = max(16, int(side * 0.7))


def make_test_image(width: int, height: int, fmt: str = "png", text: str = "") -> bytes:
    """A gradient image with ``text`` written on it: cheap, deterministic, recognisably different per text."""
    from PIL import Image, ImageDraw

    tint = sum(text.encode()) % 256
    red = Image.linear_gradient("L").rotate(90).resize((width, height))
    green = Image.linear_gradient("L").resize((width, height))
    blue = Image.new("L", (width, height), tint)
    image = Image.merge("RGB", (red, green, blue))
    if text:
        ImageDraw.Draw(image).text((8, 8), text[:200], fill=(255, 255, 255))
    out = io.BytesIO()
    kind = {"jpg": "JPEG"}.get(fmt.lower(), fmt.upper())
    image.save(out, kind)
    return out.getvalue()


def write_mp4(path: str | os.PathLike, width: int, height: int, seconds: float, fps: int = 8) -> Path:
    """Write a small H.264 MP4 (libx264 via PyAV) of the given size and length; for tests and the emulator."""
    try:
        import av
    except ImportError as exc:
        raise ImportError(_NEED_AV) from exc
    from PIL import Image

    target = Path(path)
    with av.open(str(target), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "40", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(max(1, round(seconds * fps))):
            shade = (index * 255) // max(1, round(seconds * fps))
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (shade, 96, 255 - shade)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return target


def make_mp4(width: int, height: int, seconds: float, fps: int = 8) -> bytes:
    """The bytes of :func:`write_mp4`'s output."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return write_mp4(Path(tmp) / "clip.mp4", width, height, seconds, fps).read_bytes()


def pad_file(path: str | os.PathLike, total_bytes: int) -> Path:
    """Grow an MP4 to ``total_bytes`` with one trailing ``free`` box, written sparsely (the file stays a valid
    MP4 without writing the padding), so size limits can be tested cheaply."""
    target = Path(path)
    pad = total_bytes - target.stat().st_size
    if pad < 16:
        raise ValueError(f"{target.name} is already {target.stat().st_size} bytes")
    header = struct.pack(">I4s", pad, b"free") if pad < 2**32 else struct.pack(">I4sQ", 1, b"free", pad)
    with target.open("r+b") as handle:
        handle.seek(0, os.SEEK_END)
        handle.write(header)
        handle.truncate(total_bytes)
    return target
