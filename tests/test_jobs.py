"""The Job API against the real emulator, in this process: submit, follow, results, errors, cancel."""

from __future__ import annotations

import _thread
import asyncio
import threading

import pytest

from fal_notebook import jobs as J
from fal_notebook.errors import (
    FalTimeoutError,
    JobCancelledError,
    JobFailedError,
    NotFoundError,
    ResultExpiredError,
    ValidationError,
)
from fal_notebook.runtime import JobManager
from fal_notebook.store import JobState, JobStore

MODEL = "fal-ai/flux/dev"


@pytest.fixture
def mgr(fal_env, monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_PENDING_FILE", str(tmp_path / "no-legacy.json"))
    manager = JobManager(fal_env, store=JobStore(fal_env.store_path), legacy_file=False)
    J.set_manager(manager)
    yield manager
    J.set_manager(None)
    manager.store.close()


def _seen(emulator, request_id: str, method: str | None = None, suffix: str = "") -> list:
    return [r for r in emulator.requests if request_id in r.path and r.path.endswith(request_id + suffix)
            and (method is None or r.method == method)]


def test_submit_returns_at_once_and_completes_with_files(mgr, emulator, fal_env):
    emulator.hold(True)
    job = J.submit("nano-banana-pro", prompt="a red fox", num_images=2)
    assert job.state in (JobState.SUBMITTING, JobState.IN_QUEUE) and not job.done
    assert mgr.store.get(job.id) is not None  # stored before anything else
    emulator.release()
    assert job.wait(timeout=30) is job
    assert job.state is JobState.COMPLETED and job.error is None
    assert len(job.files) == 2 and all(p.is_file() and p.stat().st_size > 0 for p in job.files)
    assert all(p.parent == fal_env.outputs.resolve() for p in job.files)
    assert [im.size for im in job.images] == [(1024, 1024)] * 2
    assert job.video is None and job.inference_time is not None and job.elapsed > 0
    result = job.result(timeout=0)
    assert len(result["images"]) == 2
    row = mgr.store.get(job.id)
    assert row.state is JobState.COMPLETED and row.files == [str(p) for p in job.files]
    assert row.result == result and row.result_fetches == 1 and row.owner is None
    assert repr(job).startswith(f"<Job {job.id[:6]} nano-banana-pro COMPLETED 2 images ")


def test_module_functions_find_jobs(mgr, emulator):
    job = J.run(MODEL, {"prompt": "one"}, tags=["t1"])
    other = J.run("nano-banana-pro", prompt="two")
    assert J.get(job.id[:6]) is job and J.get(job.request_id) is job
    assert [j.id for j in J.jobs(model=MODEL)] == [job.id]
    assert {j.id for j in J.jobs()} == {job.id, other.id}
    assert J.jobs(origin="somewhere-else") == [] and len(J.jobs(all=True)) == 2
    assert [j.id for j in J.jobs(state="COMPLETED", limit=1)] == [other.id]
    assert job.tags == ["t1"] and job.origin == mgr.origin
    with pytest.raises(NotFoundError):
        J.get("nope")
    group = J.JobGroup([J.submit(MODEL, prompt=f"g{i}") for i in range(3)])
    assert group.wait(timeout=30).done and len(group.images) == 3 and "3 COMPLETED" in repr(group)
    assert J.wait(timeout=30) == []  # nothing unfinished left


@pytest.mark.parametrize("streams", [16, 0], ids=["sse", "polling"])
def test_failed_result_is_typed_and_never_polled_again(fal_env, emulator, tmp_path, streams):
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False,
                         max_streams=streams)
    emulator.configure(scenario="error")
    try:
        job = manager.submit(MODEL, {"prompt": "x"})
        with pytest.raises(JobFailedError) as info:
            job.result(timeout=30)
        assert job.state is JobState.FAILED and job.error is not None
        assert info.value.error_type and info.value.detail and job.error.error_type == info.value.error_type
        row = manager.store.get(job.id)
        assert row.error["class"] == "JobFailedError" and row.error["error_type"] == info.value.error_type
        seen = [r for r in emulator.requests if job.request_id in r.path]
        emulator.configure(scenario="fast", run_seconds=1.0)  # a later job lasting several poll intervals
        later = manager.submit(MODEL, {"prompt": "later"})
        assert later.wait(timeout=30).state is JobState.COMPLETED
    finally:
        manager.close()
    assert [r for r in emulator.requests if job.request_id in r.path] == seen
    assert len(_seen(emulator, job.request_id, "GET")) == 1  # the result was fetched once


def test_expired_result_says_so(mgr, emulator):
    emulator.configure(scenario="expired")
    job = J.submit(MODEL, prompt="x").wait(timeout=30)
    assert job.state is JobState.EXPIRED and isinstance(job.error, ResultExpiredError)
    assert "no longer available" in str(job.error) and "1 h" in str(job.error)


