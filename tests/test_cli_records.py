"""fal-notebook job records (one shape everywhere, fal's URLs included, no data URIs), id resolution, and
the error paths of the job commands: one stderr line and the documented exit code each."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path

import pytest
from test_cli_jobs import ok, one_line, run, stored

from fal_notebook.cli import app as cli
from fal_notebook.runtime import JobManager
from fal_notebook.store import JobRecord, JobState, JobStore, new_job_id

RECORD_KEYS = {
    "id", "request_id", "model", "state", "status", "queue_position", "status_url", "response_url", "cancel_url",
    "created_at", "submitted_at", "started_at", "finished_at", "elapsed", "inference_time", "files", "error",
    "origin", "tags", "arguments",
}


def fails(capsys: pytest.CaptureFixture, code: int, *argv: str) -> tuple[str, str]:
    """Run a command that must fail with ``code``; returns (stdout, its one stderr line)."""
    result, out, err = run(capsys, *argv)
    assert result == code, (result, err)
    line = one_line(err)
    assert line.startswith("fal-notebook")
    return out, line


def put_row(settings, **fields) -> JobRecord:
    """A row written straight into the CLI's store (as another process would have left it)."""
    store = JobStore(settings.store_path)
    try:
        return store.insert(JobRecord(id=fields.pop("id", None) or new_job_id(), origin="cli", **fields))
    finally:
        store.close()


def test_every_command_prints_the_same_record_with_fals_urls(fal_env, emulator, emu_http, capsys) -> None:
    record = ok(capsys, "submit", "nbp", '{"prompt":"a red fox"}', "--wait")
    assert set(record) == RECORD_KEYS
    request_id = record["request_id"]
    assert record["state"] == record["status"] == "COMPLETED"
    for name in ("status_url", "response_url", "cancel_url"):
        assert record[name].startswith(emulator.url) and request_id in record[name]
    assert emu_http.get(record["status_url"]).json()["status"] == "COMPLETED"  # the URLs are fal's, usable as is
    times = [datetime.fromisoformat(record[k]) for k in ("created_at", "submitted_at", "started_at", "finished_at")]
    assert all(t.tzinfo is not None for t in times) and times == sorted(times)
    row = stored(fal_env)[record["id"]]
    assert (row.status_url, row.response_url, row.cancel_url) == (
        record["status_url"], record["response_url"], record["cancel_url"])

    result = ok(capsys, "result", record["id"])
    assert set(result) == RECORD_KEYS | {"result"} and result["files"] == record["files"]
    assert set(ok(capsys, "status", record["id"])) == RECORD_KEYS | {"fal"}
    assert set(ok(capsys, "wait", record["id"])["jobs"][0]) == RECORD_KEYS
    assert set(ok(capsys, "list", "--all")["jobs"][0]) == RECORD_KEYS
    assert set(ok(capsys, "cancel", record["id"])["cancelled"][0]) == RECORD_KEYS | {"cancel"}


def test_job_urls_come_from_the_stored_record(fal_env, emulator, wait_for) -> None:
    emulator.hold(True)
    manager = JobManager(fal_env, origin="t", legacy_file=False, auto_resume=False)
    try:
        job = manager.submit("nbp", {"prompt": "x"})
        wait_for(lambda: job.request_id)
        unsent = manager.store.insert(JobRecord(id=new_job_id(), endpoint="fal-ai/nano-banana-pro", origin="u"))
        assert manager.get(unsent.id).urls == {"status_url": None, "response_url": None, "cancel_url": None}
    finally:
        manager.close()
    fresh = JobManager(fal_env, origin="t", legacy_file=False, auto_resume=False)
    try:
        again = fresh.get(job.id)  # read back from the store by another manager
        row = fresh.store.get(job.id)
        assert again.urls == {"status_url": row.status_url, "response_url": row.response_url,
                              "cancel_url": row.cancel_url}
        assert again.urls["status_url"] == f"{emulator.url}/fal-ai/nano-banana-pro/requests/{row.request_id}/status"
        assert again.submitted_at == row.submitted_at and row.submitted_at is not None
    finally:
        fresh.close()


