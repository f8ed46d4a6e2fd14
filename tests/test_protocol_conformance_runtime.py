"""The job runtime (``JobManager``) against fal's real answers, served by an ``httpx.MockTransport`` handler.

Each test scripts one request's life the way fal's queue tells it (protocol reference §1.3–§1.7, §2, §6): what
the submit answered, what status and the SSE stream said, what the result endpoint returned. The job's final
state, its stored row and the requests the handler saw are the assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from test_protocol_conformance import KEY, NGINX_502, RID, ok, urls
from test_protocol_conformance_io import PNG

from fal_notebook.client import AsyncQueueClient, RetryPolicy
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.errors import JobFailedError, ResultExpiredError
from fal_notebook.runtime import JobManager
from fal_notebook.store import JobState, JobStore

MODEL = "fal-ai/flux/dev/image-to-image"  # a sub-path model: status must use the returned URLs

SEED = 15860307465884635512


def body(state: str, **extra: object) -> dict:
    return {"status": state, "request_id": RID, **urls(), **extra}


class Queue:
    """One request's script: ``submit`` answer, a list of status answers (the last repeats), the result
    answer. Paths fal would refuse (a sub-path before ``/requests/``) answer 405, as fal's router does."""

    def __init__(self, submit: httpx.Response, statuses: list[httpx.Response] | Callable[[], httpx.Response],
                 result: httpx.Response | list[httpx.Response],
                 stream: Callable[[], httpx.Response] | None = None,
                 cancel: httpx.Response | None = None) -> None:
        self.submit, self.statuses, self.result, self.stream = submit, statuses, result, stream
        self.cancel = cancel or ok({"status": "CANCELLATION_REQUESTED"}, 202)
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            self.requests.append(request)
        path, host = request.url.path, request.url.host
        if host != "queue.fal.run":
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if request.method == "POST" and path == f"/{MODEL}":
            return self.submit
        if path.startswith(f"/{MODEL}/requests/"):
            return ok({"detail": "Method Not Allowed"}, 405)
        if path.endswith("/status/stream"):
            return self.stream() if self.stream else ok({"detail": "Not Found"}, 404)
        if path.endswith("/status"):
            if callable(self.statuses):
                return self.statuses()
            with self._lock:
                return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if path.endswith("/cancel"):
            return self.cancel
        if isinstance(self.result, list):
            with self._lock:
                return self.result.pop(0) if len(self.result) > 1 else self.result[0]
        return self.result

    def seen(self, method: str, suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(suffix)]


@pytest.fixture
def manager_for(tmp_path: Path) -> Iterator[Callable[[Queue], JobManager]]:
    made: list[JobManager] = []

    def make(queue: Queue) -> JobManager:
        settings = Settings(key=ApiKey(KEY), endpoints=Endpoints(), home=tmp_path / "home",
                            outputs=tmp_path / "out")

        async def no_wait(_: float) -> None:
            return None

        client = AsyncQueueClient(settings, transport=httpx.MockTransport(queue),
                                  retry=RetryPolicy(max_attempts=3, sleep=no_wait))
        manager = JobManager(settings, store=JobStore(tmp_path / "jobs.sqlite3"), origin="conformance",
                             client=client, legacy_file=False, auto_resume=False)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()
        manager.store.close()


def submitted(state: str = "IN_QUEUE") -> httpx.Response:
    extra = {"queue_position": 0} if state == "IN_QUEUE" else {}
    return ok({**body(state), **extra})