def test_validation_error_sends_and_stores_nothing(mgr, emulator):
    with pytest.raises(ValidationError):
        J.submit(MODEL, {"prompt": "x", "num_images": "many"})
    assert mgr.store.list() == [] and not [r for r in emulator.requests if r.method == "POST"]


def test_timeout_then_cancel(mgr, emulator):
    emulator.hold(True)
    job = J.submit(MODEL, prompt="held")
    with pytest.raises(FalTimeoutError):
        job.result(timeout=0.3)
    assert job.cancel() == "CANCELLATION_REQUESTED"
    assert job.state is JobState.CANCELLED and job.done
    assert _seen(emulator, job.request_id, "PUT", "/cancel")
    with pytest.raises(JobCancelledError):
        job.result()
    assert mgr.store.get(job.id).state is JobState.CANCELLED
    assert job.cancel() == "CANCELLED"  # idempotent


def test_run_interrupted_cancels_the_remote_request(mgr, emulator, wait_for):
    emulator.hold(True)

    def interrupt_once_accepted() -> None:
        wait_for(lambda: [r for r in mgr.store.list() if r.request_id], timeout=20)
        _thread.interrupt_main()

    timer = threading.Thread(target=interrupt_once_accepted, daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        J.run(MODEL, {"prompt": "interrupt me"}, timeout=120)  # not a hang if the interrupt never comes
    timer.join(5)
    (row,) = mgr.store.list()
    assert _seen(emulator, row.request_id, "PUT", "/cancel")
    assert row.state is JobState.CANCELLED


def test_await_and_run_async(mgr, emulator):
    async def main():
        job = J.submit(MODEL, prompt="awaited")
        done = await job
        again = await J.run_async(MODEL, prompt="async", timeout=30)
        return done, again

    done, again = asyncio.run(main())
    assert done.state is JobState.COMPLETED and again.state is JobState.COMPLETED


def test_run_async_cancelled_task_cancels_remote(mgr, emulator, wait_for):
    emulator.hold(True)

    async def main():
        task = asyncio.ensure_future(J.run_async(MODEL, prompt="cancel me"))
        while not [r for r in mgr.store.list() if r.request_id]:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (row,) = mgr.store.list()
    assert row.state is JobState.CANCELLED and _seen(emulator, row.request_id, "PUT", "/cancel")


def test_on_change_runs_on_the_runtime_thread_and_survives_errors(mgr, emulator, caplog):
    threads, calls = set(), []

    def good():
        threads.add(threading.current_thread().name)
        calls.append(1)

    def bad():
        raise RuntimeError("boom in a callback")

    emulator.hold(True)
    job = J.submit(MODEL, prompt="x")
    unsubscribe = job.on_change(good)
    job.on_change(bad)
    emulator.release()
    job.wait(timeout=30)
    assert calls and threads == {mgr.portal.thread.name}
    assert "boom in a callback" in caplog.text
    unsubscribe()
    count = len(calls)
    job._notify()
    assert len(calls) == count


def test_polling_fallback_when_no_stream_slot(fal_env, emulator, tmp_path):
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, max_streams=0)
    try:
        job = manager.submit(MODEL, {"prompt": "poll"}).wait(timeout=30)
    finally:
        manager.close()
    assert job.state is JobState.COMPLETED
    paths = [r.path for r in emulator.requests if job.request_id in r.path]
    assert any(p.endswith("/status") for p in paths) and not any(p.endswith("/stream") for p in paths)


def test_no_key_and_no_data_uri_in_the_store(mgr, emulator, fal_env, tmp_path):
    from fal_notebook.media import make_test_image, to_data_uri

    image = tmp_path / "in.png"
    image.write_bytes(make_test_image(64, 64, "PNG", "input"))
    data_uri = to_data_uri(image)
    job = J.run("nano-banana-pro/edit", prompt="edit", image_urls=[data_uri, str(image)])
    sent = emulator.jobs[job.request_id].arguments
    assert sent["image_urls"][0] == data_uri and sent["image_urls"][1].startswith("http")  # uploaded
    blob = b"".join(p.read_bytes() for p in fal_env.store_path.parent.glob("jobs.sqlite3*"))
    assert b"test-secret" not in blob and data_uri.split(",", 1)[1][:64].encode() not in blob
    assert mgr.store.get(job.id).arguments["image_urls"][0]["$data_uri"]


def test_close_releases_leases_and_resume_picks_jobs_up(fal_env, emulator, tmp_path, wait_for):
    store_path = tmp_path / "shared.sqlite3"
    first = JobManager(fal_env, store=JobStore(store_path), legacy_file=False)
    emulator.hold(True)
    job = first.submit(MODEL, {"prompt": "carry over"})
    wait_for(lambda: first.store.get(job.id).request_id, timeout=20)
    first.close()
    assert first.store.get(job.id).owner is None and not job.done
    emulator.release()
    second = JobManager(fal_env, store=JobStore(store_path), legacy_file=False)
    try:
        resumed = second.resume()
        assert [j.id for j in resumed] == [job.id]
        assert resumed[0].wait(timeout=30).state is JobState.COMPLETED
    finally:
        second.close()
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert len(posts) == 1  # followed, not re-submitted


