"""The reliability suite: kill -9 at random points (the submit window included) and faults on every route of the
emulator, checked against what the emulator itself recorded. Each test prints its figures (``FIGURE …``);
RELIABILITY.md lists them from the last run.

* 30 processes killed inside a slowed submit window: 0 duplicate requests at the emulator, every request it
  received is in the store and ends COMPLETED.
* Processes killed at random moments (before, inside and after the POST): the same, and a job fal never got is
  NOT_RECEIVED, never sent twice.
* 50 jobs under mixed faults on every route (submit, status, stream, result, cancel, upload, media, history):
  every job ends (UNKNOWN ones reconciled), 0 requests at the emulator unknown to the store.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import signal
import subprocess
import sys
import time

import pytest

from fal_notebook.config import Limits
from fal_notebook.media import make_test_image
from fal_notebook.runtime.job import Job
from fal_notebook.runtime.manager import JobManager
from fal_notebook.store import JobStore
from fal_notebook.store.records import JobState

MODEL = "fal-ai/flux/dev"
CHILD = f"""
import sys, threading
import fal_notebook.jobs as J
from fal_notebook.catalog.validate import validate
validate("{MODEL}", {{"prompt": "warm"}})  # imports and caches warm: the submit itself takes milliseconds
J.manager().estimate("{MODEL}", [{{"prompt": "warm"}}], fetch=False)
J.manager().start()
print("ready", flush=True)
J.submit("{MODEL}", {{"prompt": sys.argv[1], "seed": int(sys.argv[2])}})
threading.Event().wait()
"""


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _resume_all(settings, listing_delay: float = 2.0) -> list:
    """A fresh process's view: resume every unfinished job and wait for each; returns the store's rows."""
    settings = dataclasses.replace(settings, limits=dataclasses.replace(Limits(), listing_delay=listing_delay))
    store = JobStore(settings.store_path)
    manager = JobManager(settings, store=store, origin="script", legacy_file=False)
    try:
        for job in manager.resume(all=True):
            job.wait(timeout=120)
        return store.list()
    finally:
        manager.close()


def _check_against_the_emulator(emulator, rows) -> dict[str, int]:
    """Every request the emulator received is held by exactly one stored job; figures for the report."""
    posts = [r for r in emulator.requests if r.method == "POST" and r.path == f"/{MODEL}"]
    at_fal = set(emulator.jobs)
    stored = [r.request_id for r in rows if r.request_id]
    assert len(stored) == len(set(stored)), "two jobs hold one request"
    unknown_to_store = at_fal - set(stored)
    assert not unknown_to_store, f"requests at the emulator that the store does not know: {unknown_to_store}"
    by_prompt = collections.Counter(tuple(sorted(j.arguments.items())) for j in emulator.jobs.values())
    duplicates = sum(n - 1 for n in by_prompt.values())
    return {"posts": len(posts), "at_fal": len(at_fal), "stored": len(stored), "duplicates": duplicates,
            "unknown_to_store": len(unknown_to_store)}


@pytest.mark.slow
def test_30_kills_inside_a_slowed_submit_window(fal_env, emulator, child_env, wait_for):
    """The POST reaches fal, its reply is held back 60 s, and the process is killed meanwhile."""
    emulator.configure(faults={"submit": {"kind": "slow_reply", "seconds": 60}})
    kills, batch = 30, 6
    for start in range(0, kills, batch):
        children = [_spawn(child_env, f"window {n}", str(n)) for n in range(start, start + batch)]
        wait_for(lambda want=start + batch: len(emulator.jobs) >= want, timeout=120)  # every POST is at fal
        for child in children:
            child.send_signal(signal.SIGKILL)
        for child in children:
            assert child.wait(30) == -signal.SIGKILL
    emulator.configure(faults=None)
    assert len(JobStore(fal_env.store_path).list()) == kills  # (later children already resume earlier ones)
    rows = _resume_all(fal_env)
    figures = _check_against_the_emulator(emulator, rows)
    assert figures["duplicates"] == 0 and figures["at_fal"] == kills
    assert all(r.state is JobState.COMPLETED for r in rows), collections.Counter(r.state for r in rows)
    print(f"\nFIGURE kill -9 inside the submit window: {kills} kills, {figures['posts']} POSTs at the emulator, "
          f"{figures['duplicates']} duplicate requests, {figures['unknown_to_store']} requests unknown to the "
          f"store, {sum(r.state is JobState.COMPLETED for r in rows)}/{kills} COMPLETED")


@pytest.mark.slow
def test_kills_at_random_points(fal_env, emulator, child_env):
    """Each process is killed a random 0–1.5 s after it is ready to submit, while the submit's reply takes 0.6 s:
    some die before their POST, some inside the window, some after the reply was stored."""
    rng = random.Random(13)
    emulator.configure(faults={"submit": {"kind": "slow_reply", "seconds": 0.6}})
    kills = 12
    for n in range(0, kills, 4):
        children = [_spawn(child_env, f"random {k}", str(k)) for k in range(n, n + 4)]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for child, delay in sorted(((c, rng.uniform(0.0, 1.5)) for c in children), key=lambda c: c[1]):
            time.sleep(max(0.0, started + delay - time.monotonic()))  # when the fault strikes, not a sync
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    emulator.configure(faults=None)
    rows = _resume_all(fal_env, listing_delay=2.0)
    figures = _check_against_the_emulator(emulator, rows)
    states = collections.Counter(r.state.value for r in rows)
    assert figures["duplicates"] == 0
    assert all(r.state is JobState.COMPLETED for r in rows if r.request_id)
    assert all(r.state is JobState.NOT_RECEIVED for r in rows if not r.request_id)
    print(f"\nFIGURE kill -9 at random points: {kills} kills, {len(rows)} jobs stored, {figures['at_fal']} "
          f"requests at the emulator, {figures['duplicates']} duplicates, 0 unknown to the store, "
          f"states {dict(states)}")


def test_50_jobs_under_mixed_faults_on_every_route(fal_env, emulator, tmp_path, wait_for):
    faults = {
        "submit": {"kind": "reset_after", "rate": 0.2},  # fal has it, the reply is lost → UNKNOWN → reconciled
        "status": {"kind": "502", "rate": 0.3},
        "stream": {"kind": "ping_only", "rate": 0.3},
        "result": {"kind": "502", "rate": 0.3},
        "cancel": {"kind": "502", "count": 2},  # the first two cancels: retried
        "upload": {"kind": "502", "rate": 0.3},
        "media": {"kind": "reset", "rate": 0.2},
        "history": {"kind": "502", "rate": 0.3},
    }
    emulator.configure(faults=faults, fault_seed=7, scenario="normal", queue_seconds=0.3, run_seconds=0.5)
    image = tmp_path / "ref.png"
    image.write_bytes(make_test_image(48, 48, "png", "ref"))
    settings = dataclasses.replace(fal_env, limits=dataclasses.replace(Limits(), listing_delay=3.0))
    manager = JobManager(settings, store=JobStore(tmp_path / "jobs.sqlite3"), origin="t", legacy_file=False)
    manager.client.stream_silence = 1.0
    victims = set(range(1, 50, 12))  # cancelled while fal holds them queued, so every cancel reaches fal

    def submit(n: int) -> Job:
        if n % 10 == 0:  # a local file: an upload first
            return manager.submit("fal-ai/nano-banana-pro/edit", {"prompt": f"mixed {n}", "image_urls": [str(image)]})
        return manager.submit(MODEL, {"prompt": f"mixed {n}", "seed": n})

    try:
        jobs = [submit(n) for n in range(50) if n not in victims]
        for job in jobs:  # every POST of the others made (or the job ended) before fal starts holding new ones
            wait_for(lambda job=job: job.request_id or job.done, timeout=120)
        emulator.hold(True)
        held = [submit(n) for n in sorted(victims)]
        for job in held:  # cancels go to fal once it has the request
            wait_for(lambda job=job: job.request_id or job.done, timeout=120)
            job.cancel()
        emulator.release()
        jobs += held
        for job in jobs:
            job.wait(timeout=180)
        rows = manager.store.list()
    finally:
        manager.close()
    states = collections.Counter(job.state.value for job in jobs)
    assert all(job.state.terminal for job in jobs), states
    assert not any(job.state is JobState.UNKNOWN for job in jobs)
    assert states["CANCELLED"] == len(victims), states  # fal held them: each cancel arrived in time
    at_fal = set(emulator.jobs)
    stored = {r.request_id for r in rows if r.request_id}
    assert at_fal <= stored, at_fal - stored
    assert len(emulator.jobs) == len(stored)
    hits = emulator.state.faults.hits()
    reconciled = hits.get("submit", 0)  # each reply cut after fal took the request: UNKNOWN, then adopted
    assert set(hits) == set(faults), hits  # every route was hit at least once
    print(f"\nFIGURE 50 jobs, faults on every route (hits {hits}): states {dict(states)}, "
          f"{len(at_fal)} requests at the emulator, 0 unknown to the store, {reconciled} UNKNOWN then reconciled "
          "from fal's history, 0 sent twice")
