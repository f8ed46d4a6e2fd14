"""The queue client against fal's real answers (protocol reference §1–§2, §4), not the emulator's.

Every body below is a shape fal is recorded to send: submit answering IN_PROGRESS or COMPLETED at once,
202 vs 200 status, ``logs: null``, both log-entry shapes, ``metrics: {}``, unknown extra fields, the URLs
submit returns (reduced to ``owner/app``) for a sub-path model, cancel's 202/400/404, the two error body
formats, ingress HTML vs app JSON 5xx. The server is an ``httpx.MockTransport`` handler; the requests it saw
are what the tests assert on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fal_notebook.client import AsyncQueueClient, RequestHandle, RetryPolicy
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.errors import AuthError, JobFailedError, NotFoundError, RequestError, ResultExpiredError

KEY = "0a1b2c3d-key-id:5e6f7a8b9c0d-secret"
Q = "https://queue.fal.run"
RID = "80e732af-6a39-4a5d-b6d2-1a7c9a3a6b64"
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

Handler = Callable[[httpx.Request], httpx.Response]


def urls(app: str = "fal-ai/flux", rid: str = RID, host: str = Q) -> dict[str, str]:
    base = f"{host}/{app}/requests/{rid}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def status_body(state: str, **extra: object) -> dict:
    return {"status": state, "request_id": RID, **urls(), **extra}


class Fal:
    """Routes ``(method, path)`` to answers; a list answers in turn (the last one repeats). ``answer``, when
    given, answers everything instead (for tests where the host matters)."""

    def __init__(self, routes: dict[tuple[str, str], object], answer: Handler | None = None) -> None:
        self.routes, self.answer = routes, answer
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.answer is not None:
            return self.answer(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:  # fal's router: an extra segment before /requests/ is an unknown route
            code = 405 if "/requests/" in request.url.path else 404
            return httpx.Response(code, json={"detail": "Method Not Allowed" if code == 405 else "Not Found"})
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return answer(request) if callable(answer) else answer

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    def client(self, key: str | None = KEY, attempts: int = 4) -> AsyncQueueClient:
        settings = Settings(key=ApiKey(key) if key else None, endpoints=Endpoints(), home=Path("/nonexistent"))
        retry = RetryPolicy(max_attempts=attempts, sleep=self.sleep, rng=lambda: 0.5)
        return AsyncQueueClient(settings, transport=httpx.MockTransport(self), retry=retry)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def ok(body: object, code: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(code, json=body, headers={"x-fal-request-id": RID, **headers})


def run(coro):
    return asyncio.run(coro)


def handle(app: str = "fal-ai/flux", endpoint: str = "fal-ai/flux/dev") -> RequestHandle:
    return RequestHandle(RID, endpoint, **urls(app))


# -- §1.2 / §1.3 submit ----------------------------------------------------------------------------------------
def test_sub_path_model_submits_to_the_full_id_and_follows_the_returned_urls() -> None:
    """§1.2, P1: submit goes to the full id; status/result/cancel to the URLs fal returned, never to a
    rebuilt ``…/dev/image-to-image/requests/…`` path (405 on fal)."""
    submitted = {"status": "IN_QUEUE", "request_id": RID, **urls(), "queue_position": 0}
    fal = Fal({
        ("POST", "/fal-ai/flux/dev/image-to-image"): ok(submitted),
        ("GET", f"/fal-ai/flux/requests/{RID}/status"): ok(status_body("COMPLETED", logs=None,
                                                                        metrics={"inference_time": 2.51})),
        ("GET", f"/fal-ai/flux/requests/{RID}"): ok({"images": [], "seed": 1}),
        ("PUT", f"/fal-ai/flux/requests/{RID}/cancel"): ok({"status": "ALREADY_COMPLETED"}, 400),
    })
    client = fal.client()

    async def flow():
        h, first = await client.submit("fal-ai/flux/dev/image-to-image", {"prompt": "x"})
        return h, first, await client.status(h), await client.result(h), await client.cancel(h)

    h, first, status, result, cancelled = run(flow())
    assert fal.paths() == [
        "POST /fal-ai/flux/dev/image-to-image",
        f"GET /fal-ai/flux/requests/{RID}/status",
        f"GET /fal-ai/flux/requests/{RID}",
        f"PUT /fal-ai/flux/requests/{RID}/cancel",
    ]
    assert h.endpoint_id == "fal-ai/flux/dev/image-to-image" and h.status_url == urls()["status_url"]
    assert first.state == "IN_QUEUE" and first.queue_position == 0
    assert status.done and status.inference_time == 2.51 and status.logs == []
    assert result == {"images": [], "seed": 1} and cancelled == "ALREADY_COMPLETED"
    assert fal.requests[3].content == b""  # cancel carries no body (§1.7)


def test_returned_urls_win_even_when_they_cannot_be_rebuilt() -> None:
    """fal-js #214: an owner/app rebuild 404s for some ids; whatever path fal returns is used verbatim."""
    odd = urls("xai/grok-imagine-image/quality", rid="q-1")
    fal = Fal({
        ("POST", "/xai/grok-imagine-image/quality/edit"): ok({"status": "IN_QUEUE", "request_id": "q-1", **odd}),
        ("GET", "/xai/grok-imagine-image/quality/requests/q-1/status"): ok(
            {"status": "IN_QUEUE", "request_id": "q-1", **odd, "queue_position": 4}, 202),
    })
    client = fal.client()

    async def flow():
        h, _ = await client.submit("xai/grok-imagine-image/quality/edit", {"prompt": "x"})
        return await client.status(h)

    assert run(flow()).queue_position == 4
    assert fal.paths()[-1] == "GET /xai/grok-imagine-image/quality/requests/q-1/status"


