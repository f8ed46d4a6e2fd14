"""What resuming costs on the wire (counts from the emulator's request record, never times), and a late reading.

Jobs left unfinished by one manager are taken over by another. One fal finished meanwhile costs one status
read and one result (no stream connection each); one still running is read once, then followed on its stream.
"""

from __future__ import annotations

from collections import Counter

import pytest

from fal_notebook import errors
from fal_notebook.runtime import JobManager, as_completed
from fal_notebook.store import JobState, JobStore

SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}


def calls_per_job(requests, request_ids) -> dict[str, Counter]:
    """Per request id: how many status / stream / result / cancel calls it got."""
    seen: dict[str, Counter] = {rid: Counter() for rid in request_ids}
    for request in requests:
        parts = [p for p in request.path.split("/") if p]
        if "requests" not in parts:
            continue
        rid = parts[parts.index("requests") + 1]
        tail = tuple(parts[parts.index("requests") + 2:])
        kind = {(): "result", ("status",): "status", ("status", "stream"): "stream", ("cancel",): "cancel"}[tail]
        if rid in seen:
            seen[rid][kind] += 1
    return seen


def leave(fal_env, emulator, store_path, count: int, wait_for) -> list[str]:
    """Submit ``count`` jobs while fal holds them queued, wait until fal has each, stop following them (leases
    released); returns their request ids."""
    emulator.hold()
    manager = JobManager(fal_env, store=JobStore(store_path), legacy_file=False, auto_resume=False)
    try:
        jobs = [manager.submit("fal-ai/fast-sdxl", SMALL, validate=False) for _ in range(count)]
        wait_for(lambda: all(job.request_id for job in jobs))
    finally:
        manager.close()
    return [job.request_id for job in jobs]


def resume_all(fal_env, store_path, **options) -> list:
    manager = JobManager(fal_env, store=JobStore(store_path), legacy_file=False, auto_resume=False, **options)
    try:
        resumed = manager.resume()
        done = list(as_completed(resumed, timeout=60))
    finally:
        manager.close()
    assert len(done) == len(resumed)
    assert all(job.state is JobState.COMPLETED and len(job.files) == 1 for job in done)
    return done


def test_a_resumed_job_fal_finished_costs_one_look_and_one_result(fal_env, emulator, tmp_path, wait_for):
    request_ids = leave(fal_env, emulator, tmp_path / "s.sqlite3", 20, wait_for)
    emulator.release()
    wait_for(lambda: all(emulator.status_of(rid) == "COMPLETED" for rid in request_ids))
    emulator.clear_requests()
    assert len(resume_all(fal_env, tmp_path / "s.sqlite3")) == 20
    per_job = calls_per_job(emulator.requests, request_ids)
    assert all(c["status"] + c["stream"] == 1 and c["result"] == 1 and c["cancel"] == 0 for c in per_job.values())


def test_a_resumed_job_without_a_stream_slot_is_read_at_once(fal_env, emulator, tmp_path, wait_for, monkeypatch):
    """No stream slot: the job is read at once, not after the polling pause a job just submitted waits."""
    from fal_notebook.runtime import steps

    request_ids = leave(fal_env, emulator, tmp_path / "s.sqlite3", 10, wait_for)
    emulator.release()
    wait_for(lambda: all(emulator.status_of(rid) == "COMPLETED" for rid in request_ids))
    emulator.clear_requests()
    paced = []
    real_next = steps.PollPacer.next
    monkeypatch.setattr(steps.PollPacer, "next", lambda self, *a: paced.append(a) or real_next(self, *a))
    assert len(resume_all(fal_env, tmp_path / "s.sqlite3", max_streams=0)) == 10
    assert paced == []  # nobody waited for the pacer
    per_job = calls_per_job(emulator.requests, request_ids)
    assert all(c == Counter(status=1, result=1) for c in per_job.values()), per_job


def test_a_resumed_job_still_running_is_followed_on_its_stream(fal_env, emulator, tmp_path, wait_for):
    """A stream slot is free: the protocol minimum, one stream and one result (no extra read first)."""
    [request_id] = leave(fal_env, emulator, tmp_path / "s.sqlite3", 1, wait_for)
    emulator.clear_requests()
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False)
    try:
        [resumed] = manager.resume()
        wait_for(lambda: any(r.path.endswith("/status/stream") for r in emulator.requests))  # held: still queued
        emulator.release()
        resumed.wait(timeout=60)
    finally:
        manager.close()
    assert resumed.state is JobState.COMPLETED
    assert calls_per_job(emulator.requests, [request_id])[request_id] == Counter(stream=1, result=1)


def test_a_resume_reads_every_job_before_fetching_results(fal_env, emulator, tmp_path, wait_for):
    """The first reads and the results of a resume wait in one lane, in order: where every job stands is known
    before the first result is fetched (with two lanes taking turns, half the slots went to results while most
    jobs were still unread)."""
    request_ids = leave(fal_env, emulator, tmp_path / "s.sqlite3", 30, wait_for)
    emulator.release()
    wait_for(lambda: all(emulator.status_of(rid) == "COMPLETED" for rid in request_ids))
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False,
                         max_streams=0, max_requests=4)
    sent: list[str] = []
    session = manager.client.session
    real_send = session.send

    async def send(method, url, **kwargs):
        if "/requests/" in url:
            sent.append("status" if url.endswith("/status") else "result")
        return await real_send(method, url, **kwargs)

    session.send = send
    try:
        done = list(as_completed(manager.resume(), timeout=60))
    finally:
        manager.close()
    assert len(done) == 30 and all(job.state is JobState.COMPLETED for job in done)
    assert sent.count("status") == 30 and sent.count("result") == 30
    assert sent.index("result") == 30, sent  # every read went out before the first result


def test_a_reading_that_arrives_after_the_job_ended_changes_nothing():
    """A cancel ends the job while the stream's COMPLETED event is on its way: that late reading must not make
    the record look running again (a waiter woken by the cancel read IN_PROGRESS)."""
    from fal_notebook.client.wire import Status
    from fal_notebook.runtime.ledger import JobRun
    from fal_notebook.runtime.steps import apply_status
    from fal_notebook.runtime.tracker import Tracker
    from fal_notebook.store.records import JobRecord

    record = JobRecord(id="j1", endpoint="fal-ai/fast-sdxl", arguments={}, origin="test", request_id="r1",
                       state=JobState.CANCELLED)
    noted = []

    class Ledger:
        def note(self, run, *names):
            noted.append(names)

    late = Status.from_json({"status": "COMPLETED", "request_id": "r1", "logs": None, "metrics": {},
                             "error": "Request was cancelled by the user", "error_type": "request_cancelled"})
    with pytest.raises(errors.JobCancelledError):
        apply_status(Ledger(), JobRun(Tracker(record)), late)
    assert record.state is JobState.CANCELLED and noted == []
