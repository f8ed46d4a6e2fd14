"""A group (``--n`` / ``--sweep``) is one step for the runtime: each request checked once, every row stored in
one transaction, the whole group handed to the runtime loop in one call; one bad request stops all of them
before anything is stored or sent. Counts (SQL statements, validations, hand-overs, the emulator's record), not
times."""

from __future__ import annotations

from collections import Counter

import pytest

import fal_notebook.catalog.validate as validation
from fal_notebook import jobs as J
from fal_notebook.errors import ValidationError
from fal_notebook.runtime import JobManager, as_completed
from fal_notebook.store import JobState, JobStore

MODEL = "fal-ai/fast-sdxl"
SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}
GROUP = 40


class TracedStore(JobStore):
    """Records every SQL statement its connection runs (SQLite's trace callback), in order."""

    statements: list[str] = []

    def _connect(self):
        conn = super()._connect()
        conn.set_trace_callback(TracedStore.statements.append)
        return conn


def transactions(statements: list[str]) -> list[list[str]]:
    """The statements of each ``BEGIN IMMEDIATE`` … ``COMMIT`` block."""
    blocks, current = [], None
    for sql in statements:
        if sql == "BEGIN IMMEDIATE":
            current = []
        elif sql == "COMMIT" and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(sql)
    return blocks


def inserts(block: list[str]) -> int:
    return sum(sql.startswith("INSERT INTO jobs") for sql in block)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    """fast-sdxl's schema is fetched here: what is registered goes with the test, as in a fresh process."""
    from fal_notebook import catalog

    monkeypatch.setattr(catalog, "_registered", {})


@pytest.fixture
def counted_validations(monkeypatch):
    calls = Counter()
    real = validation.validate

    def counting(model, arguments, **options):
        calls[str(arguments.get("seed"))] += 1
        return real(model, arguments, **options)

    monkeypatch.setattr(validation, "validate", counting)
    return calls


def test_a_group_is_checked_once_stored_in_one_transaction_and_handed_over_once(fal_env, emulator, tmp_path,
                                                                                 counted_validations):
    TracedStore.statements = []
    manager = JobManager(fal_env, store=TracedStore(tmp_path / "s.sqlite3"), legacy_file=False,
                         auto_resume=False).start()
    try:
        manager.estimate(MODEL, [SMALL])  # the price and the schema are cached before counting
        manager.model_spec(MODEL)
        hand_overs = []
        submit = manager.portal.submit
        manager.portal.submit = lambda coro: hand_overs.append(coro) or submit(coro)
        TracedStore.statements.clear()
        group = manager.submit_many(MODEL, [{**SMALL, "seed": n} for n in range(GROUP)], confirm=True)
        during = list(TracedStore.statements)
        calls = [getattr(coro, "__qualname__", repr(coro)) for coro in hand_overs]
        finished = list(as_completed(group, timeout=120))
    finally:
        manager.close()
    assert len(finished) == GROUP and all(job.state is JobState.COMPLETED for job in group)
    assert counted_validations == Counter({str(n): 1 for n in range(GROUP)})  # each request checked once
    stored = [block for block in transactions(during) if inserts(block)]
    assert len(stored) == 1 and inserts(stored[0]) == GROUP, [inserts(b) for b in stored]
    assert len(calls) == 1, calls  # the whole group reached the runtime's loop in one call
    posts = [r for r in emulator.requests if r.method == "POST" and r.path.startswith("/fal-ai/")]
    assert len(posts) == GROUP  # every job sent exactly once
    rows = manager.store.list(origin=None)
    assert len(rows) == GROUP and all(row.submit_attempts == 1 and row.request_id for row in rows)
    assert len(manager.store.journal.replay()) == GROUP  # the backup journal holds every row too


def test_the_magic_path_validates_each_request_once(fal_env, emulator, counted_validations):
    group = J.submit_group(MODEL, [{**SMALL, "seed": n} for n in range(6)], ("seed",), confirm=True)
    assert counted_validations == Counter({str(n): 1 for n in range(6)})
    assert all(job.state is JobState.COMPLETED for job in group.wait(60))


def test_one_bad_request_in_a_group_stores_and_sends_nothing(fal_env, emulator, tmp_path):
    manager = JobManager(fal_env, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False)
    requests = [{**SMALL, "seed": n} for n in range(7)]
    requests[2] = {**requests[2], "num_inference_steps": "many"}
    requests[5] = {**requests[5], "image_size": "enormous"}
    try:
        with pytest.raises(ValidationError) as caught:
            manager.submit_many(MODEL, requests, confirm=True)
        rows = manager.store.list(origin=None)
    finally:
        manager.close()
    text = str(caught.value)
    assert "request 3 of 7: num_inference_steps" in text and "request 6 of 7: image_size" in text, text
    assert len(caught.value.problems) == 2
    assert rows == []
    assert not [r for r in emulator.requests if r.method == "POST"]  # nothing sent, not even the good six
