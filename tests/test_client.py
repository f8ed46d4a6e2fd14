"""Queue client against httpx.MockTransport: URLs, headers, parsing, typed errors, retries.

One handler function per scenario; the recorded requests are the assertion target.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from fal_notebook.client import AsyncQueueClient, RequestHandle, RetryPolicy
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.errors import (
    AuthError,
    FalTimeoutError,
    JobFailedError,
    NotFoundError,
    RequestError,
    ResultExpiredError,
    TransportError,
    UnknownModelError,
    UnknownOutcomeError,
)

KEY = "test-id:test-secret"
Q = "https://queue.fal.run"


def settings(tmp_path: Path | None = None, key: str | None = KEY) -> Settings:
    return Settings(
        key=ApiKey(key) if key else None, endpoints=Endpoints(), home=tmp_path or Path("/nonexistent")
    )


class Recorder:
    """Collects requests and retry delays; the handler decides the answers."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    def client(self, **options) -> AsyncQueueClient:
        options.setdefault("retry", RetryPolicy(max_attempts=4, sleep=self.sleep, rng=lambda: 0.5))
        return AsyncQueueClient(
            options.pop("settings", settings()), transport=httpx.MockTransport(self), **options
        )


def run(coro):
    return asyncio.run(coro)


def submit_reply(request: httpx.Request, rid: str = "r-1", base: str = f"{Q}/fal-ai/flux") -> httpx.Response:
    urls = {
        "response_url": f"{base}/requests/{rid}",
        "status_url": f"{base}/requests/{rid}/status",
        "cancel_url": f"{base}/requests/{rid}/cancel",
    }
    return httpx.Response(200, json={"status": "IN_QUEUE", "request_id": rid, "queue_position": 2, **urls})


def test_submit_sends_options_and_keeps_the_reply_urls() -> None:
    rec = Recorder(lambda r: submit_reply(r, base="https://queue.fal.run/fal-ai/flux/dev"))
    handle, status = run(
        rec.client().submit(
            "fal-ai/flux/dev",
            {"prompt": "a fox"},
            webhook_url="https://example.com/hook?a=1&b=2",
            priority="low",
            start_timeout=30,
            hint="warm",
            headers={"X-Extra": "yes"},
        )
    )
    (request,) = rec.requests
    assert request.method == "POST"
    assert request.url.path == "/fal-ai/flux/dev"
    assert request.url.params["fal_webhook"] == "https://example.com/hook?a=1&b=2"
    assert b"fal_webhook=https%3A%2F%2Fexample.com%2Fhook%3Fa%3D1%26b%3D2" in request.url.query
    assert json.loads(request.content) == {"prompt": "a fox"}
    headers = request.headers
    assert headers["authorization"] == f"Key {KEY}"
    assert headers["user-agent"].startswith("fal-notebook/")
    assert headers["x-fal-queue-priority"] == "low"
    assert headers["x-fal-request-timeout"] == "30.0"
    assert headers["x-fal-runner-hint"] == "warm"
    assert headers["x-extra"] == "yes"
    assert handle.status_url == "https://queue.fal.run/fal-ai/flux/dev/requests/r-1/status"  # as fal sent it
    assert status.state == "IN_QUEUE" and status.queue_position == 2


@pytest.mark.parametrize("bad", [{"start_timeout": 1}, {"start_timeout": 0.5}, {"priority": "urgent"}])
def test_submit_refuses_bad_options_before_sending(bad: dict) -> None:
    rec = Recorder(submit_reply)
    with pytest.raises(RequestError):
        run(rec.client().submit("fal-ai/flux/dev", {}, **bad))
    assert rec.requests == []


def test_fallback_urls_reduce_to_owner_app() -> None:
    h = RequestHandle.fallback("fal-ai/flux/dev/image-to-image", "abc", Q + "/")
    assert h.status_url == f"{Q}/fal-ai/flux/requests/abc/status"
    assert h.response_url == f"{Q}/fal-ai/flux/requests/abc"
    assert h.cancel_url == f"{Q}/fal-ai/flux/requests/abc/cancel"
    assert (
        RequestHandle.fallback("workflows/me/wf/x", "1", Q).status_url
        == f"{Q}/workflows/me/wf/requests/1/status"
    )
    assert RequestHandle.fallback("comfy/me/flow", "1", Q).response_url == f"{Q}/comfy/me/flow/requests/1"
    assert RequestHandle.fallback("123-my-app", "1", Q).response_url == f"{Q}/123/my-app/requests/1"
    with pytest.raises(UnknownModelError):
        RequestHandle.fallback("flux", "1", Q)


def test_legacy_numeric_id_is_submitted_as_owner_slash_app() -> None:
    rec = Recorder(lambda r: submit_reply(r, base=f"{Q}/123/my-app"))
    run(rec.client().submit("123-my-app", {}))
    assert rec.requests[0].url.path == "/123/my-app"


