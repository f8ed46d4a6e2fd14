"""A full disk or an unusable outputs folder never turns a paid result into a failure: the job is COMPLETED with
its result kept and its downloads pending; ``wait()`` / ``resume()`` fetch them once the disk allows. Each test
prints its figure."""

from __future__ import annotations

import dataclasses
import errno

from fal_notebook.client.queue import AsyncQueueClient
from fal_notebook.runtime.manager import JobManager
from fal_notebook.store import JobStore
from fal_notebook.store.records import JobState

MODEL = "fal-ai/flux/dev"


def test_full_disk_keeps_the_result_and_downloads_later(fal_env, emulator, tmp_path, monkeypatch):
    real = AsyncQueueClient._stream_to
    full = {"on": True}

    async def no_space(self, url, out):
        if full["on"]:
            out.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real(self, url, out)

    monkeypatch.setattr(AsyncQueueClient, "_stream_to", no_space)
    manager = JobManager(fal_env, store=JobStore(tmp_path / "jobs.sqlite3"), origin="t", legacy_file=False)
    try:
        job = manager.submit(MODEL, {"prompt": "disk full", "num_images": 2})
        job.wait(timeout=60)
        assert job.state is JobState.COMPLETED and job.error is None
        assert job.result(timeout=0)["images"] and job.files == []
        assert job._rec.options["downloads_pending"] == 2
        assert list(fal_env.outputs.iterdir()) == []  # no half files left behind
        assert any("download pending: No space left on device" in line for line in job.logs)
        full["on"] = False
        job.wait(timeout=60)  # retries what the disk refused
        assert len(job.files) == 2 and all(f.stat().st_size > 0 for f in job.files)
        assert "downloads_pending" not in job._rec.options
    finally:
        manager.close()
    assert len(emulator.jobs) == 1  # nothing was sent again
    print("\nFIGURE disk full (ENOSPC on every write): COMPLETED, result kept, 2 downloads pending; "
          "wait() afterwards: 2 files, 1 request at fal")


def test_outputs_folder_unusable_then_fixed_by_resume(fal_env, emulator, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the outputs folder should be")
    settings = dataclasses.replace(fal_env, outputs=blocked / "outputs")
    store = JobStore(tmp_path / "jobs.sqlite3")
    manager = JobManager(settings, store=store, origin="t", legacy_file=False)
    try:
        job = manager.submit(MODEL, {"prompt": "nowhere to write"})
        job.wait(timeout=60)
        assert job.state is JobState.COMPLETED and job.files == [] and job._rec.options["downloads_pending"] == 1
    finally:
        manager.close()
    blocked.unlink()
    second = JobManager(settings, store=store, origin="t", legacy_file=False)
    try:
        second.resume()
        again = second.get(job.id)
        assert len(again.files) == 1 and again.files[0].is_file()
        assert again.files[0].parent == (blocked / "outputs").resolve()
    finally:
        second.close()
    print("\nFIGURE outputs folder unusable: COMPLETED with 1 download pending; resume() after the fix: 1 file")


def test_a_job_whose_status_cannot_be_read_ends_expired(fal_env, emulator, tmp_path):
    """Status answers 502 for ever and the stream only pings: past the bound (fal keeps results 1 h; 1 s here)
    the job ends EXPIRED with the reason, so wait() without a timeout returns."""
    import dataclasses

    from fal_notebook.config import Limits

    emulator.configure(faults={"stream": {"kind": "ping_only"}, "status": {"kind": "502"}})
    settings = dataclasses.replace(fal_env, limits=dataclasses.replace(Limits(), unfollowable_seconds=1.0))
    manager = JobManager(settings, store=JobStore(tmp_path / "jobs.sqlite3"), origin="t", legacy_file=False)
    manager.client.stream_silence = 0.3
    try:
        job = manager.submit(MODEL, {"prompt": "unfollowable"})
        job.wait()  # no timeout: it must return
    finally:
        manager.close()
    assert job.state is JobState.EXPIRED and "could not be read" in str(job.error)
    print(f"\nFIGURE status unreadable (502 for ever): EXPIRED after the bound — {str(job.error)[:90]}")
