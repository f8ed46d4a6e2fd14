"""SSE status stream, downloads, the httpx→FalError translation point, loops and the sync wrapper."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import threading
from pathlib import Path

import httpx
import httpx_sse
import pytest
from test_client import KEY, Q, Recorder, run, settings

from fal_notebook.client import AsyncQueueClient, QueueClient, RequestHandle
from fal_notebook.client.http import translate_errors
from fal_notebook.errors import FalError, FalTimeoutError, NotFoundError, TransportError

HANDLE = RequestHandle.fallback("fal-ai/flux/dev", "r-1", Q)


def _event(status: str, logs: list[str] | None, **extra) -> str:
    body = {"status": status, "request_id": "r-1", "logs": [{"message": m} for m in logs or []], **extra}
    return f"data: {json.dumps(body)}\n\n"


def sse_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/status/stream"):
        text = (
            _event("IN_QUEUE", None, queue_position=1)
            + ": ping\n\n"
            + _event("IN_PROGRESS", ["a", "b"])
            + _event("IN_PROGRESS", [])
            + _event("IN_PROGRESS", ["c"])
            + _event("COMPLETED", [], metrics={"inference_time": 1.5})
        )
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=text)
    return httpx.Response(200, json={"status": "COMPLETED", "request_id": "r-1", "logs": [{"message": "x"}]})


async def _collect(client: AsyncQueueClient, **kw) -> list:
    return [status async for status in client.stream_status(HANDLE, **kw)]


def test_stream_sums_log_deltas_and_ends_at_completed() -> None:
    rec = Recorder(sse_handler)
    statuses = run(_collect(rec.client()))
    assert [s.state for s in statuses] == [
        "IN_QUEUE",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert [[e["message"] for e in s.logs] for s in statuses] == [
        [],
        ["a", "b"],
        ["a", "b"],
        ["a", "b", "c"],
    ] + [["a", "b", "c"]]
    assert statuses[-1].inference_time == 1.5
    (request,) = rec.requests  # no polling happened
    assert (
        request.headers["accept"] == "text/event-stream" and request.headers["authorization"] == f"Key {KEY}"
    )
    assert request.url.params["logs"] == "1"
    assert request.extensions["timeout"]["read"] > 15  # longer than fal's 15 s ping interval


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(405, text="Method Not Allowed"),
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(200, json={"status": "IN_QUEUE"}),  # not an event stream
        httpx.Response(200, headers={"content-type": "text/event-stream"}, text=_event("IN_PROGRESS", ["a"])),
    ],
    ids=["405", "404", "json", "closed-early"],
)
def test_stream_falls_back_to_polling(answer: httpx.Response) -> None:
    polls = iter(
        [
            httpx.Response(
                202, json={"status": "IN_PROGRESS", "request_id": "r-1", "logs": [{"message": "a"}]}
            ),
            httpx.Response(
                200, json={"status": "COMPLETED", "request_id": "r-1", "logs": [{"message": "a"}]}
            ),
        ]
    )
    rec = Recorder(lambda r: answer if r.url.path.endswith("/stream") else next(polls))
    statuses = run(_collect(rec.client(), poll_interval=0))
    assert statuses[-1].state == "COMPLETED" and statuses[-1].logs == [{"message": "a"}]
    assert [r.url.path.endswith("/status") for r in rec.requests[1:]] == [True, True]


def test_stream_auth_error_is_raised_not_swallowed() -> None:
    from fal_notebook.errors import AuthError

    rec = Recorder(lambda r: httpx.Response(401, json={"detail": "No user found for Key ID and Secret"}))
    with pytest.raises(AuthError):
        run(_collect(rec.client()))
    assert len(rec.requests) == 1


def test_download_streams_without_auth_and_renames(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 5000
    rec = Recorder(lambda r: httpx.Response(200, content=payload))
    dest = run(rec.client().download(f"{Q}/media/x.png", tmp_path / "out" / "x.png"))
    assert dest.read_bytes() == payload
    assert "authorization" not in rec.requests[0].headers  # even on an API origin: media never get the key
    assert [p.name for p in dest.parent.iterdir()] == ["x.png"]


def test_download_data_uri(tmp_path: Path) -> None:
    data = b"\x89PNG fake bytes"
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    rec = Recorder(lambda r: httpx.Response(500))
    assert run(rec.client().download(uri, tmp_path / "d.png")).read_bytes() == data
    assert rec.requests == []


def test_download_404_leaves_no_file(tmp_path: Path) -> None:
    rec = Recorder(lambda r: httpx.Response(404, text="gone"))
    with pytest.raises(NotFoundError):
        run(rec.client().download("https://v3.fal.media/files/x.png", tmp_path / "x.png"))
    assert list(tmp_path.iterdir()) == []


def _all_httpx_exceptions() -> list[type[BaseException]]:
    found = {cls for _, cls in inspect.getmembers(httpx, inspect.isclass) if issubclass(cls, Exception)}
    found.add(httpx_sse.SSEError)
    return sorted(found, key=lambda c: c.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    request = httpx.Request("GET", "https://queue.fal.run/x")
    if cls is httpx.HTTPStatusError:
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    for args in (("boom",), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


@pytest.mark.parametrize("cls", _all_httpx_exceptions(), ids=lambda c: c.__name__)
def test_every_httpx_exception_is_translated(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    with pytest.raises(FalError) as info:
        with translate_errors("a call"):
            raise exc
    assert info.value.__cause__ is exc
    expected = FalTimeoutError if isinstance(exc, httpx.TimeoutException) else TransportError
    assert isinstance(info.value, expected)


def test_one_httpx_client_per_event_loop() -> None:
    rec = Recorder(sse_handler)
    client = rec.client()

    async def grab() -> httpx.AsyncClient:
        await client.status(HANDLE)
        return client.session.client()

    first = run(grab())
    second = run(grab())  # a new loop (as asyncio.run twice in a script): works, and gets its own client
    assert first is not second

    seen: list[httpx.AsyncClient] = []

    def other_thread() -> None:
        seen.append(asyncio.run(grab()))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert seen and seen[0] is not second


def test_sync_wrapper_runs_on_the_portal() -> None:
    rec = Recorder(sse_handler)
    from fal_notebook.client.retry import RetryPolicy

    fal = QueueClient(settings(), transport=httpx.MockTransport(rec), retry=RetryPolicy(sleep=rec.sleep))
    assert fal.status(HANDLE).state == "COMPLETED"
    assert [s.state for s in fal.stream_status(HANDLE)][-1] == "COMPLETED"
    assert fal.wait(HANDLE, timeout=10) == {
        "status": "COMPLETED",
        "request_id": "r-1",
        "logs": [{"message": "x"}],
    }
    fal.close()
