"""fal-notebook commands that need no job store: key, catalogue, data URIs, emulator, usage and exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fal_notebook import media
from fal_notebook.cli import app as cli
from fal_notebook.errors import (
    AuthError,
    ConfigError,
    FalError,
    FalTimeoutError,
    JobCancelledError,
    JobFailedError,
    NotFoundError,
    RequestError,
    ResultExpiredError,
    TransportError,
    UnknownModelError,
    UploadError,
    UsageError,
    ValidationError,
)

KEY = "cli0key1:sup3r-s3cret-do-not-show"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A key nobody else uses and private folders; no TOOLS.md to fall back on."""
    monkeypatch.chdir(tmp_path)
    for name in ("FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_NOTEBOOK_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_TOOLS_MD", str(tmp_path / "no-TOOLS.md"))
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("FAL_NOTEBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAL_NOTEBOOK_OUTPUTS", str(tmp_path / "out"))
    return tmp_path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert KEY.split(":")[1] not in out + err
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fal-notebook")
    return lines[0]


def test_check_key_masks_the_key(env: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "check-key")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["key"] == "cli0…" and data["source"] == "FAL_KEY"
    assert "sup3r" not in out and "key1" not in out


def test_check_key_without_a_key_says_how(env: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("FAL_KEY")
    code, out, err = run(capsys, "check-key")
    assert code == 1 and out == ""
    assert "set FAL_KEY=key_id:key_secret" in one_error_line(err)


def test_models_is_json(env: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "models")
    data = json.loads(out)
    assert code == 0 and data["count"] == len(data["models"]) >= 5
    ids = {m["id"] for m in data["models"]}
    assert {"fal-ai/nano-banana-pro", "fal-ai/kling-video/o3/pro/video-to-video/edit"} <= ids
    kling = next(m for m in data["models"] if m["id"].endswith("pro/video-to-video/edit"))
    assert kling["required"] == ["prompt", "video_url"] and "video_url" in kling["file_fields"]


def test_models_filters(env: Path, capsys: pytest.CaptureFixture) -> None:
    _, out, _ = run(capsys, "models", "--category", "video-to-video")
    assert {m["category"] for m in json.loads(out)["models"]} == {"video-to-video"}
    _, out, _ = run(capsys, "models", "BANANA")
    assert all("nano-banana" in m["id"] for m in json.loads(out)["models"])


@pytest.mark.parametrize("name", ["model-info", "info"])
def test_model_info(env: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    code, out, _ = run(capsys, name, "nbp")
    data = json.loads(out)
    assert code == 0 and data["id"] == "fal-ai/nano-banana-pro"
    aspect = next(f for f in data["fields"] if f["name"] == "aspect_ratio")
    assert "16:9" in aspect["enum"] and aspect["default"] == "1:1"


def test_model_info_unknown_is_exit_3(env: Path, emulator, monkeypatch, capsys: pytest.CaptureFixture) -> None:
    # the original printed empty lists for the standard kling tier; now it is known, and nonsense is an error
    # (after asking fal for its schema: the emulator answers 404 like fal)
    monkeypatch.setenv("FAL_NOTEBOOK_ENDPOINT", emulator.url)
    code, out, _ = run(capsys, "model-info", "fal-ai/kling-video/o3/standard/video-to-video/edit")
    assert code == 0 and json.loads(out)["id"] == "fal-ai/kling-video/o3/standard/video-to-video/edit"
    code, out, err = run(capsys, "model-info", "fal-ai/no-such-model")
    assert code == 3 and out == ""
    assert "unknown model 'fal-ai/no-such-model'" in one_error_line(err)


def test_to_data_uri(env: Path, capsys: pytest.CaptureFixture) -> None:
    png = env / "tiny.png"
    png.write_bytes(media.make_test_image(8, 6, "png"))
    code, out, _ = run(capsys, "to-data-uri", str(png))
    assert code == 0 and out.startswith("data:image/png;base64,")
    assert base64.b64decode(out.strip().split(",", 1)[1]) == png.read_bytes()


def test_to_data_uri_missing_file_is_exit_4(env: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "to-data-uri", str(env / "nope.png"))
    assert code == 4 and out == "" and "no such file" in one_error_line(err)


def test_video_to_uri_accepts_a_good_video(env: Path, capsys: pytest.CaptureFixture) -> None:
    clip = media.write_mp4(env / "ok.mp4", 720, 720, 3.5)
    code, out, _ = run(capsys, "video-to-uri", str(clip))
    assert code == 0 and out.startswith("data:video/mp4;base64,")
    assert base64.b64decode(out.strip().split(",", 1)[1]) == clip.read_bytes()


@pytest.mark.parametrize(
    ("size", "seconds", "limit"),
    [((320, 240), 3.5, "each side 720–2160 px"), ((720, 720), 1.0, "the limit is 3–10 s")],
)
def test_video_to_uri_refuses_with_the_limit_named(env: Path, capsys: pytest.CaptureFixture,
                                                   size: tuple[int, int], seconds: float, limit: str) -> None:
    clip = media.write_mp4(env / "bad.mp4", *size, seconds)
    code, out, err = run(capsys, "video-to-uri", str(clip))
    assert code == 4 and out == ""
    assert limit in one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "a command is needed"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["status"], "the following arguments are required: [MODEL] ID"),
        (["submit", "nbp"], "the following arguments are required: JSON"),
        (["wait", "--timeout", "soon"], "invalid float value: 'soon'"),
        (["emulator", "--scenario", "chaos"], "unknown scenario 'chaos'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(env: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                          message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_help_lists_commands_and_exit_codes(env: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("check-key", "submit", "status", "result", "cancel", "wait", "poll", "list", "models",
                    "model-info", "to-data-uri", "video-to-uri", "emulator"):
        assert command in out
    assert "exit codes:" in out and "70  internal error" in out and "6   timed out" in out
    code, out, _ = run(capsys, "submit", "--help")
    assert code == 0 and "--no-validate" in out and "@file.json" in out


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("no key"), 1),
        (AuthError("refused", status_code=401), 1),
        (UsageError("bad"), 2),
        (UnknownModelError("x"), 3),
        (NotFoundError("x", status_code=404), 3),
        (ValidationError("m", []), 4),
        (UploadError("x"), 4),
        (JobFailedError("x"), 5),
        (ResultExpiredError("x"), 5),
        (RequestError("x", status_code=500), 5),
        (JobCancelledError("x"), 5),
        (FalTimeoutError("x"), 6),
        (TransportError("x"), 7),
        (FalError("x"), 70),
        (RuntimeError("x"), 70),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert cli.exit_code(error) == code


