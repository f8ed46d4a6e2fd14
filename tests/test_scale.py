"""At scale the runtime keeps to the protocol's minimum: counts from the emulator's request record, not times.

1,000 jobs from one manager: each is submitted once, followed by a status stream while a stream slot is free
or by polls paced by its phase, and its result is fetched once. The bound is 3.5 queue calls per job (submit,
status or stream, result, plus a little polling for jobs that waited for a stream slot).
"""

from __future__ import annotations

from collections import Counter

import pytest

from fal_notebook.runtime import JobManager, as_completed
from fal_notebook.store import JobState, JobStore

JOBS = 1000
SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}


def queue_call(request) -> str | None:
    """submit / status / stream / result, as fal's queue API counts them (media and storage are not)."""
    path = request.path
    if "/requests/" in path:
        if path.endswith("/status/stream"):
            return "stream"
        if path.endswith("/status"):
            return "status"
        if path.endswith("/cancel"):
            return "cancel"
        return "result"
    if request.method == "POST" and path.startswith("/fal-ai/"):
        return "submit"
    return None


@pytest.mark.timeout(300)
def test_a_thousand_jobs_complete_at_the_protocol_minimum(fal_env, emulator, tmp_path):
    emulator.configure(scenario="normal", queue_seconds=0.5, run_seconds=0.5, log_lines=0)
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False)
    try:
        jobs = [manager.submit("fal-ai/fast-sdxl", SMALL, validate=False) for _ in range(JOBS)]
        finished = list(as_completed(jobs, timeout=240))
    finally:
        manager.close()
    assert len(finished) == JOBS and Counter(job.state for job in jobs) == {JobState.COMPLETED: JOBS}
    assert all(len(job.files) == 1 for job in jobs)
    calls = Counter(kind for request in emulator.requests if (kind := queue_call(request)))
    assert calls["submit"] == JOBS and calls["result"] == JOBS, calls  # each exactly once
    assert calls["stream"] + calls["status"] >= JOBS  # every job was looked at
    assert sum(calls.values()) <= 3.5 * JOBS, calls


@pytest.mark.timeout(240)
def test_short_jobs_take_three_queue_calls_over_reused_connections(fal_env, emulator, tmp_path, monkeypatch):
    """The throughput workload (fal's fast jobs, one after another as fast as they go): submit, one stream,
    one result per job, and far fewer connections than requests (a connection per stream or per request is
    what made the client's CPU per job grow)."""
    import httpcore

    made = []
    create = httpcore.AsyncConnectionPool.create_connection
    monkeypatch.setattr(httpcore.AsyncConnectionPool, "create_connection",
                        lambda pool, origin: made.append(origin) or create(pool, origin))
    emulator.configure(scenario="fast", log_lines=0)
    jobs_count = 300
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False)
    try:
        jobs = [manager.submit("fal-ai/fast-sdxl", SMALL, validate=False) for _ in range(jobs_count)]
        list(as_completed(jobs, timeout=200))
    finally:
        manager.close()
    assert Counter(job.state for job in jobs) == {JobState.COMPLETED: jobs_count}
    calls = Counter(kind for request in emulator.requests if (kind := queue_call(request)))
    assert calls["submit"] == calls["result"] == jobs_count and sum(calls.values()) <= 3.05 * jobs_count, calls
    assert len(made) < jobs_count / 2, len(made)  # 4 requests per job: 1,200 requests


class CountingStore(JobStore):
    """A store that counts its write transactions (one SQL write or one ``BEGIN IMMEDIATE`` block each)."""

    writes = 0

    def _write(self, sql, params=()):
        if not sql.lstrip().upper().startswith("SELECT"):
            CountingStore.writes += 1
        return super()._write(sql, params)

    def _immediate(self, body):
        CountingStore.writes += 1
        return super()._immediate(body)


def test_store_writes_per_job_are_few_and_progress_is_batched(fal_env, emulator, tmp_path):
    """insert, the mark before the POST (without it a crash in the submit window could send a paid request
    twice), the POST's answer, the result-fetch mark, the result, the final state: six per job, and the
    progress in between (queue position, IN_PROGRESS, logs) goes in shared batches."""
    emulator.configure(scenario="normal", queue_seconds=0.6, run_seconds=0.6, queue_ahead=3, log_lines=3)
    store = CountingStore(tmp_path / "s.sqlite3")
    manager = JobManager(fal_env, store=store, legacy_file=False, auto_resume=False)
    try:
        CountingStore.writes = 0
        jobs = [manager.submit("fal-ai/fast-sdxl", SMALL, validate=False) for _ in range(40)]
        list(as_completed(jobs, timeout=120))
        writes = CountingStore.writes
    finally:
        manager.close()
    assert all(job.state is JobState.COMPLETED and job.logs for job in jobs)
    assert writes <= 6.5 * len(jobs), writes
    rows = {row.id: row for row in store.list(origin=None)}
    assert all(rows[job.id].files and rows[job.id].logs and rows[job.id].started_at for job in jobs)
