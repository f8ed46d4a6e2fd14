"""Groups as one picture, comparison and lineage drawing, and settings embedded in exported files: plain values in,
strings and bytes out, no emulator needed."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pytest
from PIL import Image

from fal_notebook.media import make_test_image
from fal_notebook.views.compare import compare_data, compare_html
from fal_notebook.views.export import embed_settings, read_settings
from fal_notebook.views.group import GROUP_BYTES, TILE_BYTES, group_data, group_html, group_text, tile_budget
from fal_notebook.views.lineage import lineage_html, lineage_nodes, lineage_text

XSS = "<script>alert(1)</script>"


@dataclass
class Fake:
    id: str
    arguments: dict
    model: str = "fal-ai/flux/dev"
    state: str = "COMPLETED"
    files: list = field(default_factory=list)
    error: object = None
    seed: int | None = None


def test_three_axes_are_one_grid_per_page():
    jobs = [Fake(f"j{a}{b}{c}", {"prompt": "p", "a": a, "b": b, "c": c}) for c in (1, 2) for a in (1, 2, 3)
            for b in ("x", "y")]
    data = group_data(jobs, axes=("a", "b", "c"))
    html = group_html(data)
    assert html.count('class="fal-page"') == 2 and html.count('class="fal-grid"') == 2
    assert html.count('class="fal-tile"') == 12
    assert re.findall(r"<summary[^>]*>([^<]*)<", html) == ["c=1", "c=2"]
    first_page = html.split('class="fal-page"')[1]
    assert re.findall(r'class="fal-row"[^>]*>([^<]*)<', first_page) == ["a=1", "a=2", "a=3"]
    assert 'data-fal-job="j1x1"' in first_page and 'data-fal-job="j1x2"' not in first_page
    assert "[a=3, b=y, c=2] j3y2 COMPLETED" in group_text(data)


def test_one_axis_is_a_strip_and_identical_requests_are_numbered():
    strip = group_html(group_data([Fake("a", {"seed": 1}), Fake("b", {"seed": 2})]))
    assert 'class="fal-strip"' in strip and "seed=1" in strip and "seed=2" in strip
    twins = group_html(group_data([Fake("a", {"prompt": "p"}), Fake("b", {"prompt": "p"})]))
    assert "#1" in twins and "#2" in twins


def test_grid_escapes_everything_user_visible():
    jobs = [Fake("a", {"prompt": XSS, "style": XSS}), Fake("b", {"prompt": XSS, "style": "plain"},
                                                                  state="FAILED", error=XSS)]
    html = group_html(group_data(jobs))
    assert "<script>" not in html and "&lt;script&gt;" in html
    comparison = compare_html(compare_data(jobs))
    assert "<script>" not in comparison and compare_data(jobs).differing == ("style",)


def test_lineage_draws_ancestors_above_and_children_below():
    a, b, c, d = (Fake(x, {"prompt": XSS if x == "b" else x}) for x in "abcd")
    links = {("c", True): [(b, "input")], ("b", True): [(a, "input")], ("c", False): [(d, "rerun")]}
    nodes = lineage_nodes(c, lambda job, up: links.get((job.id, up), []))
    assert [(n.job_id, n.depth, n.kind) for n in nodes] == [("a", -2, "input"), ("b", -1, "input"), ("c", 0, ""),
                                                            ("d", 1, "rerun")]
    assert "← this job" in lineage_text(nodes).splitlines()[2]
    assert "<script>" not in lineage_html(nodes)


SETTINGS = {"model": "fal-ai/flux/dev", "prompt": "a fox — über ☃ " + XSS, "seed": 7, "image_size": {"width": 8}}


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_settings_embedded_without_touching_the_picture(tmp_path, fmt):
    data = make_test_image(64, 48, fmt, "x")
    embedded = embed_settings(data, SETTINGS)
    assert embedded is not None and embedded != data
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(embedded)
    assert read_settings(path) == SETTINGS
    with Image.open(io.BytesIO(embedded)) as after, Image.open(io.BytesIO(data)) as before:
        assert after.size == before.size and after.tobytes() == before.tobytes()
        if fmt == "webp":
            assert after.info.get("xmp")  # Pillow finds the XMP chunk: the VP8X header says it is there
        if fmt == "png":
            assert "fal_notebook" in after.info


def test_extended_webp_keeps_its_header_and_alpha(tmp_path):
    image = Image.new("RGBA", (20, 10), (255, 0, 0, 128))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", lossless=True, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")
    embedded = embed_settings(buffer.getvalue(), SETTINGS)
    path = tmp_path / "a.webp"
    path.write_bytes(embedded)
    assert read_settings(path) == SETTINGS
    with Image.open(path) as after:
        assert after.mode == "RGBA" and after.getpixel((3, 3)) == (255, 0, 0, 128)


def test_video_has_no_place_inside_so_a_sidecar_carries_it(tmp_path):
    assert embed_settings(b"\x00\x00\x00\x18ftypmp42", SETTINGS) is None
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    assert read_settings(video) is None
    (tmp_path / "clip.mp4.json").write_text('{"seed": 3}')
    assert read_settings(video) == {"seed": 3}


def test_a_large_group_shares_one_thumbnail_budget(tmp_path):
    """Up to 4×4 each tile gets a full thumbnail; a 120-job group's thumbnails together stay within
    GROUP_BYTES (each redraw of a live group sends them all), however detailed the images."""
    import base64
    import os

    assert tile_budget(16) == (256, TILE_BYTES)
    jobs = []
    for n in range(120):
        path = tmp_path / f"noise{n}.png"
        Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(path)  # noise: JPEG cannot shrink it
        jobs.append(Fake(f"job{n}", {"prompt": "p", "seed": n}, files=[path]))
    html = group_html(group_data(jobs))
    thumbs = [base64.b64decode(b) for b in re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", html)]
    side, each = tile_budget(120)
    assert len(thumbs) == 120 and all(len(t) <= each for t in thumbs)
    assert sum(len(t) for t in thumbs) <= GROUP_BYTES
    assert all(max(Image.open(io.BytesIO(t)).size) <= side for t in thumbs)
