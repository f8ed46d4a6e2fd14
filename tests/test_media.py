"""Media helpers: data URIs, thumbnails, safe file names, content types, test images and MP4s."""

from __future__ import annotations

import base64
import io
import os
import struct
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fal_notebook import media
from fal_notebook.errors import UploadError


@pytest.mark.parametrize(("name", "expected"), [
    ("a.png", "image/png"), ("A.JPG", "image/jpeg"), ("x.webp", "image/webp"), ("clip.mp4", "video/mp4"),
    ("clip.MOV", "video/quicktime"), ("dir/v.webm", "video/webm"), ("noext", "application/octet-stream"),
    ("weird.zzz9", "application/octet-stream"),
])
def test_guess_content_type(name: str, expected: str) -> None:
    assert media.guess_content_type(name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd", "passwd"), ("..", "file"), (".", "file"), ("", "file"), ("C:\\Users\\x\\evil.png", "evil.png"),
    (".hidden.png", "hidden.png"), ("a\x00b\nc.png", "abc.png"), ('what?<is>:"this"|*.jpg', "what__is___this___.jpg"),
    ("output 1.png", "output 1.png"), ("résumé.png", "résumé.png"),
])
def test_safe_filename_examples(name: str, expected: str) -> None:
    assert media.safe_filename(name) == expected


def test_safe_filename_keeps_the_extension_when_shortening() -> None:
    name = media.safe_filename("x" * 500 + ".jpeg")
    assert len(name) == 120 and name.endswith(".jpeg")
    assert media.safe_filename("", default="image.png") == "image.png"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_safe_filename_never_escapes_its_directory(name: str) -> None:
    safe = media.safe_filename(name)
    assert safe and len(safe) <= 120
    assert "/" not in safe and "\\" not in safe and safe not in (".", "..") and not safe.startswith(".")
    assert not any(unicodedata.category(ch)[0] == "C" for ch in safe)
    assert Path("/base", safe).resolve().parent == Path("/base").resolve()


def test_to_data_uri_round_trips_across_chunks(tmp_path: Path) -> None:
    data = os.urandom(7 * 2**20 + 5)  # several 3 MB read chunks plus a remainder
    path = tmp_path / "blob.png"
    path.write_bytes(data)
    uri = media.to_data_uri(path)
    head, _, body = uri.partition(",")
    assert head == "data:image/png;base64"
    assert base64.b64decode(body, validate=True) == data
    assert media.to_data_uri(path, content_type="application/x-test").startswith("data:application/x-test;base64,")


def test_to_data_uri_refuses_large_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(UploadError, match="the limit for a data URI is 1024 bytes"):
        media.to_data_uri(path, max_bytes=1024)
    with pytest.raises(UploadError, match="no such file"):
        media.to_data_uri(tmp_path / "missing.png")


def test_to_data_uri_default_limit_is_200_mb(tmp_path: Path) -> None:
    path = tmp_path / "huge.mp4"
    with path.open("wb") as handle:
        handle.truncate(200 * 2**20 + 1)  # sparse
    with pytest.raises(UploadError, match="200.0 MB"):
        media.to_data_uri(path)


def _jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA"])
def test_thumbnail_from_every_kind_of_source(mode: str, tmp_path: Path) -> None:
    image = Image.open(io.BytesIO(media.make_test_image(900, 300, "png", "thumb"))).convert(mode)
    path = tmp_path / "src.png"
    image.save(path)
    for src in (image, path, str(path), path.read_bytes()):
        thumb = _jpeg(media.thumbnail_jpeg(src, max_side=256))
        assert thumb.size == (256, 85)


def test_thumbnail_shrinks_until_it_fits_the_byte_budget() -> None:
    noise = Image.frombytes("RGB", (1024, 1024), os.urandom(1024 * 1024 * 3))
    data = media.thumbnail_jpeg(noise, max_side=1024, max_bytes=20_000)
    assert len(data) <= 20_000
    assert max(_jpeg(data).size) < 1024  # quality alone could not get there
    assert len(media.thumbnail_jpeg(noise, max_side=64)) <= 80_000


def test_make_test_image_formats_and_sizes() -> None:
    for fmt, expected in (("png", "PNG"), ("jpeg", "JPEG"), ("jpg", "JPEG"), ("webp", "WEBP")):
        image = Image.open(io.BytesIO(media.make_test_image(320, 200, fmt, "hello")))
        assert (image.format, image.size) == (expected, (320, 200))
    assert media.make_test_image(64, 64, "png", "a") != media.make_test_image(64, 64, "png", "b")
    assert media.make_test_image(64, 64, "png", "a") == media.make_test_image(64, 64, "png", "a")


def test_make_mp4_is_a_small_real_video(tmp_path: Path) -> None:
    pytest.importorskip("av")
    data = media.make_mp4(320, 240, 2, fps=4)
    assert data[4:8] == b"ftyp" and len(data) < 100_000
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    info = media.probe_video(path)
    assert (info.width, info.height, round(info.duration), info.size) == (320, 240, 2, len(data))


def test_pad_file_appends_one_free_box(tmp_path: Path) -> None:
    pytest.importorskip("av")
    path = media.write_mp4(tmp_path / "a.mp4", 160, 120, 1, fps=4)
    size = path.stat().st_size
    media.pad_file(path, size + 1000)
    with path.open("rb") as handle:
        handle.seek(size)
        assert struct.unpack(">I4s", handle.read(8)) == (1000, b"free")
    assert media.probe_video(path).width == 160
    huge = 2**32 + size + 2000
    media.pad_file(path, huge)  # needs the 64-bit box size; still sparse
    with path.open("rb") as handle:
        handle.seek(size + 1000)
        assert struct.unpack(">I4sQ", handle.read(16)) == (1, b"free", huge - size - 1000)
    assert path.stat().st_size == huge
    with pytest.raises(ValueError):
        media.pad_file(path, 10)


def test_probe_video_names_the_extra_when_pyav_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"pip install 'fal-notebook\[video\]'"):
        media.probe_video(tmp_path / "x.mp4")
    with pytest.raises(ImportError, match="video"):
        media.make_mp4(16, 16, 1)


def test_video_limits_from_a_catalogue_entry() -> None:
    limits = media.VideoLimits.from_dict({"field": "video_url", "formats": [".mp4"], "max_mb": 50})
    assert limits == media.VideoLimits(formats=(".mp4",), max_mb=50)
