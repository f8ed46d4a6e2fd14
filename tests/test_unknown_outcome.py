"""A submit whose reply never arrived is UNKNOWN, never FAILED and never re-sent blindly; fal's request history
settles it: found → the request id is adopted and followed; not there after the listing delay → NOT_RECEIVED,
and ``resubmit`` sends it on request. Each test prints its figure."""

from __future__ import annotations

import dataclasses

import pytest

from fal_notebook.config import Limits
from fal_notebook.errors import NotReceivedError, UnknownOutcomeError, UsageError
from fal_notebook.runtime.manager import JobManager
from fal_notebook.store import JobStore
from fal_notebook.store.records import JobState

MODEL = "fal-ai/flux/dev"


def manager_for(settings, tmp_path, **limits) -> JobManager:
    settings = dataclasses.replace(settings, limits=dataclasses.replace(Limits(), **limits))
    return JobManager(settings, store=JobStore(tmp_path / "jobs.sqlite3"), origin="t", legacy_file=False)


def submits(emulator) -> list:
    return [r for r in emulator.requests if r.method == "POST" and r.path == f"/{MODEL}"]


def test_a_reply_lost_after_sending_is_found_in_the_history_and_followed(fal_env, emulator, tmp_path, caplog):
    emulator.configure(faults={"submit": {"kind": "reset_after", "count": 1}})
    manager = manager_for(fal_env, tmp_path, listing_delay=30)
    try:
        job = manager.submit(MODEL, {"prompt": "lost reply", "seed": 7})
        job.wait(timeout=60)
    finally:
        manager.close()
    assert job.state is JobState.COMPLETED, job.error
    (only,) = emulator.jobs.values()
    assert job.request_id == only.request_id and len(submits(emulator)) == 1
    assert job.files and job.files[0].stat().st_size > 0
    assert "looking for it in fal's request history" in caplog.text
    print(f"\nFIGURE reply lost after sending: 1 POST at the emulator, adopted {job.request_id[:8]}, COMPLETED")


def test_a_submit_that_never_arrived_is_not_received_then_resubmitted(fal_env, emulator, tmp_path):
    emulator.configure(faults={"submit": {"kind": "reset", "count": 1}})
    manager = manager_for(fal_env, tmp_path, listing_delay=0.5)
    try:
        job = manager.submit(MODEL, {"prompt": "never arrived"})
        job.wait(timeout=60)
        assert job.state is JobState.NOT_RECEIVED
        assert isinstance(job.error, NotReceivedError) and "fal did not receive" in str(job.error)
        assert emulator.jobs == {}
        with pytest.raises(NotReceivedError):
            job.result(timeout=0)
        job.resubmit().wait(timeout=60)
        assert job.state is JobState.COMPLETED and len(emulator.jobs) == 1
        with pytest.raises(UsageError, match="only a job that fal did not receive"):
            job.resubmit()
    finally:
        manager.close()
    assert len(submits(emulator)) == 2  # the reset one (never handled) and the resubmit
    print("\nFIGURE submit reset before fal got it: NOT_RECEIVED, 0 jobs at fal; resubmit → 1 job, COMPLETED")


def test_identical_inputs_adopt_distinct_requests(fal_env, emulator, tmp_path):
    """Three identical requests (--n 3) whose replies were all lost: each adopts its own request."""
    emulator.configure(faults={"submit": {"kind": "reset_after", "count": 3}})
    manager = manager_for(fal_env, tmp_path, listing_delay=30)
    try:
        jobs = [manager.submit(MODEL, {"prompt": "triplet", "seed": 1}) for _ in range(3)]
        for job in jobs:
            job.wait(timeout=60)
    finally:
        manager.close()
    assert [j.state for j in jobs] == [JobState.COMPLETED] * 3
    assert {j.request_id for j in jobs} == set(emulator.jobs) and len(emulator.jobs) == 3
    print("\nFIGURE 3 identical submits, 3 lost replies: 3 distinct requests adopted, 0 re-sent")


def test_the_history_unreadable_for_longer_than_fal_keeps_results_ends_the_job(fal_env, emulator, tmp_path):
    emulator.configure(faults={"submit": {"kind": "reset_after", "count": 1}}, platform_status=403)
    manager = manager_for(fal_env, tmp_path, listing_delay=0.2, unfollowable_seconds=0.6)
    try:
        job = manager.submit(MODEL, {"prompt": "no history"})
        job.wait(timeout=60)
    finally:
        manager.close()
    assert job.state is JobState.EXPIRED and "stays unknown" in str(job.error)
    assert len(emulator.jobs) == 1 and len(submits(emulator)) == 1  # never sent twice
    print("\nFIGURE reply lost, history unreadable: EXPIRED after the bound, 1 POST only")


def test_unknown_outcome_error_is_a_transport_error_with_its_own_exit_code():
    from fal_notebook.cli.exit_codes import exit_code
    from fal_notebook.errors import TransportError

    assert issubclass(UnknownOutcomeError, TransportError)  # callers catching network failures still do
    assert exit_code(UnknownOutcomeError("x")) == 9 and exit_code(NotReceivedError("x")) == 9
    assert exit_code(TransportError("x")) == 7


def test_a_job_cancelled_while_unknown_is_cancelled_at_fal_once_found(fal_env, emulator, tmp_path, wait_for):
    emulator.configure(faults={"submit": {"kind": "reset_after", "count": 1}}, platform_status=503)
    manager = manager_for(fal_env, tmp_path, listing_delay=30)
    try:
        job = manager.submit(MODEL, {"prompt": "cancel me while unknown"})
        wait_for(lambda: job.state is JobState.UNKNOWN, timeout=60)  # the history is down: it stays UNKNOWN
        assert job.cancel() == "CANCELLATION_REQUESTED"
        emulator.configure(faults=None, platform_status=0)
        job.wait(timeout=60)
    finally:
        manager.close()
    assert job.state is JobState.CANCELLED
    (only,) = emulator.jobs.values()
    assert job.request_id == only.request_id and emulator.status_of(only.request_id) == "COMPLETED"
    assert any(r.method == "PUT" and r.path.endswith("/cancel") for r in emulator.requests)
    print("\nFIGURE cancelled while UNKNOWN: the request found in fal's history was cancelled there, 1 POST")


def test_resubmit_looks_once_more_and_adopts_a_request_listed_late(fal_env, emulator, emu_http, tmp_path):
    emulator.configure(faults={"submit": {"kind": "reset", "count": 1}})
    manager = manager_for(fal_env, tmp_path, listing_delay=0.3)
    try:
        job = manager.submit(MODEL, {"prompt": "listed late"})
        job.wait(timeout=60)
        assert job.state is JobState.NOT_RECEIVED
        # fal lists it now: the request as the client sent it (with the seed it picked)
        late = emu_http.post(f"/{MODEL}", json=dict(job.arguments)).json()["request_id"]
        job.resubmit().wait(timeout=60)
    finally:
        manager.close()
    assert job.state is JobState.COMPLETED and job.request_id == late and len(emulator.jobs) == 1
    print("\nFIGURE resubmit after a late listing: the listed request adopted, 0 new POSTs")
