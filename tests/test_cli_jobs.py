"""fal-notebook job commands against the emulator: submit, status, result, cancel, wait, poll, list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fal_notebook.cli import app as cli
from fal_notebook.store import JobStore

SECRET = "test-secret"  # the secret half of conftest's FAL_KEY
CONSOLE = Path(sys.executable).with_name("fal-notebook")


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and SECRET not in out + err
    return code, out, err


def ok(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def stored(settings) -> dict:
    store = JobStore(settings.store_path)
    try:
        return {row.id: row for row in store.list()}
    finally:
        store.close()


def test_submit_wait_prints_request_id_and_a_local_image(fal_env, emulator, capsys) -> None:
    record = ok(capsys, "submit", "fal-ai/nano-banana-pro", '{"prompt":"a red fox","aspect_ratio":"16:9"}', "--wait")
    assert record["status"] == "COMPLETED" and record["model"] == "fal-ai/nano-banana-pro"
    assert record["request_id"] and record["origin"] == "cli" and record["error"] is None
    (path,) = record["files"]
    assert Path(path).is_absolute() and Path(path).is_relative_to(fal_env.outputs.resolve())
    with Image.open(path) as image:
        width, height = image.size
    assert width > height  # 16:9 was sent and honoured
    posts = [r for r in emulator.requests if r.method == "POST" and r.path.endswith("/nano-banana-pro")]
    assert len(posts) == 1 and posts[0].authorized
    row = stored(fal_env)[record["id"]]
    assert row.origin == "cli" and row.state.value == "COMPLETED" and row.request_id == record["request_id"]


def test_submit_without_wait_returns_once_fal_accepted(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    record = ok(capsys, "submit", "nbp", '{"prompt":"a fox"}', "--tag", "t1")
    assert record["status"] == "IN_QUEUE" and record["request_id"] and record["tags"] == ["t1"]
    row = stored(fal_env)[record["id"]]
    assert row.request_id == record["request_id"] and row.owner is None  # the lease was released at exit


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_submit_reads_json_from_a_file_or_stdin(fal_env, emulator, capsys, monkeypatch, tmp_path, source) -> None:
    import io

    body = '{"prompt": "a fox from a file"}'
    if source == "file":
        (tmp_path / "in.json").write_text(body)
        arg = f"@{tmp_path / 'in.json'}"
    else:
        monkeypatch.setattr(sys, "stdin", io.StringIO(body))
        arg = "-"
    record = ok(capsys, "submit", "nbp", arg, "--wait")
    seed = record["arguments"].pop("seed")  # the client picks a seed for a model that takes one
    assert isinstance(seed, int) and record["arguments"] == {"prompt": "a fox from a file"}
    assert record["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("arg", "code", "message"),
    [
        ("{bad", 2, "the JSON argument is not valid JSON"),
        ('["a list"]', 2, "must be a JSON object"),
        ("@/no/such/file.json", 2, "cannot read /no/such/file.json"),
        ('{"prompt": 1, "aspect_ratio": "7:7"}', 4, "2 problems with the input for fal-ai/nano-banana-pro"),
    ],
)
def test_submit_bad_input_is_one_line_and_sends_nothing(fal_env, emulator, capsys, arg, code, message) -> None:
    result, out, err = run(capsys, "submit", "nbp", arg)
    assert (result, out) == (code, "")
    assert message in one_line(err)
    assert not [r for r in emulator.requests if r.method == "POST"]


def test_submit_unknown_model_is_exit_3(fal_env, emulator, capsys) -> None:
    code, _, err = run(capsys, "submit", "nope-model", '{"prompt": "x"}')
    assert code == 3 and "unknown model" in one_line(err)


def test_submit_no_validate_sends_as_given(fal_env, emulator, capsys) -> None:
    record = ok(capsys, "submit", "nbp", '{"prompt": "x", "aspect_ratio": "1:1", "num_images": 2}',
                "--no-validate", "--wait")
    assert record["status"] == "COMPLETED" and len(record["files"]) == 2


def test_failed_request_is_exit_5_with_fal_detail(fal_env, emulator, capsys) -> None:
    emulator.configure(scenario="error")
    code, out, err = run(capsys, "submit", "nbp", '{"prompt":"x"}', "--wait")
    record = json.loads(out)
    assert code == 5 and record["status"] == "FAILED" and record["error"]["type"] == "JobFailedError"
    assert one_line(err).startswith(f"fal-notebook: job {record['id']} FAILED:")


def test_wait_timeout_prints_state_and_exits_6(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    job_id = ok(capsys, "submit", "nbp", '{"prompt":"x"}')["id"]
    code, out, err = run(capsys, "wait", job_id, "--timeout", "0.3")
    assert code == 6 and "did not finish within 0.3 s" in one_line(err)
    assert json.loads(out)["jobs"][0]["status"] == "IN_QUEUE"
    emulator.release()
    data = ok(capsys, "wait", job_id[:6], "--timeout", "30")
    assert data["count"] == 1 and data["jobs"][0]["status"] == "COMPLETED"
    assert Path(data["jobs"][0]["files"][0]).exists()


def test_wait_without_ids_waits_for_this_origins_unfinished(fal_env, emulator, capsys) -> None:
    emulator.hold(True)  # else a later submit, resuming the earlier jobs, may finish them before `wait` runs
    ids = {ok(capsys, "submit", "nbp", f'{{"prompt":"fox {n}"}}')["id"] for n in range(3)}
    emulator.release()
    data = ok(capsys, "wait", "--timeout", "30")
    assert {j["id"] for j in data["jobs"]} == ids and {j["status"] for j in data["jobs"]} == {"COMPLETED"}
    assert ok(capsys, "list")["count"] == 0  # nothing unfinished is left
    assert ok(capsys, "list", "--all")["count"] == 3  # and the history keeps all of them


def test_status_and_result(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    record = ok(capsys, "submit", "nbp", '{"prompt":"x"}')
    status = ok(capsys, "status", record["id"])
    assert status["status"] == "IN_QUEUE" and status["fal"]["status"] == "IN_QUEUE"
    by_request = ok(capsys, "status", "fal-ai/nano-banana-pro", record["request_id"])  # [MODEL] ID form
    assert by_request["id"] == record["id"]
    emulator.release()
    result = ok(capsys, "result", record["request_id"], "--timeout", "30")
    assert result["status"] == "COMPLETED" and result["result"]["images"][0]["url"].startswith("http")
    assert Path(result["files"][0]).exists()
    done = ok(capsys, "status", record["id"])
    assert done["status"] == "COMPLETED" and done["fal"] is None  # finished jobs are not asked again


def test_status_of_a_request_the_store_does_not_know(fal_env, emulator, emu_http, capsys) -> None:
    request_id = emu_http.post("/fal-ai/nano-banana-pro", json={"prompt": "elsewhere"}).json()["request_id"]
    data = ok(capsys, "status", "nano-banana-pro", request_id)
    assert data["request_id"] == request_id and data["fal"]["status"] in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    code, _, err = run(capsys, "status", "no-such-job")
    assert code == 3 and "no job 'no-such-job'" in one_line(err)


def test_cancel(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    first = ok(capsys, "submit", "nbp", '{"prompt":"a"}')["id"]
    second = ok(capsys, "submit", "nbp", '{"prompt":"b"}')["id"]
    data = ok(capsys, "cancel", first)
    assert data["cancelled"][0]["cancel"] == "CANCELLATION_REQUESTED"
    assert data["cancelled"][0]["status"] == "CANCELLED"
    data = ok(capsys, "cancel", "all")
    assert [c["id"] for c in data["cancelled"]] == [second]
    rows = stored(fal_env)
    assert {rows[first].state.value, rows[second].state.value} == {"CANCELLED"}
    assert len([r for r in emulator.requests if r.method == "PUT" and r.path.endswith("/cancel")]) == 2


def status_url(emulator, request_id: str) -> str:
    return f"{emulator.url}/fal-ai/nano-banana-pro/requests/{request_id}/status"


def test_poll_one_pass_finishes_completed_jobs_and_keeps_history(fal_env, emulator, capsys, completed) -> None:
    emulator.hold(True)
    waiting = ok(capsys, "submit", "nbp", '{"prompt":"held"}')
    done = ok(capsys, "submit", "nbp", '{"prompt":"free"}')  # held too: else a submit could fetch a result
    emulator.release()
    for record in (waiting, done):  # both finished on fal's side; nobody fetched their results yet
        completed(status_url(emulator, record["request_id"]))
        assert stored(fal_env)[record["id"]].state.value == "IN_QUEUE"
    waiting, done = waiting["id"], done["id"]
    data = ok(capsys, "poll")
    finished = {c["id"]: c for c in data["changed"] if c["status"] == "COMPLETED"}
    assert set(finished) == {waiting, done} and data["still_pending"] == []
    assert all(Path(c["files"][0]).exists() for c in finished.values())
    assert ok(capsys, "poll") == {"changed": [], "count": 0, "still_pending": []}
    rows = stored(fal_env)
    assert {rows[waiting].result_fetches, rows[done].result_fetches} == {1}  # each result fetched once
    assert ok(capsys, "list", "--all")["count"] == 2


def test_poll_reports_what_fal_says_about_jobs_still_queued(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    job_id = ok(capsys, "submit", "nbp", '{"prompt":"held"}')["id"]
    data = ok(capsys, "poll")
    assert data["still_pending"] == [job_id]
    emulator.release()
    code, out, err = run(capsys, "poll", "--watch")
    first, last = (json.loads(line) for line in out.splitlines())  # JSON Lines: the job, then the summary
    assert code == 0 and err == ""
    assert first["id"] == job_id and first["state"] == "COMPLETED" and Path(first["files"][0]).is_file()
    assert last == {"summary": True, "count": 1, "states": {"COMPLETED": 1}, "still_pending": []}


def test_list_never_dumps_data_uris(fal_env, emulator, capsys, tmp_path) -> None:
    from fal_notebook import media

    png = tmp_path / "in.png"
    png.write_bytes(media.make_test_image(64, 64, "png"))
    uri = media.to_data_uri(png)
    emulator.hold(True)
    ok(capsys, "submit", "nano-banana-pro/edit", json.dumps({"prompt": "edit it", "image_urls": [uri]}))
    code, out, _ = run(capsys, "list")
    assert code == 0 and json.loads(out)["count"] == 1
    assert uri[:80] not in out and len(out) < 4000


def test_console_script_end_to_end(fal_env, emulator, tmp_path) -> None:
    """The installed ``fal-notebook`` script, in a fresh process from an unrelated folder."""
    env = dict(os.environ)
    proc = subprocess.run([str(CONSOLE), "submit", "fal-ai/nano-banana-pro", '{"prompt":"a red fox"}', "--wait"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and SECRET not in proc.stdout + proc.stderr
    record = json.loads(proc.stdout)
    assert record["request_id"] and Path(record["files"][0]).is_file()
    bad = subprocess.run([str(CONSOLE), "submit", "nbp", "{oops"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_python_dash_m_is_the_cli(fal_env, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fal_notebook", "check-key"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["key"] == "test…"
    assert SECRET not in proc.stdout + proc.stderr


def test_info_and_submit_of_an_unbundled_model_use_its_fetched_schema(fal_env, emulator, capsys, monkeypatch):
    from fal_notebook import catalog

    monkeypatch.setattr(catalog, "_registered", {})  # nothing registered by an earlier test
    info = ok(capsys, "info", "fal-ai/fast-sdxl")
    steps = next(f for f in info["fields"] if f["name"] == "num_inference_steps")
    assert info["id"] == "fal-ai/fast-sdxl" and steps["range"] == "1–65"
    code, out, err = run(capsys, "submit", "fal-ai/fast-sdxl", '{"prompt": "x", "num_inference_steps": 500}')
    assert code == 4 and out == "" and "num_inference_steps" in one_line(err)
    record = ok(capsys, "submit", "fal-ai/fast-sdxl", '{"prompt": "x", "num_inference_steps": 12}', "--wait")
    assert record["state"] == "COMPLETED" and record["files"]
    fetches = [r for r in emulator.requests if r.path.endswith("/openapi.json")
               or (r.path == "/v1/models" and "expand=openapi-3.0" in r.query)]
    assert len(fetches) == 1  # fetched once (from fal's model list), cached