def test_submit_answering_completed_at_once(manager_for) -> None:
    """§1.3: a fast model may be COMPLETED in submit's reply; the job still fetches its result once and
    downloads every image (several CDNs, no key), keeping a seed beyond int64 exact."""
    output = {"images": [{"url": "https://v3.fal.media/files/a/one.png", "content_type": "image/png"},
                         {"url": "https://fal.media/files/b/two.png", "content_type": "image/png"},
                         {"url": "https://storage.googleapis.com/falserverless/c/three.png"}],
              "seed": SEED, "has_nsfw_concepts": [False] * 3, "timings": {"inference": 1.2}}
    queue = Queue(submitted("COMPLETED"), [ok(body("COMPLETED", logs=None, metrics={"inference_time": 1.2}))],
                  httpx.Response(200, content=json.dumps(output).encode(),
                                 headers={"content-type": "application/json", "x-fal-request-id": RID}))
    manager = manager_for(queue)
    job = manager.submit(MODEL, {"prompt": "a fox", "image_url": "https://x.example/in.png"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED, job.error
    assert job.request_id == RID and job.urls == urls()
    assert len(job.files) == 3 and all(p.read_bytes() == PNG for p in job.files)
    assert len(queue.seen("GET", f"/requests/{RID}")) == 1  # the result, exactly once
    assert all("/dev/image-to-image/requests" not in str(r.url) for r in queue.requests)
    keyed = {r.url.host for r in queue.requests if "authorization" in r.headers}
    assert keyed - {"api.fal.ai"} == {"queue.fal.run"}  # api.fal.ai: the price lookup (an API origin too)
    row = JobStore(manager.store.path).get(job.id)
    assert row.result["seed"] == SEED and type(row.result["seed"]) is int
    assert row.status_url == urls()["status_url"] and row.result_fetches == 1


def test_status_404_means_the_request_expired(manager_for) -> None:
    """§2: fal forgets a request (1 h after completion): status answers 404 ``NOT_FOUND`` → EXPIRED."""
    queue = Queue(submitted(), [ok({"status": "NOT_FOUND"}, 404)], ok({}, 404))
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.EXPIRED and isinstance(job.error, ResultExpiredError)
    assert queue.seen("GET", f"/requests/{RID}") == []  # no result fetch for a request fal forgot


def test_422_result_ends_failed_with_the_detail_list(manager_for) -> None:
    """§1.6 / P5: status says COMPLETED (no FAILED exists); the result GET returns the model's 422."""
    detail = [{"loc": ["body", "prompt"], "msg": "The content could not be processed because it was flagged.",
               "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation",
               "ctx": {}, "input": "x"}]
    queue = Queue(submitted(), [ok(body("IN_PROGRESS", logs=None, metrics={}), 202),
                                ok(body("COMPLETED", logs=None, metrics={}))],
                  ok({"detail": detail}, 422))
    manager = manager_for(queue)
    job = manager.submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.FAILED
    error = job.error
    assert isinstance(error, JobFailedError) and error.status_code == 422 and error.detail == detail
    assert "prompt: The content could not be processed" in str(error) and error.request_id == RID
    stored = JobStore(manager.store.path).get(job.id).error
    assert stored["detail"] == detail and stored["class"] == "JobFailedError"
    with pytest.raises(JobFailedError):
        job.result(timeout=0)


def test_completed_with_error_then_flat_504(manager_for) -> None:
    """§1.4 / §2: COMPLETED carrying ``error``/``error_type``; the result is the flat 504 body with the
    ``X-Fal-Error-Type`` header; fetched once, never retried."""
    queue = Queue(submitted("IN_PROGRESS"),
                  [ok(body("COMPLETED", logs=[], metrics={}, error="Request timed out",
                           error_type="request_timeout"))],
                  ok({"detail": "Request timed out", "error_type": "request_timeout"}, 504,
                     **{"X-Fal-Error-Type": "request_timeout"}))
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.FAILED and job.error.error_type == "request_timeout"
    assert len(queue.seen("GET", f"/requests/{RID}")) == 1


def test_logs_from_the_stream_in_both_entry_shapes(manager_for) -> None:
    """§1.5: the runtime follows by SSE (deltas, ``: ping``), in both log-entry shapes."""
    events = [
        body("IN_QUEUE", queue_position=1),
        body("IN_PROGRESS", logs=[{"message": "step 1", "level": "INFO", "source": "USER",
                                   "timestamp": "2025-01-01T00:00:01Z"}], metrics={}),
        body("IN_PROGRESS", logs=[], metrics={}),
        body("IN_PROGRESS", logs=[{"timestamp": "2024-12-20T15:37:17.12", "message": "step 2", "labels": {}}],
             metrics={}),
        body("COMPLETED", logs=[], metrics={"inference_time": 0.8}),
    ]
    text = ": ping\n\n" + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    queue = Queue(submitted(), [ok(body("IN_QUEUE", queue_position=1), 202)], ok({"images": []}),
                  stream=lambda: httpx.Response(200, text=text, headers={"content-type": "text/event-stream"}))
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED and job.logs == ["step 1", "step 2"]
    assert job.inference_time == 0.8 and queue.seen("GET", "/status") == []


def test_a_flaky_gateway_does_not_end_a_running_job(manager_for, monkeypatch) -> None:
    """§4: ingress 502s and 429s on status outlast the client's retries; fal's job is still running, so
    the runtime keeps following it instead of calling it FAILED."""
    from fal_notebook.runtime import steps as _follow

    monkeypatch.setattr(_follow, "transient_delay", lambda failures: 0.0)
    ingress = httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html"})
    limited = httpx.Response(429, json={"detail": "Too many requests"})
    queue = Queue(submitted(), [ingress] * 4 + [limited] * 4 + [ok(body("COMPLETED", logs=None, metrics={}))],
                  ok({"images": []}, **{"x-fal-billable-units": "1"}))
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED, job.error
    assert len(queue.seen("GET", "/status")) == 9


def test_result_behind_a_flaky_gateway_is_still_fetched(manager_for, monkeypatch) -> None:
    """An ingress 502 on the result GET is not the model's failure: asked again, the output arrives."""
    from fal_notebook.runtime import steps as _follow

    monkeypatch.setattr(_follow, "transient_delay", lambda failures: 0.0)
    ingress = httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html"})
    queue = Queue(submitted("COMPLETED"), [ok(body("COMPLETED", logs=None, metrics={}))],
                  [ingress] * 3 + [ok({"images": [], "seed": 7})])
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED, job.error
    assert job.result(timeout=0) == {"images": [], "seed": 7}
    assert len(queue.seen("GET", f"/requests/{RID}")) == 4


def test_cancel_answered_202(manager_for, wait_for) -> None:
    queue = Queue(submitted(), [ok(body("IN_QUEUE", queue_position=5), 202)], ok({}))
    manager = manager_for(queue)
    job = manager.submit(MODEL, {"prompt": "x"}, validate=False)
    wait_for(lambda: job.request_id is not None)
    assert job.cancel(timeout=30) == "CANCELLATION_REQUESTED"
    job.wait(timeout=30)
    assert job.state is JobState.CANCELLED
    (put,) = queue.seen("PUT", "/cancel")
    assert put.url == httpx.URL(urls()["cancel_url"]) and put.content == b""


def test_cancel_too_late_lets_the_job_finish(manager_for, wait_for) -> None:
    """§1.7: 400 ``ALREADY_COMPLETED`` — the request ran to the end; its result is fetched as usual."""
    cancelled = threading.Event()

    def status() -> httpx.Response:
        if cancelled.is_set():
            return ok(body("COMPLETED", logs=None, metrics={}))
        return ok(body("IN_PROGRESS", logs=None, metrics={}), 202)

    queue = Queue(submitted("IN_PROGRESS"), status, ok({"images": [], "seed": 3}),
                  cancel=ok({"status": "ALREADY_COMPLETED"}, 400))
    job = manager_for(queue).submit(MODEL, {"prompt": "x"}, validate=False)
    wait_for(lambda: job.state is JobState.IN_PROGRESS)
    assert job.cancel(timeout=30) == "ALREADY_COMPLETED"
    cancelled.set()
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED and job.result(timeout=0)["seed"] == 3


def test_sync_mode_data_uris_become_image_files(manager_for) -> None:
    """§6: with ``sync_mode`` the output ``url`` is a ``data:`` URI (here without ``content_type``)."""
    import base64

    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    queue = Queue(submitted("COMPLETED"), [ok(body("COMPLETED", logs=None, metrics={}))],
                  ok({"images": [{"url": uri, "width": 1, "height": 1}], "seed": 1}))
    job = manager_for(queue).submit(MODEL, {"prompt": "x", "sync_mode": True}, validate=False)
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED, job.error
    (path,) = job.files
    assert path.suffix == ".png" and path.read_bytes() == PNG and [im.size for im in job.images] == [(1, 1)]
    # nothing fetched for the data: URI (api.fal.ai: the price lookup)
    assert all(r.url.host in ("queue.fal.run", "api.fal.ai") for r in queue.requests)