@pytest.mark.parametrize("state, code", [("IN_PROGRESS", 200), ("COMPLETED", 200), ("IN_QUEUE", 200)])
def test_submit_may_already_be_running_or_done(state: str, code: int) -> None:
    """§1.3: a fast model answers IN_PROGRESS (or is already COMPLETED) at submit; unknown fields are kept."""
    body = {"status": state, "request_id": RID, **urls(), "gateway_request_id": RID, "new_field": {"a": 1}}
    if state == "IN_QUEUE":
        body["queue_position"] = 7
    fal = Fal({("POST", "/fal-ai/flux/dev"): ok(body, code)})
    h, status = run(fal.client().submit("fal-ai/flux/dev", {"prompt": "x"}))
    assert status.state == state and h.request_id == RID
    assert status.done is (state == "COMPLETED")
    assert status.queue_position == (7 if state == "IN_QUEUE" else None)
    assert status.raw["new_field"] == {"a": 1}


def test_submit_headers_and_webhook_as_fal_reads_them() -> None:
    """§1.3 / §1.9: ``Authorization: Key``, ``X-Fal-Request-Timeout: "30.0"``, priority, hint, and the webhook
    URL-encoded in ``?fal_webhook=``; the body is the input itself (no ``input`` envelope)."""
    fal = Fal({("POST", "/fal-ai/flux/dev"): ok({"status": "IN_QUEUE", "request_id": RID, **urls(),
                                                 "queue_position": 0})})
    run(fal.client().submit("fal-ai/flux/dev", {"prompt": "a fox", "seed": 15860307465884635512},
                            webhook_url="https://me.example/hook?job=1&x=a b", priority="low",
                            start_timeout=30, hint="gpu-a100"))
    (sent,) = fal.requests
    assert sent.headers["authorization"] == f"Key {KEY}"
    assert sent.headers["x-fal-request-timeout"] == "30.0"
    assert sent.headers["x-fal-queue-priority"] == "low"
    assert sent.headers["x-fal-runner-hint"] == "gpu-a100"
    assert sent.headers["content-type"] == "application/json"
    assert sent.url.query == b"fal_webhook=https%3A%2F%2Fme.example%2Fhook%3Fjob%3D1%26x%3Da+b"
    assert json.loads(sent.content) == {"prompt": "a fox", "seed": 15860307465884635512}
    assert b"15860307465884635512" in sent.content  # an int on the wire, not 1.586e19


