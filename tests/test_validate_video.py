"""Local videos for Kling O3 edit: real MP4s made here with PyAV, probed, and held to fal's limits."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fal_notebook import media
from fal_notebook.catalog.validate import validate
from fal_notebook.errors import ValidationError

pytest.importorskip("av")

MODELS = ["fal-ai/kling-video/o3/standard/video-to-video/edit", "fal-ai/kling-video/o3/pro/video-to-video/edit"]
LIMIT = 200 * 2**20


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real videos (8 fps, ultrafast x264); the oversize one is padded sparsely, never written out."""
    root = tmp_path_factory.mktemp("clips")
    made = {
        "valid": media.write_mp4(root / "valid.mp4", 1280, 720, 5),
        "short": media.write_mp4(root / "short.mp4", 1280, 720, 2),
        "small": media.write_mp4(root / "small.mp4", 640, 480, 5),
        "short_small": media.write_mp4(root / "short_small.mp4", 640, 480, 2),
        "edge": media.write_mp4(root / "edge.mp4", 720, 720, 3),
        "wide": media.write_mp4(root / "wide.mp4", 2176, 720, 4),
        "big": media.pad_file(media.write_mp4(root / "big.mp4", 1280, 720, 5), LIMIT + 1),
    }
    made["mov"] = Path(shutil.copy(made["valid"], root / "valid.mov"))
    made["avi"] = Path(shutil.copy(made["valid"], root / "valid.avi"))
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 100)
    made["broken"] = root / "broken.mp4"
    return made


def _problems(model: str, clip: Path, **kwargs) -> list:
    with pytest.raises(ValidationError) as caught:
        validate(model, {"prompt": "@Video1 in snow", "video_url": str(clip)}, **kwargs)
    return caught.value.problems


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", ["valid", "mov", "edge"])
def test_videos_within_the_limits_pass_and_are_uploaded(model: str, name: str, clips: dict[str, Path]) -> None:
    result = validate(model, {"prompt": "@Video1 in snow", "video_url": str(clips[name])})
    assert result.uploads == [("video_url", clips[name])]
    assert result.warnings == []


def test_the_test_clips_are_what_they_claim(clips: dict[str, Path]) -> None:
    info = media.probe_video(clips["valid"])
    assert (round(info.duration), info.width, info.height, info.container) == (5, 1280, 720, "mp4")
    assert media.probe_video(clips["mov"]).container == "mov"
    big = clips["big"]
    assert big.stat().st_size == LIMIT + 1
    assert (media.probe_video(big).width, round(media.probe_video(big).duration)) == (1280, 5)  # still a valid MP4
    assert big.stat().st_blocks * 512 < 20 * 2**20  # sparse: the padding was never written


@pytest.mark.parametrize("model", MODELS)
def test_a_two_second_video_is_refused_naming_the_limit(model: str, clips: dict[str, Path]) -> None:
    [problem] = _problems(model, clips["short"])
    assert problem.field == "video_url"
    assert problem.message == "the video is 2.0 s long; the limit is 3–10 s" and problem.allowed == "3–10 s"


@pytest.mark.parametrize("model", MODELS)
def test_a_640x480_video_is_refused_naming_the_limit(model: str, clips: dict[str, Path]) -> None:
    [problem] = _problems(model, clips["small"])
    assert problem.message == "the video is 640×480 px; each side must be 720–2160 px"
    assert problem.allowed == "each side 720–2160 px"
    [problem] = _problems(model, clips["wide"])
    assert "2176×720" in problem.message


@pytest.mark.parametrize("model", MODELS)
def test_a_video_over_200_mb_is_refused_before_probing(model: str, clips: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(path: object) -> None:
        raise AssertionError("the size check must not need a probe")

    monkeypatch.setattr(media, "probe_video", no_probe)
    [problem] = _problems(model, clips["big"])
    assert problem.message == "the file is 209,715,201 bytes; the limit is 200 MB" and problem.allowed == "at most 200 MB"


def test_every_video_problem_is_listed_at_once(clips: dict[str, Path]) -> None:
    problems = _problems(MODELS[0], clips["short_small"])
    assert [p.allowed for p in problems] == ["3–10 s", "each side 720–2160 px"]


def test_containers_other_than_mp4_and_mov_are_refused(clips: dict[str, Path]) -> None:
    [problem] = _problems(MODELS[0], clips["avi"])
    assert problem.message == "container '.avi' is not accepted" and problem.allowed == ".mp4, .mov"


def test_a_file_that_is_not_a_video(clips: dict[str, Path]) -> None:
    [problem] = _problems(MODELS[0], clips["broken"])
    assert problem.field == "video_url" and "could not be read as a video" in problem.message


def test_without_pyav_the_check_is_skipped_with_a_warning(clips: dict[str, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # "import av" now raises ImportError
    result = validate(MODELS[0], {"prompt": "@Video1", "video_url": str(clips["short"])})
    [warning] = result.warnings
    assert "not checked" in warning and "pip install 'fal-notebook[video]'" in warning
    assert result.uploads == [("video_url", clips["short"])]
    [problem] = _problems(MODELS[0], clips["big"])  # the size needs no PyAV
    assert "200 MB" in problem.message
    with pytest.raises(ImportError, match=r"fal-notebook\[video\]"):
        media.probe_video(clips["valid"])


def test_probing_can_be_turned_off(clips: dict[str, Path]) -> None:
    assert validate(MODELS[0], {"prompt": "@Video1", "video_url": str(clips["short"])}, probe_videos=False).uploads
    assert _problems(MODELS[0], clips["big"], probe_videos=False)


def test_video_data_uris(clips: dict[str, Path]) -> None:
    uri = media.video_to_data_uri(clips["valid"])
    assert uri.startswith("data:video/mp4;base64,")
    assert validate(MODELS[0], {"prompt": "@Video1", "video_url": uri}).uploads == []
    for name, limit in (("short", "3–10 s"), ("small", "720–2160 px"), ("big", "200 MB"), ("avi", ".mp4, .mov")):
        with pytest.raises(ValidationError) as caught:
            media.video_to_data_uri(clips[name])
        assert limit in str(caught.value)
