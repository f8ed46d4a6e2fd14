"""The job store: file safety, schema, corruption handling, inputs kept out of the database, leases."""

from __future__ import annotations

import base64
import logging
import multiprocessing
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from fal_notebook.errors import NotFoundError, StoreError
from fal_notebook.store import JobRecord, JobState, JobStore, new_job_id
from fal_notebook.store.schema import MIGRATIONS


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "home" / "jobs.sqlite3")
    yield s
    s.close()


def _record(**kw) -> JobRecord:
    kw.setdefault("id", new_job_id())
    kw.setdefault("endpoint", "fal-ai/nano-banana-pro")
    return JobRecord(**kw)


def _db_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_file_and_folder_are_private(tmp_path):
    path = tmp_path / "new" / "deeper" / "jobs.sqlite3"
    store = JobStore(path)
    store.insert(_record())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600
    store.close()


def test_schema_version_and_wal(store):
    assert store.schema_version == len(MIGRATIONS) >= 1
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer"):
        JobStore(path)


def test_corrupt_database_is_moved_aside(tmp_path, caplog):
    path = tmp_path / "jobs.sqlite3"
    garbage = b"this is not a database, " * 400
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="fal_notebook"):
        store = JobStore(path)
    aside = list(tmp_path.glob("jobs.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert str(aside[0]) in caplog.text and str(path) in caplog.text
    store.insert(_record())
    assert len(store.list()) == 1 and store.integrity_check() == "ok"
    store.close()


def test_round_trip_keeps_types(store):
    record = _record(arguments={"prompt": "a red fox", "num_images": 2}, tags=["a"], origin="nb.ipynb")
    store.insert(record)
    store.update(record.id, state=JobState.IN_QUEUE, request_id="req-1", queue_position=3, logs=["x"])
    got = store.get(record.id)
    assert got.state is JobState.IN_QUEUE and got.queue_position == 3 and got.logs == ["x"]
    assert got.arguments == {"prompt": "a red fox", "num_images": 2} and got.tags == ["a"]
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset().total_seconds() == 0
    raw = store._conn.execute("SELECT created_at FROM jobs").fetchone()[0]
    assert raw.endswith("+00:00")


def test_find_by_id_request_id_and_prefix(store):
    a = store.insert(_record(id="abc111000000", request_id="11111111-aaaa"))
    store.insert(_record(id="abc222000000", request_id="22222222-bbbb"))
    assert store.find("abc111000000").id == a.id
    assert store.find("11111111-aaaa").id == a.id
    assert store.find("abc1").id == a.id
    assert store.find("1111").id == a.id
    with pytest.raises(NotFoundError, match="several"):
        store.find("abc")
    with pytest.raises(NotFoundError, match="no job"):
        store.find("zzz")
    with pytest.raises(NotFoundError):
        store.find("%")


def test_request_id_is_unique(store):
    store.insert(_record(request_id="same"))
    with pytest.raises(sqlite3.IntegrityError):
        store.insert(_record(request_id="same"))


def test_list_filters_and_history(store):
    done = store.insert(_record(state=JobState.COMPLETED, origin="a"))
    live = store.insert(_record(state=JobState.IN_QUEUE, origin="b", endpoint="fal-ai/flux/dev"))
    assert {r.id for r in store.list()} == {done.id, live.id}
    assert [r.id for r in store.unfinished()] == [live.id]
    assert [r.id for r in store.list(origin="a")] == [done.id]
    assert [r.id for r in store.list(endpoint="fal-ai/flux/dev")] == [live.id]
    assert len(store.list(limit=1)) == 1


def test_log_tail_is_bounded():
    record = _record()
    record.add_logs(f"line {i}" for i in range(1000))
    record.add_logs(["x" * 10_000])
    assert len(record.logs) == 200 and record.logs[0] == "line 801" and len(record.logs[-1]) == 2000


def test_data_uris_are_never_stored_inline(store):
    payload = bytes(range(256)) * 200
    uri = "data:image/png;base64," + base64.b64encode(payload).decode()
    record = store.insert(_record(arguments={"image_urls": [uri, "https://x/y.png"], "prompt": "p"}))
    ref = store.get(record.id).arguments["image_urls"][0]
    assert set(ref) == {"$data_uri", "path", "header"}
    copy = store.inputs_dir / ref["$data_uri"]
    assert copy.read_bytes() == payload and copy.stat().st_mode & 0o777 == 0o600
    assert base64.b64encode(payload)[:200] not in _db_bytes(store.path)
    assert store.restore_inputs(store.get(record.id).arguments)["image_urls"] == [uri, "https://x/y.png"]


def test_bytes_become_input_files(store):
    record = store.insert(_record(arguments={"image_url": b"\x89PNG raw"}))
    path = store.get(record.id).arguments["image_url"]
    assert isinstance(path, str) and open(path, "rb").read() == b"\x89PNG raw"


def test_owner_update_is_conditional(store):
    record = store.insert(_record(owner="me", lease_until=time.time() + 60))
    assert store.update(record.id, owner="me", queue_position=1)
    assert not store.update(record.id, owner="someone-else", queue_position=2)
    assert store.get(record.id).queue_position == 1


def test_claims_and_leases(store):
    host = socket.gethostname()
    record = store.insert(_record(state=JobState.IN_QUEUE))
    a, b = f"{host}:1:a", f"{host}:2:b"
    assert store.claim(record.id, a, lease=60) is not None
    # pid 1 is alive on any Unix: B must wait for the lease
    assert store.claim(record.id, b, lease=60) is None
    assert store.renew(a, [record.id], lease=60) == {record.id}
    store.update(record.id, lease_until=time.time() - 1)
    assert store.claim(record.id, b, lease=60) is not None
    assert store.renew(a, [record.id], lease=60) == set()
    store.release(b)
    assert store.get(record.id).owner is None
    store.update(record.id, state=JobState.COMPLETED)
    assert store.claim(record.id, a, lease=60) is None


def test_claim_many_takes_the_free_jobs_in_order_and_leaves_the_rest(store):
    host = socket.gethostname()
    free = [store.insert(_record(state=JobState.IN_QUEUE)) for _ in range(3)]
    held = store.insert(_record(state=JobState.IN_QUEUE, owner=f"{host}:1:a", lease_until=time.time() + 60))
    done = store.insert(_record(state=JobState.COMPLETED))
    ids = [free[2].id, held.id, free[0].id, done.id, "nope", free[1].id]
    claimed = store.claim_many(ids, f"{host}:2:b", lease=60)
    assert [r.id for r in claimed] == [free[2].id, free[0].id, free[1].id]
    assert all(store.get(r.id).owner == f"{host}:2:b" for r in claimed)
    assert store.get(held.id).owner == f"{host}:1:a" and store.claim_many([], "x", lease=60) == []


def test_dead_owner_is_taken_over_at_once(store):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}:zz"
    record = store.insert(_record(state=JobState.IN_QUEUE, owner=dead, lease_until=time.time() + 600))
    claimed = store.claim(record.id, "me:1:x", lease=60)
    assert claimed is not None and claimed.owner == "me:1:x"


def test_result_fetch_is_recorded_once(store):
    record = store.insert(_record(state=JobState.IN_PROGRESS))
    assert store.claim(record.id, "o:1:a", lease=60)
    assert not store.begin_result_fetch(record.id, "other:1:b")
    assert store.begin_result_fetch(record.id, "o:1:a")
    store.update(record.id, result={"images": []})
    assert not store.begin_result_fetch(record.id, "o:1:a")
    assert store.get(record.id).result_fetches == 1


def _claim_all(path: str, owner: str, ids: list[str], queue) -> None:
    store = JobStore(path)
    queue.put([i for i in ids if store.claim(i, owner, lease=600)])
    store.close()


def test_two_processes_never_claim_the_same_job(store):
    ids = [store.insert(_record(state=JobState.IN_QUEUE)).id for _ in range(60)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    host = socket.gethostname()
    procs = [ctx.Process(target=_claim_all, args=(str(store.path), f"{host}:1:{n}", ids[::step], queue))
             for n, step in (("a", 1), ("b", -1))]  # pid 1 is alive: a claim is never taken from the other
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    claimed = results[0] + results[1]
    assert sorted(claimed) == sorted(ids)
    assert store.integrity_check() == "ok"


def _open_and_insert(path: str, go, queue) -> None:
    go.wait(30)
    try:
        store = JobStore(path)
        store.insert(_record())
        store.close()
        queue.put("ok")
    except Exception as exc:  # reported to the parent
        queue.put(repr(exc))


def test_processes_creating_the_store_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    go, queue = ctx.Event(), ctx.Queue()
    path = str(tmp_path / "fresh" / "jobs.sqlite3")
    procs = [ctx.Process(target=_open_and_insert, args=(path, go, queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    go.set()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert results == ["ok"] * 4
    store = JobStore(path)
    assert len(store.list()) == 4 and store.integrity_check() == "ok"
    store.close()


def test_cell_runs_remember_the_jobs_a_cell_submitted(store):
    assert store.cell_run("nb.ipynb", "k1") == []
    store.remember_cell_run("nb.ipynb", "k1", ["a1", "b2"])
    store.remember_cell_run("other.ipynb", "k1", ["c3"])
    assert store.cell_run("nb.ipynb", "k1") == ["a1", "b2"] and store.cell_run("other.ipynb", "k1") == ["c3"]
    store.remember_cell_run("nb.ipynb", "k1", ["d4"])  # the cell ran again with --new
    assert store.cell_run("nb.ipynb", "k1") == ["d4"]