def test_submitting_row_of_a_dead_process_is_resubmitted(fal_env, emulator, tmp_path, caplog):
    import socket
    import subprocess
    import sys

    from fal_notebook.media import make_test_image, to_data_uri
    from fal_notebook.store import JobRecord, new_job_id

    image = tmp_path / "ref.png"
    image.write_bytes(make_test_image(32, 32, "PNG", "ref"))
    data_uri = to_data_uri(image)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    store = JobStore(tmp_path / "s.sqlite3")
    row = store.insert(JobRecord(id=new_job_id(), endpoint="fal-ai/nano-banana-pro/edit",
                                 arguments={"prompt": "again", "image_urls": [data_uri, str(image)]},
                                 origin="script", owner=f"{socket.gethostname()}:{child.pid}:dead",
                                 lease_until=9e12))
    manager = JobManager(fal_env, store=store, origin="script", legacy_file=False)
    try:
        (job,) = manager.resume()
        assert job.id == row.id and job.wait(timeout=30).state is JobState.COMPLETED
    finally:
        manager.close()
    assert "submitting it (it was never sent)" in caplog.text
    sent = emulator.jobs[job.request_id].arguments["image_urls"]
    assert sent[0] == data_uri and sent[1].startswith("http")
    assert store.get(row.id).submit_attempts == 1


def test_legacy_entries_are_followed_to_the_end(fal_env, emulator, emu_http, tmp_path):
    import json

    accepted = emu_http.post(f"/{MODEL}", json={"prompt": "from the old skill"}).json()["request_id"]
    legacy = tmp_path / "fal-pending.json"
    legacy.write_text(json.dumps({"requests": [
        {"request_id": accepted, "model_id": MODEL, "input": {"prompt": "from the old skill"},
         "status": "IN_QUEUE", "submitted_at": "2026-01-01T00:00:00"},
        {"request_id": "00000000-dead-beef-0000-000000000000", "model_id": MODEL, "input": {},
         "status": "IN_QUEUE", "submitted_at": "2026-01-01T00:00:00"},
    ]}))
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), origin="cli", legacy_file=legacy)
    try:
        resumed = {j.request_id: j for j in manager.resume()}
        assert set(resumed) == {accepted, "00000000-dead-beef-0000-000000000000"}
        assert resumed[accepted].wait(timeout=30).state is JobState.COMPLETED and resumed[accepted].files
        gone = resumed["00000000-dead-beef-0000-000000000000"].wait(timeout=30)
    finally:
        manager.close()
    assert gone.state is JobState.EXPIRED and "no longer" in str(gone.error)


def test_cancel_and_wait_from_another_manager(fal_env, emulator, tmp_path, wait_for):
    path = tmp_path / "shared.sqlite3"
    follower = JobManager(fal_env, store=JobStore(path), legacy_file=False)
    other = JobManager(fal_env, store=JobStore(path), legacy_file=False)
    emulator.hold(True)
    try:
        job = follower.submit(MODEL, {"prompt": "held"})
        wait_for(lambda: follower.store.get(job.id).request_id, timeout=20)
        seen_elsewhere = other.get(job.id)
        assert seen_elsewhere is not job and not seen_elsewhere._live
        assert seen_elsewhere.cancel() == "CANCELLATION_REQUESTED"
        assert seen_elsewhere.state is JobState.CANCELLED
        assert job.wait(timeout=30).state is JobState.CANCELLED  # the follower let go
        assert isinstance(job.error, JobCancelledError)
    finally:
        follower.close()
        other.close()
    assert len(_seen(emulator, job.request_id, "PUT", "/cancel")) == 1
    assert not _seen(emulator, job.request_id, "GET")  # a cancelled job's result is not fetched


def test_as_completed_yields_jobs_in_the_order_they_end(mgr, emulator, wait_for):
    emulator.hold(True)
    held = [J.submit(MODEL, prompt=f"fox {n}") for n in range(3)]
    wait_for(lambda: all(job.request_id for job in held))
    with pytest.raises(FalTimeoutError, match="3 job\\(s\\) did not finish within 0.2 s"):
        next(J.as_completed(held, timeout=0.2))
    order = []
    finishing = J.as_completed(held, timeout=30)
    for job in (held[2], held[0], held[1]):
        emulator.release(job.request_id)
        order.append(next(finishing))
        assert order[-1] is job and job.state is JobState.COMPLETED and job.files[0].is_file()
    assert next(finishing, None) is None
    assert [job.id for job in J.as_completed(held)] == [job.id for job in held]  # ended ones: given order