def test_missing_reply_urls_are_rebuilt() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"status": "IN_QUEUE", "request_id": "z"}))
    handle, _ = run(rec.client().submit("fal-ai/flux/dev", {}))
    assert handle.status_url == f"{Q}/fal-ai/flux/requests/z/status"


def test_status_parses_202_and_sends_logs_flag() -> None:
    body = {
        "status": "IN_PROGRESS",
        "request_id": "r-1",
        "logs": [{"message": "step 1"}, {"message": "step 2"}],
        "metrics": {},
    }
    rec = Recorder(lambda r: httpx.Response(202, json=body))
    handle = RequestHandle.fallback("fal-ai/flux/dev", "r-1", Q)
    status = run(rec.client().status(handle))
    assert status.state == "IN_PROGRESS" and [e["message"] for e in status.logs] == ["step 1", "step 2"]
    assert rec.requests[0].url.params["logs"] == "1"
    run(rec.client().status(handle, logs=False))
    assert rec.requests[1].url.params["logs"] == "0"


def test_unknown_status_is_an_error() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"status": "FAILED", "request_id": "r"}))
    with pytest.raises(RequestError, match="FAILED"):
        run(rec.client().status(RequestHandle.fallback("a/b", "r", Q)))


def test_foreign_status_url_gets_no_key() -> None:
    rec = Recorder(
        lambda r: httpx.Response(202, json={"status": "IN_QUEUE", "request_id": "r", "queue_position": 0})
    )
    foreign = RequestHandle(
        "r", "a/b", "https://elsewhere.example/r/status", "https://elsewhere.example/r", "x"
    )
    run(rec.client().status(foreign))
    run(rec.client().status(RequestHandle.fallback("a/b", "r", Q)))
    assert "authorization" not in rec.requests[0].headers
    assert rec.requests[1].headers["authorization"] == f"Key {KEY}"


def test_completed_with_error_raises_job_failed_with_structured_detail() -> None:
    detail = [
        {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "num_images"], "msg": "must be <= 4", "type": "value_error"},
    ]
    rec = Recorder(
        lambda r: httpx.Response(
            422, json={"detail": detail}, headers={"x-fal-error-type": "validation_error"}
        )
    )
    with pytest.raises(JobFailedError) as info:
        run(rec.client().result(RequestHandle.fallback("fal-ai/flux/dev", "r", Q)))
    err = info.value
    assert err.detail == detail and err.status_code == 422 and err.error_type == "validation_error"
    assert "prompt: field required" in str(err) and "num_images: must be <= 4" in str(err)
    assert not isinstance(err, ResultExpiredError)


def test_app_error_body_error_type_and_request_id() -> None:
    body = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    rec = Recorder(lambda r: httpx.Response(503, json=body, headers={"x-fal-request-id": "r"}))
    with pytest.raises(JobFailedError) as info:
        run(rec.client().result(RequestHandle.fallback("a/b", "r", Q)))
    assert info.value.error_type == "runner_disconnected" and info.value.request_id == "r"
    assert len(rec.requests) == 1  # an app 503 is never retried


@pytest.mark.parametrize("status", [404, 410])
def test_result_gone_is_result_expired(status: int) -> None:
    rec = Recorder(lambda r: httpx.Response(status, json={"detail": "Request not found"}))
    with pytest.raises(ResultExpiredError) as info:
        run(rec.client().result(RequestHandle.fallback("a/b", "r", Q)))
    assert "1 hour" in str(info.value) and "6 minutes" in str(info.value) and "10 KB" in str(info.value)


@pytest.mark.parametrize(
    ("status", "detail"),
    [(401, "No user found for Key ID and Secret"), (403, "User is locked. Reason: Exhausted balance.")],
)
def test_auth_errors_say_how_to_fix_and_never_show_the_key(status: int, detail: str) -> None:
    rec = Recorder(lambda r: httpx.Response(status, json={"detail": detail}))
    with pytest.raises(AuthError) as info:
        run(rec.client().submit("fal-ai/flux/dev", {}))
    text = str(info.value) + repr(info.value) + repr(info.value.detail)
    assert "FAL_KEY" in text and detail in text
    assert "test-secret" not in text and KEY not in text


def test_a_server_echoing_the_key_is_redacted() -> None:
    rec = Recorder(lambda r: httpx.Response(400, json={"detail": f"bad header {r.headers['authorization']}"}))
    with pytest.raises(RequestError) as info:
        run(rec.client().submit("fal-ai/flux/dev", {}))
    assert "test-secret" not in str(info.value) and "test-secret" not in str(info.value.detail)


