"""Durability across processes: a SIGKILLed submitter loses nothing, two processes share one store safely.

The children are real interpreters (``subprocess``) talking to the session's emulator; the parent reads the
store and the emulator's request record, and waits on conditions, never on time.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fal_notebook.store import JobState, JobStore

pytestmark = pytest.mark.slow

MODEL = "fal-ai/flux/dev"

SUBMIT_AND_HANG = f"""
import threading
import fal_notebook.jobs as J
for i in range(20):
    J.submit("{MODEL}", {{"prompt": f"fox {{i}}", "image_size": "square"}})
print("submitted", flush=True)
threading.Event().wait()
"""

RESUME_AND_WAIT = """
import fal_notebook.jobs as J
resumed = J.resume()
J.wait(timeout=120)
print(len(resumed), flush=True)
"""

RESUBMIT_AND_WAIT = """
import fal_notebook.jobs as J
again = [J.resubmit(j.id) for j in J.jobs(state="NOT_RECEIVED")]
J.wait(again, timeout=120)
print(len(again), flush=True)
"""

SUBMIT_50_WHILE_STEALING = f"""
import sys
import fal_notebook.jobs as J
from fal_notebook.errors import FalTimeoutError
print("ready", flush=True)
sys.stdin.readline()
mine = [J.submit("{MODEL}", {{"prompt": f"{{sys.argv[1]}} {{i}}", "image_size": "square"}}) for i in range(50)]
stolen = set()
while not all(job.done for job in mine):
    stolen |= {{job.id for job in J.resume(all=True)}} - {{job.id for job in mine}}
    try:
        J.wait(mine, timeout=0.2)
    except FalTimeoutError:
        pass
print(len(stolen), flush=True)
"""


def _spawn(code: str, env: dict[str, str], *args: str, stdin=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_all_completed(store: JobStore, count: int) -> list:
    rows = store.list()
    assert len(rows) == count
    assert [r.state for r in rows] == [JobState.COMPLETED] * count, [(r.id, r.state, r.error) for r in rows]
    assert len({r.request_id for r in rows}) == count
    for row in rows:
        assert row.files and all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in row.files)
    assert store.integrity_check() == "ok"
    return rows


def test_sigkill_mid_run_then_resume_loses_nothing(fal_env, emulator, child_env, wait_for):
    emulator.hold(True)  # every accepted job stays IN_QUEUE: the kill lands mid-run
    victim = _spawn(SUBMIT_AND_HANG, child_env)
    store = JobStore(fal_env.store_path)
    try:
        wait_for(lambda: len(store.list()) == 20 and sum(bool(r.request_id) for r in store.list()) >= 5,
                 timeout=60)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        assert victim.returncode == -signal.SIGKILL
        assert not any(r.state.terminal for r in store.list())
        emulator.release()
        child_env["FAL_NOTEBOOK_LISTING_DELAY"] = "2"  # POSTs cut by the kill are settled from fal's history
        survivor = _spawn(RESUME_AND_WAIT, child_env)
        out, err = survivor.communicate(timeout=180)
        assert survivor.returncode == 0, err
        assert int(out.strip()) == 20
        # a POST the kill cut short was adopted if fal got it, else NOT_RECEIVED: never sent twice
        at_fal = {j.request_id for j in emulator.jobs.values()}
        rows = store.list()
        assert {r.request_id for r in rows if r.request_id} == at_fal
        assert all(r.state is JobState.NOT_RECEIVED for r in rows if not r.request_id)
        again = _spawn(RESUBMIT_AND_WAIT, child_env)
        out, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
        _assert_all_completed(store, 20)
        assert len(emulator.jobs) == 20  # one request at fal per job
    finally:
        victim.kill()
        store.close()
    assert JobStore(fal_env.store_path).integrity_check() == "ok"


def test_two_processes_share_one_store(fal_env, emulator, child_env):
    children = [_spawn(SUBMIT_50_WHILE_STEALING, child_env, name, stdin=subprocess.PIPE) for name in "ab"]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # both start submitting together
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=240) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "0"  # neither ever took a job the other was following
    store = JobStore(fal_env.store_path)
    rows = _assert_all_completed(store, 100)
    store.close()
    assert all(r.result_fetches == 1 for r in rows)
    posts = [r for r in emulator.requests if r.method == "POST" and r.path == f"/{MODEL}"]
    assert len(posts) == 100
    result_gets = collections.Counter(r.path.rsplit("/", 1)[-1] for r in emulator.requests
                                      if r.method == "GET" and "/requests/" in r.path
                                      and not r.path.endswith(("/status", "/stream")))
    assert result_gets == {r.request_id: 1 for r in rows}