def test_status_result_cancel_take_a_prefix_or_fals_request_id(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    first = ok(capsys, "submit", "nbp", '{"prompt":"a"}')
    second = ok(capsys, "submit", "nbp", '{"prompt":"b"}')
    assert ok(capsys, "status", first["id"][:5])["id"] == first["id"]
    assert ok(capsys, "status", first["request_id"])["id"] == first["id"]
    assert ok(capsys, "status", first["request_id"][:13])["id"] == first["id"]
    cancelled = ok(capsys, "cancel", second["request_id"])["cancelled"]
    assert [(c["id"], c["state"]) for c in cancelled] == [(second["id"], "CANCELLED")]
    emulator.release()
    result = ok(capsys, "result", first["id"][:4], "--timeout", "30")
    assert result["id"] == first["id"] and result["result"]["images"] and Path(result["files"][0]).is_file()
    assert ok(capsys, "result", first["request_id"][:10])["result"] == result["result"]


def test_an_ambiguous_prefix_is_exit_3(fal_env, emulator, capsys) -> None:
    for n in (1, 2):
        put_row(fal_env, id=f"abc{n}00000000", endpoint="fal-ai/nano-banana-pro", state=JobState.COMPLETED)
    for command in ("status", "result", "cancel", "wait"):
        out, line = fails(capsys, 3, command, "abc")
        assert out == "" and "'abc' matches several jobs (abc100000000, abc200000000" in line
    assert ok(capsys, "status", "abc2")["id"] == "abc200000000"


@pytest.mark.parametrize("command", ["status", "result", "cancel", "wait"])
def test_an_unknown_id_is_exit_3(fal_env, emulator, capsys, command) -> None:
    out, line = fails(capsys, 3, command, "feedbeef")
    assert out == "" and "no job 'feedbeef'" in line and "fal-notebook list --all" in line


def test_a_request_fal_does_not_know_is_exit_3(fal_env, emulator, capsys) -> None:
    out, line = fails(capsys, 3, "status", "nbp", "00000000-0000-0000-0000-000000000000")
    assert out == "" and "00000000-0000-0000-0000-000000000000" in line, line


def test_result_errors(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    held = ok(capsys, "submit", "nbp", '{"prompt":"held"}')["id"]
    out, line = fails(capsys, 6, "result", held, "--timeout", "0.2")
    assert out == "" and f"job {held} did not finish within 0.2 s" in line
    ok(capsys, "cancel", held)
    out, line = fails(capsys, 5, "result", held)
    assert out == "" and line.endswith("was cancelled")


def test_several_failures_are_named_on_one_line(fal_env, emulator, capsys) -> None:
    emulator.configure(scenario="error")
    emulator.hold(True)  # else the second submit, resuming the first job, may see it fail before `wait` runs
    ids = [json.loads(run(capsys, "submit", "nbp", f'{{"prompt":"{n}"}}')[1])["id"] for n in range(2)]
    emulator.release()
    out, line = fails(capsys, 5, "wait", "--timeout", "30")
    assert [j["state"] for j in json.loads(out)["jobs"]] == ["FAILED", "FAILED"]
    assert line.startswith("fal-notebook: 2 jobs did not complete: job ") and all(i in line for i in ids)
    out, line = fails(capsys, 5, "result", ids[0])
    assert out == "" and line.startswith("fal-notebook: ")


def test_a_refused_key_is_exit_1(fal_env, emulator, capsys) -> None:
    emulator.configure(valid_keys=("someone-else",))
    out, line = fails(capsys, 1, "submit", "nbp", '{"prompt":"x"}')
    assert json.loads(out)["error"]["type"] == "AuthError"
    out, line = fails(capsys, 1, "status", "nbp", "00000000-0000-0000-0000-000000000000")
    assert out == ""


def test_an_unreachable_fal_is_exit_7(fal_env, emulator, capsys, monkeypatch) -> None:
    import socket

    from fal_notebook.client import session as _session
    from fal_notebook.client.retry import RetryPolicy

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FAL_NOTEBOOK_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(_session, "RetryPolicy", functools.partial(RetryPolicy, max_attempts=2, base_delay=0.01))
    out, line = fails(capsys, 7, "status", "nbp", "00000000-0000-0000-0000-000000000000")
    assert out == ""


def test_list_with_an_unknown_state_is_exit_2(fal_env, emulator, capsys) -> None:
    out, line = fails(capsys, 2, "list", "--state", "DONE")
    assert out == "" and "unknown state 'DONE'; choose from SUBMITTING, IN_QUEUE" in line
    assert ok(capsys, "list", "--state", "completed", "--all")["count"] == 0


def test_scrub_cuts_every_data_uri_and_keeps_the_rest() -> None:
    payload = "iVBORw0KGgo" + "A" * 5000
    uri = f"data:image/png;base64,{payload}"
    shown = cli.scrub({"a": [uri, {"b": f"bad url {uri} in text"}], "n": 3, "short": "data:,hi",
                       "url": "https://cdn/x.png"})
    text = json.dumps(shown)
    assert payload[:40] not in text and len(text) < 300
    assert shown["a"][0] == f"data:image/png;base64,…({len(uri)} characters)"
    assert shown["a"][1]["b"].startswith("bad url data:image/png;base64,…(") and shown["a"][1]["b"].endswith("in text")
    assert (shown["n"], shown["short"], shown["url"]) == (3, "data:,hi", "https://cdn/x.png")


def test_list_never_dumps_data_uris_of_legacy_entries(fal_env, emulator, emu_http, capsys, monkeypatch,
                                                      tmp_path) -> None:
    from fal_notebook import media

    png = tmp_path / "ref.png"
    png.write_bytes(media.make_test_image(96, 96, "png", "legacy"))
    uri = media.to_data_uri(png)
    request_id = emu_http.post("/fal-ai/nano-banana-pro/edit",
                               json={"prompt": "edit", "image_urls": [uri]}).json()["request_id"]
    done = {"request_id": "11111111-2222-3333-4444-555555555555", "model_id": "fal-ai/nano-banana-pro",
            "input": {"prompt": "old"}, "status": "COMPLETED", "submitted_at": "2026-01-02T03:04:05",
            "result": {"images": [{"url": uri, "content_type": "image/png"}]}}  # sync_mode: a data URI result
    pending = {"request_id": request_id, "model_id": "fal-ai/nano-banana-pro/edit", "status": "IN_QUEUE",
               "input": {"prompt": "edit", "image_urls": [uri]}, "submitted_at": "2026-01-02T03:04:06"}
    legacy = tmp_path / "fal-pending.json"
    legacy.write_text(json.dumps({"requests": [done, pending]}))
    monkeypatch.setenv("FAL_PENDING_FILE", str(legacy))

    code, out, _ = run(capsys, "list", "--all")
    data = json.loads(out)
    assert code == 0 and data["count"] == 2 and {tuple(j["tags"]) for j in data["jobs"]} == {("legacy",)}
    assert uri[22:80] not in out and len(out) < 6000
    imported = next(j for j in data["jobs"] if j["request_id"] == request_id)
    assert imported["status_url"].endswith(f"/fal-ai/nano-banana-pro/requests/{request_id}/status")
    (ref,) = imported["arguments"]["image_urls"]
    assert Path(ref["path"]).read_bytes() == png.read_bytes()  # the bytes are kept beside the store

    result = ok(capsys, "result", request_id[:8], "--timeout", "30")  # follows the legacy job to the end
    assert result["state"] == "COMPLETED" and Path(result["files"][0]).is_file()
    code, out, _ = run(capsys, "result", "11111111")
    assert code == 0 and uri[22:80] not in out and "characters)" in out