@pytest.mark.parametrize("endpoint, status_path", [
    ("workflows/acme/my-flow/step", "/workflows/acme/my-flow/requests/R/status"),
    ("comfy/acme/graph", "/comfy/acme/graph/requests/R/status"),
    ("fal-ai/flux/dev/image-to-image", "/fal-ai/flux/requests/R/status"),
    ("123-my-app", "/123/my-app/requests/R/status"),
])
def test_fallback_urls_reduce_like_fal_client(endpoint: str, status_path: str) -> None:
    """§1.2: only when submit's URLs are missing (or a job predates them) is ``[ns/]owner/app`` rebuilt."""
    rebuilt = RequestHandle.fallback(endpoint, "R", Q)
    assert rebuilt.status_url == Q + status_path
    assert rebuilt.cancel_url == Q + status_path.replace("/status", "/cancel")
    assert rebuilt.response_url == Q + status_path.removesuffix("/status")


# -- §1.4 status -----------------------------------------------------------------------------------------------
DOC_LOG = {"message": "step 4/28", "level": "INFO", "source": "USER", "timestamp": "2025-01-01T00:00:01.5Z"}
CAPTURE_LOG = {"timestamp": "2024-12-20T15:37:17.120314", "message": "INFO:TRYON:Loading", "labels": {}}


@pytest.mark.parametrize("code, body, expect", [
    (202, status_body("IN_QUEUE", queue_position=3), ("IN_QUEUE", 3, [], None)),
    (202, status_body("IN_PROGRESS", logs=[DOC_LOG, CAPTURE_LOG], metrics={}),
     ("IN_PROGRESS", None, ["step 4/28", "INFO:TRYON:Loading"], None)),
    (202, status_body("IN_PROGRESS", logs=None, metrics={}), ("IN_PROGRESS", None, [], None)),
    (200, status_body("COMPLETED", logs=None, metrics={"inference_time": 9.27}), ("COMPLETED", None, [], None)),
    (200, status_body("COMPLETED", logs=[], metrics={}, error="Runner disconnected",
                      error_type="runner_disconnected"), ("COMPLETED", None, [], "runner_disconnected")),
])
def test_status_readings_in_every_real_shape(code: int, body: dict, expect: tuple) -> None:
    """§1.4: 202 while pending, 200 once COMPLETED; ``logs`` null or a list of either entry shape."""
    state, position, messages, error_type = expect
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}/status"): ok({**body, "unknown": [1, 2]}, code)})
    status = run(fal.client().status(handle()))
    assert (status.state, status.queue_position, status.error_type) == (state, position, error_type)
    assert [entry["message"] for entry in status.logs] == messages
    assert status.failed is (error_type is not None)
    assert fal.requests[0].url.params["logs"] == "1"
    assert fal.requests[0].headers["authorization"] == f"Key {KEY}"


def test_status_404_for_an_unknown_request() -> None:
    """§2: valid key + unknown (or expired) id → 404 ``{"status":"NOT_FOUND"}``, not 401."""
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}/status"): ok({"status": "NOT_FOUND"}, 404)})
    with pytest.raises(NotFoundError) as info:
        run(fal.client().status(handle()))
    assert info.value.status_code == 404 and "NOT_FOUND" in str(info.value)


# -- §1.6 result ------------------------------------------------------------------------------------------------
def test_result_keeps_fal_output_unchanged() -> None:
    """§1.6 / §6: the output JSON as sent: images on several hosts, a video object, a seed beyond int64."""
    output = {
        "images": [
            {"url": "https://v3.fal.media/files/rabbit/a.png", "width": 1024, "height": 768,
             "content_type": "image/png", "file_name": "a.png", "file_size": 1824075},
            {"url": "https://fal.media/files/koala/b.jpeg", "width": 512, "height": 512, "content_type": "image/jpeg"},
            {"url": "https://storage.googleapis.com/falserverless/gallery/c.png"},
        ],
        "video": {"url": "https://v3b.fal.media/files/x/output.mp4", "content_type": "video/mp4",
                  "file_name": "output.mp4", "file_size": 4250000},
        "seed": 15860307465884635512,
        "has_nsfw_concepts": [False, False, False],
        "timings": {"inference": 2.51},
        "prompt": "a fox",
    }
    raw = json.dumps(output).encode()
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): httpx.Response(
        200, content=raw, headers={"content-type": "application/json", "x-fal-request-id": RID,
                                   "x-fal-billable-units": "1"})})
    result = run(fal.client().result(handle()))
    assert result == output
    assert type(result["seed"]) is int and result["seed"] == 15860307465884635512
    assert json.dumps(result).encode() == raw


