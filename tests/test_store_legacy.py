"""Importing the original skill's fal-pending.json: once, never changing or wiping the file."""

from __future__ import annotations

import json
import logging

import pytest

from fal_notebook.store import JobState, JobStore
from fal_notebook.store.legacy import import_legacy, legacy_pending_path

LEGACY = {
    "requests": [
        {"request_id": "8f3e-aaaa", "model_id": "fal-ai/nano-banana-pro",
         "input": {"prompt": "a red fox", "image_url": "data:image/png;base64,aGVsbG8gd29ybGQ="},
         "status": "IN_QUEUE", "submitted_at": "2026-01-02T03:04:05.123456",
         "updated_at": "2026-01-02T03:04:06", "queue_position": 3},
        {"request_id": "8f3e-bbbb", "model_id": "fal-ai/kling-video/o3/pro/video-to-video/edit",
         "input": {"prompt": "snow"}, "status": "UNKNOWN", "submitted_at": "2026-01-02T03:05:00",
         "updated_at": "2026-01-02T03:05:00", "error": "boom"},
        {"request_id": "8f3e-cccc", "model_id": "fal-ai/flux/dev", "input": {"prompt": "x"},
         "status": "COMPLETED", "submitted_at": "2026-01-02T03:05:00", "updated_at": "2026-01-02T03:06:00",
         "result": {"images": [{"url": "https://v3.fal.media/files/a.png"}]}},
    ]
}


def _urls(endpoint: str, request_id: str) -> tuple[str, str, str]:
    base = f"https://queue.example/{endpoint}/requests/{request_id}"
    return f"{base}/status", base, f"{base}/cancel"


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "home" / "jobs.sqlite3")
    yield s
    s.close()


def test_path_from_env(tmp_path):
    assert legacy_pending_path({"FAL_PENDING_FILE": str(tmp_path / "p.json")}) == tmp_path / "p.json"
    assert legacy_pending_path({}).name == "fal-pending.json"


def test_valid_file_is_imported_once(store, tmp_path):
    path = tmp_path / "fal-pending.json"
    path.write_text(json.dumps(LEGACY))
    before = path.read_bytes()
    assert import_legacy(store, path, urls=_urls) == 3
    assert path.read_bytes() == before
    rows = {r.request_id: r for r in store.list()}
    fox = rows["8f3e-aaaa"]
    assert fox.state is JobState.IN_QUEUE and fox.endpoint == "fal-ai/nano-banana-pro"
    assert fox.status_url.endswith("/requests/8f3e-aaaa/status") and fox.cancel_url.endswith("/cancel")
    assert fox.queue_position == 3 and "legacy" in fox.tags
    assert fox.created_at.utcoffset().total_seconds() == 0 and fox.created_at.hour == 3
    assert fox.arguments["image_url"]["$data_uri"]  # the data URI went to inputs/
    assert rows["8f3e-bbbb"].state is JobState.IN_QUEUE
    assert rows["8f3e-cccc"].state is JobState.COMPLETED and rows["8f3e-cccc"].result["images"]
    # a second start (even with new content) imports nothing more
    LEGACY["requests"].append({"request_id": "new", "model_id": "fal-ai/flux/dev"})
    path.write_text(json.dumps(LEGACY))
    assert import_legacy(store, path, urls=_urls) == 0
    LEGACY["requests"].pop()
    assert len(store.list()) == 3


def test_missing_file_is_not_an_error(store, tmp_path):
    assert import_legacy(store, tmp_path / "absent.json") == 0


@pytest.mark.parametrize("content", [
    b'{"requests": [{"request_id": "x", "model_id": "fal-ai/flux/dev"}',  # truncated write
    b'{"requests": [{"model_id": "fal-ai/flux/dev"}]}',  # no request id
    b"\xff\xfe not utf-8",
    b"[]",
])
def test_corrupt_file_is_left_byte_identical(store, tmp_path, caplog, content):
    path = tmp_path / "fal-pending.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="fal_notebook"):
        assert import_legacy(store, path) == 0
    assert path.read_bytes() == content
    assert str(path) in caplog.text and "left untouched" in caplog.text
    assert store.list() == []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fal_notebook"):
        assert import_legacy(store, path) == 0
    assert caplog.text == ""  # warned once per content, not on every start
    path.write_text(json.dumps(LEGACY))  # fixed by the user: now it is imported
    assert import_legacy(store, path) == 3