def test_not_found_and_cancel_semantics() -> None:
    answers = {"/a/b/requests/gone/status": httpx.Response(404, json={"status": "NOT_FOUND"})}

    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path in answers:
            return answers[r.url.path]
        if r.url.path.endswith("/done/cancel"):
            return httpx.Response(400, json={"status": "ALREADY_COMPLETED"})
        return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})

    rec = Recorder(handler)
    client = rec.client()
    with pytest.raises(NotFoundError):
        run(client.status(RequestHandle.fallback("a/b", "gone", Q)))
    assert run(client.cancel(RequestHandle.fallback("a/b", "q", Q))) == "CANCELLATION_REQUESTED"
    assert run(client.cancel(RequestHandle.fallback("a/b", "done", Q))) == "ALREADY_COMPLETED"
    assert rec.requests[-1].method == "PUT"


def test_429_honours_retry_after_then_succeeds() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "slow down"})])
    rec = Recorder(lambda r: next(answers, None) or submit_reply(r))
    handle, _ = run(rec.client().submit("fal-ai/flux/dev", {}))
    assert handle.request_id == "r-1" and len(rec.requests) == 2
    assert rec.delays == [7.0]


def test_retries_are_bounded_and_the_error_surfaces() -> None:
    rec = Recorder(lambda r: httpx.Response(502, text="<html>nginx</html>"))
    with pytest.raises(RequestError) as info:
        run(rec.client().status(RequestHandle.fallback("a/b", "r", Q)))
    assert info.value.status_code == 502
    assert len(rec.requests) == 4 and rec.delays == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("exc", "raised"), [(httpx.ReadTimeout, FalTimeoutError), (httpx.ReadError, TransportError)]
)
def test_submit_is_not_retried_after_the_request_may_have_arrived(exc: type, raised: type) -> None:
    """The outcome is unknown (fal may have the request): one POST, an UnknownOutcomeError (a TransportError)
    that keeps the translated error and httpx's below it."""
    def handler(r: httpx.Request) -> httpx.Response:
        raise exc("no answer", request=r)

    rec = Recorder(handler)
    with pytest.raises(UnknownOutcomeError) as info:
        run(rec.client().submit("fal-ai/flux/dev", {}))
    assert isinstance(info.value, TransportError)
    assert len(rec.requests) == 1 and isinstance(info.value.__cause__, raised)
    assert isinstance(info.value.__cause__.__cause__, exc)


def test_submit_is_retried_when_nothing_was_sent() -> None:
    failures = iter([httpx.ConnectError("refused")])

    def handler(r: httpx.Request) -> httpx.Response:
        exc = next(failures, None)
        if exc:
            raise exc
        return submit_reply(r)

    rec = Recorder(handler)
    handle, _ = run(rec.client().submit("fal-ai/flux/dev", {}))
    assert handle.request_id == "r-1" and len(rec.requests) == 2


def test_status_timeouts_are_retried_then_raise_fal_timeout() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=r)

    rec = Recorder(handler)
    with pytest.raises(FalTimeoutError) as info:
        run(rec.client().status(RequestHandle.fallback("a/b", "r", Q)))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(rec.requests) == 4


def test_user_timeout_504_is_not_retried() -> None:
    rec = Recorder(
        lambda r: httpx.Response(
            504,
            json={"detail": "Request timed out", "error_type": "request_timeout"},
            headers={"x-fal-request-timeout-type": "user"},
        )
    )
    with pytest.raises(RequestError) as info:
        run(rec.client().submit("fal-ai/flux/dev", {}, start_timeout=5))
    assert len(rec.requests) == 1 and info.value.error_type == "request_timeout"
    assert "start timeout" in str(info.value)


def test_every_call_has_a_timeout() -> None:
    rec = Recorder(submit_reply)
    run(rec.client().submit("fal-ai/flux/dev", {}))
    timeouts = rec.requests[0].extensions["timeout"]
    assert timeouts["read"] == 120.0 and timeouts["connect"] == 30.0


def test_fetch_openapi_sends_no_key_and_maps_404() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.params["endpoint_id"] == "fal-ai/nope":
            return httpx.Response(404, json={"detail": "not found"})
        return httpx.Response(200, json={"openapi": "3.0.4"})

    rec = Recorder(handler)
    assert run(rec.client().fetch_openapi("fal-ai/flux/dev")) == {"openapi": "3.0.4"}
    # the platform API's model list is asked first (no "models" here), then the public per-model route
    platform, public = rec.requests[0], rec.requests[-1]
    assert platform.url.host == "api.fal.ai" and platform.url.params["expand"] == "openapi-3.0"
    assert public.url.host == "fal.ai" and "authorization" not in public.headers
    with pytest.raises(UnknownModelError):
        run(rec.client().fetch_openapi("fal-ai/nope"))


def test_repr_masks_the_key() -> None:
    client = Recorder(submit_reply).client()
    assert "test-secret" not in repr(client) and "test-secret" not in repr(client.settings)