CONTENT_POLICY = {
    "loc": ["body", "prompt"], "msg": "The content could not be processed because it was flagged.",
    "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation",
    "ctx": {"extra": 1}, "input": "a prompt", "categories": ["sexual"],
}


@pytest.mark.parametrize("response, error_type, text", [
    (ok({"detail": [CONTENT_POLICY, {"loc": ["body", "image_url"], "msg": "field required",
                                     "type": "value_error.missing"}]}, 422),
     None, "prompt: The content could not be processed because it was flagged.; image_url: field required"),
    (ok({"detail": "Request timed out", "error_type": "request_timeout"}, 504,
        **{"X-Fal-Error-Type": "request_timeout"}), "request_timeout", "Request timed out"),
    (ok({"detail": "Runner disconnected"}, 503, **{"X-Fal-Error-Type": "runner_disconnected"}),
     "runner_disconnected", "Runner disconnected"),
    (httpx.Response(504, json={"detail": "Request timed out", "error_type": "startup_timeout"},
                    headers={"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "startup_timeout"}),
     "startup_timeout", "start timeout expired"),
    (ok({"detail": "Internal Server Error"}, 500), None, "Internal Server Error"),
])
def test_result_failures_keep_fal_detail_and_are_not_retried(response, error_type, text) -> None:
    """§1.6 / §2 / §4: the result endpoint returns the model's error; app errors (with
    ``x-fal-request-id``) and a user start-timeout 504 are final."""
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): response})
    with pytest.raises(JobFailedError) as info:
        run(fal.client().result(handle()))
    error = info.value
    assert len(fal.requests) == 1 and fal.delays == []
    assert error.status_code == response.status_code and error.error_type == error_type
    assert text in str(error)
    if response.status_code == 422:
        assert error.detail == response.json()["detail"]  # the list, every key kept
        assert error.detail[0]["ctx"] == {"extra": 1} and error.detail[0]["categories"] == ["sexual"]
    if "x-fal-request-id" in response.headers:
        assert error.request_id == RID


def test_result_gone_after_retention() -> None:
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): ok({"detail": "Request not found"}, 404)})
    with pytest.raises(ResultExpiredError) as info:
        run(fal.client().result(handle()))
    assert info.value.status_code == 404 and "1 hour" in str(info.value)


# -- §1.7 cancel ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("response, answer", [
    (ok({"status": "CANCELLATION_REQUESTED"}, 202), "CANCELLATION_REQUESTED"),
    (ok({"status": "CANCELLATION_REQUESTED"}, 200), "CANCELLATION_REQUESTED"),
    (ok({"status": "ALREADY_COMPLETED"}, 400), "ALREADY_COMPLETED"),
    (ok({"detail": "Request is already completed"}, 400), "ALREADY_COMPLETED"),
    (ok({"success": True}, 200), "CANCELLATION_REQUESTED"),  # the stale per-model OpenAPI shape
])
def test_cancel_answers(response: httpx.Response, answer: str) -> None:
    fal = Fal({("PUT", f"/fal-ai/flux/requests/{RID}/cancel"): response})
    assert run(fal.client().cancel(handle())) == answer
    (sent,) = fal.requests
    assert sent.method == "PUT" and sent.content == b"" and sent.headers["authorization"] == f"Key {KEY}"


def test_cancel_of_an_unknown_request() -> None:
    fal = Fal({("PUT", f"/fal-ai/flux/requests/{RID}/cancel"): ok({"status": "NOT_FOUND"}, 404)})
    with pytest.raises(NotFoundError):
        run(fal.client().cancel(handle()))
    assert len(fal.requests) == 1


# -- §2 errors on submit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, body, cls, phrase", [
    (401, {"detail": "No user found for Key ID and Secret"}, AuthError, "No user found"),
    (401, {"detail": "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."},
     AuthError, "Invalid Key Authorization header format"),
    (403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"},
     AuthError, "Exhausted balance"),
    (404, {"detail": "Application 'veo-3' not found"}, NotFoundError, "Application 'veo-3' not found"),
    (422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]},
     RequestError, "prompt: field required"),
])
def test_submit_errors_are_typed_final_and_keyless(code: int, body: dict, cls: type, phrase: str) -> None:
    fal = Fal({("POST", "/fal-ai/veo-3"): ok(body, code)})
    with pytest.raises(cls) as info:
        run(fal.client().submit("fal-ai/veo-3", {"prompt": "x"}))
    assert len(fal.requests) == 1 and fal.delays == []
    assert phrase in str(info.value) and info.value.status_code == code
    assert info.value.detail == body["detail"]
    assert "5e6f7a8b9c0d-secret" not in str(info.value) and "5e6f7a8b9c0d-secret" not in repr(info.value)