def test_unexpected_exceptions_are_one_line_exit_70(env: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(command: object) -> int:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setitem(cli.HANDLERS, "models", boom)
    code, out, err = run(capsys, "models")
    assert code == 70 and out == ""
    assert one_error_line(err) == "fal-notebook: internal error: ZeroDivisionError: division by zero; second line"


def test_ctrl_c_is_exit_130(env: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(command: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.HANDLERS, "models", interrupted)
    code, _, err = run(capsys, "models")
    assert code == 130 and one_error_line(err) == "fal-notebook: interrupted"


@pytest.mark.timeout(120)
def test_emulator_command_serves_until_interrupted(env: Path) -> None:
    import signal
    import subprocess
    import sys

    import httpx

    console = Path(sys.executable).with_name("fal-notebook")
    proc = subprocess.Popen([str(console), "emulator", "--port", "0", "--scenario", "fast"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fal emulator listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        reply = httpx.post(f"{url}/fal-ai/nano-banana-pro", json={"prompt": "x"},
                           headers={"Authorization": "Key a1b2c3d4:e5f6"}, timeout=10)
        assert reply.status_code == 200 and reply.json()["request_id"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # never leave a server behind
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_verbose_logging_never_shows_the_key(env: Path, capsys: pytest.CaptureFixture) -> None:
    for argv in (["-v", "check-key"], ["-v", "models"], ["-v", "status", "nothing-here"]):
        run(capsys, *argv)  # run() asserts the secret is in neither stream


@pytest.mark.parametrize("key", ["justonelongsecretwithoutacolon", "idonly9:", ":secretonly9", "ab12:cd34:ef56"])
def test_check_key_checks_the_id_secret_shape(env: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture, key: str) -> None:
    monkeypatch.setenv("FAL_KEY", key)
    code, out, err = run(capsys, "check-key")
    assert code == 1 and json.loads(out)["well_formed"] is False
    assert "not of fal's form key_id:key_secret" in one_error_line(err) and key not in out + err


def test_submit_without_a_key_fails_before_any_record(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("FAL_KEY")
    code, out, err = run(capsys, "submit", "nano-banana-pro", '{"prompt": "a cat"}')
    assert code == 1 and out == ""  # no JSON record printed before the error
    assert "No fal API key: set FAL_KEY=key_id:key_secret" in one_error_line(err)
    assert "https://fal.ai/dashboard/keys" in err
    from fal_notebook.store.db import JobStore

    assert JobStore(env / "home" / "jobs.sqlite3").list() == []  # nothing stored that could only fail
