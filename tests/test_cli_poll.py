"""fal-notebook poll: bounded waits (--timeout, exit 6) and --watch as JSON Lines, Ctrl-C included."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from test_cli_jobs import CONSOLE, SECRET, ok, one_line, run, stored

from fal_notebook.store import JobRecord, JobStore, new_job_id


def unsent_row(settings) -> str:
    """A job a crashed process stored but never sent (SUBMITTING, no request id, no owner)."""
    store = JobStore(settings.store_path)
    try:
        return store.insert(JobRecord(id=new_job_id(), endpoint="fal-ai/nano-banana-pro",
                                      arguments={"prompt": "never sent"}, origin="cli")).id
    finally:
        store.close()


def test_poll_gives_up_after_its_timeout(fal_env, emulator, capsys) -> None:
    job_id = unsent_row(fal_env)
    emulator.hold(True)  # poll sends it again, but fal keeps it queued
    code, out, err = run(capsys, "poll", "--timeout", "0.5")
    assert code == 6
    assert one_line(err) == ("fal-notebook: poll: 1 job was not read, fetched and downloaded within 0.5 s; "
                             "they stay in the store (run `fal-notebook poll` again, or give a longer --timeout)")
    assert json.loads(out)["still_pending"] == [job_id]
    row = stored(fal_env)[job_id]
    assert row.state.value in {"SUBMITTING", "IN_QUEUE"} and row.owner is None  # free for the next poll
    emulator.release()
    data = ok(capsys, "wait", job_id, "--timeout", "30")
    assert data["jobs"][0]["state"] == "COMPLETED" and Path(data["jobs"][0]["files"][0]).is_file()
    assert len([r for r in emulator.requests if r.method == "POST"]) == 1  # sent once, never twice


def test_poll_timeout_covers_a_hung_status_read(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    job_id = ok(capsys, "submit", "nbp", '{"prompt":"x"}')["id"]
    emulator.configure(hang_seconds=5.0, fault_count=5, scenario="hung_status")
    code, out, err = run(capsys, "poll", "--timeout", "0.5")
    assert code == 6 and "within 0.5 s" in one_line(err)
    assert json.loads(out)["still_pending"] == [job_id]


def test_watch_prints_one_line_per_job_then_a_summary(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    ids = [ok(capsys, "submit", "nbp", f'{{"prompt":"fox {n}"}}')["id"] for n in range(3)]
    emulator.hold(False)
    emulator.release()
    code, out, err = run(capsys, "poll", "--watch", "--timeout", "60")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and err == "" and len(lines) == 4
    assert sorted(line["id"] for line in lines[:3]) == sorted(ids)
    assert all(line["state"] == "COMPLETED" and Path(line["files"][0]).is_file() for line in lines[:3])
    assert lines[3] == {"summary": True, "count": 3, "states": {"COMPLETED": 3}, "still_pending": []}
    code, out, _ = run(capsys, "poll", "--watch")
    assert code == 0 and json.loads(out) == {"summary": True, "count": 0, "states": {}, "still_pending": []}


def test_watch_timeout_ends_with_the_summary_and_exit_6(fal_env, emulator, capsys) -> None:
    emulator.hold(True)
    job_id = ok(capsys, "submit", "nbp", '{"prompt":"held"}')["id"]
    code, out, err = run(capsys, "poll", "--watch", "--timeout", "0.3")
    assert code == 6 and "poll --watch: 1 job still unfinished after 0.3 s" in one_line(err)
    assert [json.loads(line) for line in out.splitlines()] == [
        {"summary": True, "count": 0, "states": {}, "still_pending": [job_id]}]


@pytest.mark.timeout(90)
def test_watch_ctrl_c_exits_130_without_a_traceback(fal_env, emulator, capsys, wait_for) -> None:
    emulator.hold(True)
    first = ok(capsys, "submit", "nbp", '{"prompt":"first"}')
    second = ok(capsys, "submit", "nbp", '{"prompt":"second"}')
    proc = subprocess.Popen([str(CONSOLE), "poll", "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        emulator.release(first["request_id"])
        line = json.loads(proc.stdout.readline())  # printed as soon as that job finished
        assert line["id"] == first["id"] and line["state"] == "COMPLETED"
        wait_for(lambda: stored(fal_env)[second["id"]].owner is not None, timeout=30)  # it follows the other
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out == ""
    assert err == "fal-notebook: interrupted\n" and SECRET not in err
    row = stored(fal_env)[second["id"]]
    assert row.state.value == "IN_QUEUE" and row.owner is None  # left for the next poll, lease released


@pytest.mark.timeout(90)
def test_watch_follows_jobs_submitted_while_it_runs(fal_env, emulator, capsys, wait_for) -> None:
    emulator.hold(True)
    first = ok(capsys, "submit", "nbp", '{"prompt":"first"}')
    proc = subprocess.Popen([str(CONSOLE), "poll", "--watch", "--interval", "0.2", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: stored(fal_env)[first["id"]].owner is not None, timeout=30)  # the watcher took it
        later = ok(capsys, "submit", "nbp", '{"prompt":"later"}')  # another process submits meanwhile
        wait_for(lambda: stored(fal_env)[later["id"]].owner is not None, timeout=30)  # picked up by the rescan
        emulator.release()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0 and err == ""
    assert {line["id"] for line in lines[:-1]} == {first["id"], later["id"]}
    assert lines[-1] == {"summary": True, "count": 2, "states": {"COMPLETED": 2}, "still_pending": []}