def test_locked_account_is_not_blamed_on_the_key_format() -> None:
    """A 403 "User is locked" is a billing matter: the message must not tell the user to fix FAL_KEY."""
    body = {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"}
    fal = Fal({("POST", "/fal-ai/flux/dev"): ok(body, 403)})
    with pytest.raises(AuthError) as info:
        run(fal.client().submit("fal-ai/flux/dev", {"prompt": "x"}))
    assert "User is locked" in str(info.value) and "trailing newline" not in str(info.value)


# -- §4 retries --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers, delay", [({"Retry-After": "3"}, 3.0), ({}, 0.25)])
def test_429_is_retried_with_or_without_retry_after(headers: dict, delay: float) -> None:
    accepted = ok({"status": "IN_QUEUE", "request_id": RID, **urls(), "queue_position": 0})
    limited = httpx.Response(429, json={"detail": "Too many requests"}, headers=headers)
    fal = Fal({("POST", "/fal-ai/flux/dev"): [limited, accepted]})
    h, _ = run(fal.client().submit("fal-ai/flux/dev", {"prompt": "x"}))
    assert h.request_id == RID and len(fal.requests) == 2 and fal.delays == [delay]


@pytest.mark.parametrize("path, call", [
    (f"/fal-ai/flux/requests/{RID}/status", lambda c: c.status(handle())),
    (f"/fal-ai/flux/requests/{RID}", lambda c: c.result(handle())),
    ("/fal-ai/flux/dev", lambda c: c.submit("fal-ai/flux/dev", {"prompt": "x"})),
])
def test_ingress_502_is_retried(path: str, call) -> None:
    """§4: a 502 from nginx, without ``x-fal-request-id``, never reached fal: retried (submit included)."""
    good = {"status": "IN_QUEUE", "request_id": RID, **urls(), "queue_position": 0} if "requests" not in path \
        else (status_body("COMPLETED", logs=None, metrics={}) if path.endswith("status") else {"seed": 1})
    ingress = httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html", "server": "nginx"})
    fal = Fal({(("POST" if "requests" not in path else "GET"), path): [ingress, ingress, ok(good)]})
    run(call(fal.client()))
    assert len(fal.requests) == 3 and len(fal.delays) == 2


def test_app_503_is_not_retried() -> None:
    """§4: a 503 carrying ``x-fal-request-id`` came from the app: final (fal-ai/fal test_..._500_503)."""
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): ok(
        {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"}, 503)})
    with pytest.raises(JobFailedError) as info:
        run(fal.client().result(handle()))
    assert len(fal.requests) == 1 and info.value.error_type == "runner_scheduling_failure"


def test_ingress_502_exhausted_on_result_is_not_a_job_failure() -> None:
    """fal never answered: the job itself did not fail (and its result may still be fetched)."""
    ingress = httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html"})
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): ingress})
    with pytest.raises(RequestError) as info:
        run(fal.client(attempts=2).result(handle()))
    assert not isinstance(info.value, JobFailedError) and info.value.status_code == 502
    assert len(fal.requests) == 2


@pytest.mark.parametrize("response", [
    ok({"detail": "Request is still in progress"}, 400),
    ok(status_body("IN_PROGRESS", logs=None, metrics={}), 202),
])
def test_result_asked_too_early_is_not_an_output_nor_a_failure(response: httpx.Response) -> None:
    """§1.6: before COMPLETED the result endpoint is undocumented; neither answer is the job's output."""
    fal = Fal({("GET", f"/fal-ai/flux/requests/{RID}"): response})
    with pytest.raises(RequestError) as info:
        run(fal.client().result(handle()))
    assert not isinstance(info.value, JobFailedError) and "in progress" in str(info.value).lower()
