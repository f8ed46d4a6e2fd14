"""Store faults: a corrupt or truncated store is salvaged into a fresh one (the journal beside it gives back
rows no SQL read can reach) with the counts of rows saved and lost; a read-only store still serves reading
commands; store problems end in the documented exit code, not 70. Each test prints its figure."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fal_notebook.cli.exit_codes import EXIT_CODES, exit_code
from fal_notebook.errors import StoreError
from fal_notebook.store import JobRecord, JobStore, new_job_id
from fal_notebook.store.records import JobState


def _fill(path: Path, count: int = 40) -> list[str]:
    store = JobStore(path)
    ids = []
    for n in range(count):
        record = store.insert(JobRecord(id=new_job_id(), endpoint="fal-ai/flux/dev",
                                        arguments={"prompt": f"row {n} " + "x" * 300}, origin="t"))
        store.update(record.id, request_id=f"req-{n}", state=JobState.COMPLETED, result={"images": []})
        ids.append(record.id)
    store.close()
    return ids


def _page_of_root(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return root, size


def _damage_root(path: Path) -> None:
    root, size = _page_of_root(path)
    with path.open("r+b") as handle:
        handle.seek((root - 1) * size)
        handle.write(b"\xde\xad" * (size // 2))


@pytest.mark.parametrize("journal", [True, False])
def test_a_store_whose_table_root_is_destroyed_is_salvaged(tmp_path, caplog, journal):
    path = tmp_path / "jobs.sqlite3"
    ids = _fill(path)
    _damage_root(path)
    if not journal:
        path.with_name("jobs.sqlite3.journal").unlink()
    store = JobStore(path)
    report = store.salvage
    assert report is not None and list(tmp_path.glob("jobs.sqlite3.corrupt-*"))
    if journal:
        assert report == {"saved": 40, "lost": 0, "from": report["from"]}
        rows = {r.id: r for r in store.list()}
        assert set(rows) == set(ids) and all(r.request_id and r.state is JobState.COMPLETED for r in rows.values())
    else:  # SQL alone cannot read a table whose root page is gone
        assert report["saved"] == 0
    assert "saved into a new store" in caplog.text and json.loads(store.meta("salvage"))["saved"] == report["saved"]
    assert store.integrity_check() == "ok"
    print(f"\nFIGURE root page of the jobs table destroyed, journal {'kept' if journal else 'deleted'}: "
          f"{report['saved']} rows saved, {report['lost']} lost (of 40)")


def test_the_journal_stays_bounded_and_still_salvages_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr("fal_notebook.store.journal.COMPACT_AT", 20_000)
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    ids = []
    for n in range(40):  # each row is written twice, with ~1 KB of input: ~80 KB appended in all
        record = store.insert(JobRecord(id=new_job_id(), endpoint="fal-ai/flux/dev",
                                        arguments={"prompt": f"row {n} " + "y" * 1000}, origin="t"))
        store.update(record.id, request_id=f"req-{n}", state=JobState.COMPLETED, result={"images": []})
        ids.append(record.id)
        assert path.with_name("jobs.sqlite3.journal").stat().st_size <= 2 * max(20_000, 40 * 1300)
    lines = path.with_name("jobs.sqlite3.journal").read_text().splitlines()
    assert len(lines) < 80  # compacted at least once: fewer lines than writes
    store.close()
    _damage_root(path)
    salvaged = JobStore(path)
    assert salvaged.salvage == {"saved": 40, "lost": 0, "from": salvaged.salvage["from"]}
    rows = {r.id: r for r in salvaged.list()}
    assert set(rows) == set(ids) and all(r.request_id and r.state is JobState.COMPLETED for r in rows.values())
    print(f"\nFIGURE journal bounded: {len(lines)} lines for 80 row writes, 40/40 rows salvaged")


def test_a_truncated_store_is_salvaged(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    ids = _fill(path, 60)
    _page_of_root(path)  # checkpoint: everything is in the main file
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    store = JobStore(path)
    assert store.salvage is not None and store.salvage["saved"] == 60 and store.salvage["lost"] == 0
    assert {r.id for r in store.list()} == set(ids)
    print(f"\nFIGURE store truncated to half ({size // 2} of {size} bytes): {store.salvage['saved']} rows saved, "
          f"{store.salvage['lost']} lost")


def test_a_torn_journal_line_is_skipped(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    _fill(path, 5)
    with path.with_name("jobs.sqlite3.journal").open("a") as handle:
        handle.write('{"id": "torn", "set": {"state"')
    _damage_root(path)
    assert JobStore(path).salvage["saved"] == 5


def test_a_read_only_store_serves_reading_commands(tmp_path, monkeypatch):
    """A home this user cannot write (simulated: root ignores file modes): listing works, writing is a
    StoreError with its documented exit code."""
    path = tmp_path / "jobs.sqlite3"
    ids = _fill(path, 3)

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("fal_notebook.store.db._private_file", refuse)
    store = JobStore(path)
    assert store.read_only and {r.id for r in store.list()} == set(ids)
    assert store.find(ids[0]).request_id == "req-0"
    with pytest.raises(StoreError, match="read-only") as caught:
        store.update(ids[0], tags=["x"])
    assert exit_code(caught.value) == 10
    print("\nFIGURE read-only store: 3 jobs listed, a write refused with exit code 10")


def test_a_store_that_cannot_be_opened_is_a_store_error(tmp_path, monkeypatch):
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file")
    with pytest.raises(StoreError, match="cannot be opened") as caught:
        JobStore(folder / "jobs.sqlite3")
    assert exit_code(caught.value) == 10 and 10 in EXIT_CODES


def test_reading_commands_work_on_a_read_only_home(fal_env, monkeypatch, capsys):
    from fal_notebook.cli import main

    ids = _fill(fal_env.store_path, 3)
    JobStore(fal_env.store_path).update(ids[0], state=JobState.IN_QUEUE)  # an unfinished one is not resumed

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("fal_notebook.store.db._private_file", refuse)
    assert main(["list", "--all"]) == 0
    listed = capsys.readouterr().out
    assert all(job_id in listed for job_id in ids)
    assert main(["status", ids[1]]) == 0 and "req-1" in capsys.readouterr().out
    code = main(["submit", "fal-ai/flux/dev", '{"prompt": "x"}'])
    assert code == 10 and "read-only" in capsys.readouterr().err
    print("\nFIGURE read-only home: `list --all` and `status` exit 0; `submit` exits 10 (store read-only)")
