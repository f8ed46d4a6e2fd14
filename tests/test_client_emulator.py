"""The queue client against the real emulator: a real image, the log stream, every fault scenario.

Retries sleep through a recorder (no wall-clock waits); bounded attempts are checked in the emulator's own
record of the requests it saw.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fal_notebook.client import AsyncQueueClient, QueueClient, RequestHandle, RetryPolicy, Status
from fal_notebook.errors import (
    FalTimeoutError,
    JobFailedError,
    RequestError,
    ResultExpiredError,
    TransportError,
    UnknownModelError,
)

MODEL = "fal-ai/nano-banana-pro"
ATTEMPTS = 4
IMPATIENT = httpx.Timeout(0.3, connect=5)  # for status reads the emulator hangs on purpose


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(fal_env, sleeps):
    def make(**options) -> AsyncQueueClient:
        options.setdefault("retry", RetryPolicy(max_attempts=ATTEMPTS, sleep=sleeps, rng=lambda: 0.5))
        return AsyncQueueClient(fal_env, **options)

    return make


def run(coro):
    return asyncio.run(coro)


def seen(emulator, method: str, suffix: str = "", prefix: str = "") -> list:
    return [
        r
        for r in emulator.requests
        if r.method == method and r.path.endswith(suffix) and r.path.startswith(prefix)
    ]


async def _to_end(client: AsyncQueueClient, handle: RequestHandle, **kw) -> list[Status]:
    return [s async for s in client.stream_status(handle, **kw)]


async def _submit_and_wait(client: AsyncQueueClient, arguments: dict, model: str = MODEL):
    handle, _ = await client.submit(model, arguments)
    statuses = await _to_end(client, handle, poll_interval=0.02)
    return handle, statuses


def test_nano_banana_16_9_gives_a_16_9_image(make_client, emulator, tmp_path: Path) -> None:
    async def scenario() -> Path:
        async with make_client() as fal:
            handle, statuses = await _submit_and_wait(fal, {"prompt": "a red fox", "aspect_ratio": "16:9"})
            assert statuses[-1].state == "COMPLETED" and statuses[-1].error is None
            output = await fal.result(handle)
            return await fal.download(output["images"][0]["url"], tmp_path / "fox.png")

    path = run(scenario())
    with Image.open(path) as image:
        width, height = image.size
    assert width * 9 == height * 16
    media = seen(emulator, "GET", prefix="/files/") + seen(emulator, "GET", prefix="/media/")
    assert media and not any(r.authorized for r in media)
    api = seen(emulator, "POST", suffix=MODEL.split("/", 1)[1])
    assert api and all(r.auth_scheme == "Key" for r in api)


def test_stream_logs_equal_the_polled_cumulative_logs(make_client, emulator) -> None:
    emulator.configure("fast", log_lines=5)

    async def scenario() -> tuple[list[Status], Status]:
        async with make_client() as fal:
            handle, statuses = await _submit_and_wait(fal, {"prompt": "logs"})
            return statuses, await fal.status(handle, logs=True)

    statuses, polled = run(scenario())
    assert seen(emulator, "GET", suffix="/status/stream")  # the stream was used, not a fallback
    assert [e["message"] for e in statuses[-1].logs] == [e["message"] for e in polled.logs]
    assert len(polled.logs) == 5
    lengths = [len(s.logs) for s in statuses]
    assert lengths == sorted(lengths)  # cumulative: never shrinks


def test_sub_path_model_follows_the_reply_urls(make_client, emulator) -> None:
    async def scenario() -> tuple[RequestHandle, dict]:
        async with make_client() as fal:
            handle, _ = await _submit_and_wait(fal, {"prompt": "dev"}, model="fal-ai/flux/dev")
            return handle, await fal.result(handle)

    handle, output = run(scenario())
    assert "/fal-ai/flux/requests/" in handle.status_url and output["images"]
    assert not [r for r in emulator.requests if "/flux/dev/requests/" in r.path]  # never the 405 form


def test_rate_limit_honours_retry_after(make_client, emulator, sleeps) -> None:
    emulator.configure("rate_limit", retry_after=3, fault_count=2)
    handle, _ = run(make_client().submit(MODEL, {"prompt": "x"}))
    assert handle.request_id in emulator.jobs
    assert sleeps.delays == [3.0, 3.0]
    assert len(seen(emulator, "POST", suffix="nano-banana-pro")) == 3


@pytest.mark.parametrize(("scenario", "status"), [("rate_limit", 429), ("ingress_502", 502)])
def test_endless_faults_stop_after_bounded_attempts(
    make_client, emulator, scenario: str, status: int
) -> None:
    emulator.configure(scenario, fault_count=100)
    before = set(emulator.jobs)
    with pytest.raises(RequestError) as info:
        run(make_client().submit(MODEL, {"prompt": "x"}))
    assert info.value.status_code == status
    assert len(seen(emulator, "POST", suffix="nano-banana-pro")) == ATTEMPTS
    assert set(emulator.jobs) == before  # refused every time: no job was created (or lost)


def test_ingress_502_is_retried_until_it_passes(make_client, emulator, sleeps) -> None:
    emulator.configure("ingress_502", fault_count=2)

    async def scenario() -> dict:
        async with make_client() as fal:
            handle, _ = await _submit_and_wait(fal, {"prompt": "x"})
            return await fal.result(handle)

    assert run(scenario())["images"]
    assert len(seen(emulator, "POST", suffix="nano-banana-pro")) == 3 and sleeps.delays == [0.25, 0.5]


def test_app_503_is_not_retried_and_surfaces(make_client, emulator) -> None:
    emulator.configure("app_503", fault_count=1)
    with pytest.raises(RequestError) as info:
        run(make_client().submit(MODEL, {"prompt": "x"}))
    assert info.value.status_code == 503 and info.value.error_type == "runner_scheduling_failure"
    assert info.value.request_id
    assert len(seen(emulator, "POST", suffix="nano-banana-pro")) == 1


def test_connection_reset_on_status_is_retried_and_the_job_is_kept(make_client, emulator, sleeps) -> None:
    async def scenario() -> tuple[RequestHandle, dict]:
        async with make_client() as fal:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})
            emulator.configure("reset", fault_count=2)
            status = await fal.status(handle)
            assert status.state in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
            await _to_end(fal, handle, poll_interval=0.02)
            return handle, await fal.result(handle)

    handle, output = run(scenario())
    assert output["images"] and len(sleeps.delays) == 2
    assert len(seen(emulator, "GET", suffix=f"{handle.request_id}/status")) >= 3


def test_endless_resets_raise_transport_error_after_bounded_attempts(make_client, emulator) -> None:
    async def scenario() -> None:
        async with make_client() as fal:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})
            emulator.configure("reset", fault_count=100)
            await fal.status(handle)

    with pytest.raises(TransportError):
        run(scenario())
    assert len(seen(emulator, "GET", suffix="/status")) == ATTEMPTS


def test_hung_status_times_out_and_retries_are_bounded(make_client, emulator) -> None:
    emulator.configure("hung_status", fault_count=100, hang_seconds=3)

    async def scenario() -> None:
        async with make_client() as fal, make_client(timeout=IMPATIENT) as impatient:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})  # only status reads hang: no short timeout here
            await impatient.status(handle)

    with pytest.raises(FalTimeoutError):
        run(scenario())
    assert len(seen(emulator, "GET", suffix="/status")) == ATTEMPTS


def test_hung_stream_falls_back_to_polling_and_stays_bounded(make_client, emulator) -> None:
    emulator.configure("hung_status", fault_count=100, hang_seconds=3)

    async def scenario() -> None:
        async with make_client() as fal, make_client(timeout=IMPATIENT) as impatient:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})
            await _to_end(impatient, handle, poll_interval=0.02)

    with pytest.raises(FalTimeoutError):
        run(scenario())
    assert len(seen(emulator, "GET", suffix="/status/stream")) == 1
    assert len(seen(emulator, "GET", suffix="/status")) == ATTEMPTS


def test_hung_status_recovers_when_the_server_answers_again(make_client, emulator, sleeps) -> None:
    emulator.configure("hung_status", fault_count=1, hang_seconds=5)

    async def scenario() -> dict:  # 1 s for status reads: only the hung one may time out, however loaded
        async with make_client() as fal, make_client(timeout=httpx.Timeout(1.0, connect=5)) as impatient:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})  # a first POST may be slow (warming up)
            async for _status in impatient.poll_status(handle, interval=0.02):
                pass
            return await fal.result(handle)

    assert run(scenario())["images"]
    assert len(sleeps.delays) == 1  # one timed-out status call, retried once


def test_expired_result_raises_result_expired(make_client, emulator) -> None:
    emulator.configure("expired")

    async def scenario() -> Status:
        async with make_client() as fal:
            handle, statuses = await _submit_and_wait(fal, {"prompt": "x"})
            with pytest.raises(ResultExpiredError) as info:
                await fal.result(handle)
            assert "1 hour" in str(info.value)
            return statuses[-1]

    assert run(scenario()).state == "COMPLETED"


def test_completed_with_error_raises_job_failed(make_client, emulator) -> None:
    emulator.configure("error")

    async def scenario() -> None:
        async with make_client() as fal:
            handle, statuses = await _submit_and_wait(fal, {"prompt": "x"})
            assert statuses[-1].failed and statuses[-1].error_type == "runner_disconnected"
            with pytest.raises(JobFailedError) as info:
                await fal.result(handle)
            assert info.value.error_type == "runner_disconnected" and info.value.status_code == 503

    run(scenario())


def test_invalid_input_gives_a_structured_422(make_client, emulator) -> None:
    async def scenario() -> JobFailedError:
        async with make_client() as fal:
            handle, statuses = await _submit_and_wait(fal, {"aspect_ratio": "16:9"})  # no prompt
            assert statuses[-1].failed
            with pytest.raises(JobFailedError) as info:
                await fal.result(handle)
            return info.value

    err = run(scenario())
    assert err.status_code == 422 and isinstance(err.detail, list)
    assert any(entry["loc"][-1] == "prompt" for entry in err.detail)
    assert "prompt: " in str(err)


def test_cancel_queued_and_completed(make_client, emulator) -> None:
    emulator.hold(True)

    async def scenario() -> tuple[str, str]:
        async with make_client() as fal:
            handle, _ = await fal.submit(MODEL, {"prompt": "x"})
            first = await fal.cancel(handle)
            await _to_end(fal, handle, poll_interval=0.02)
            return first, await fal.cancel(handle)

    assert run(scenario()) == ("CANCELLATION_REQUESTED", "ALREADY_COMPLETED")


def test_fetch_openapi_without_key(make_client, emulator) -> None:
    async def scenario() -> dict:
        async with make_client() as fal:
            with pytest.raises(UnknownModelError):
                await fal.fetch_openapi("fal-ai/no-such-model")
            return await fal.fetch_openapi(MODEL)

    assert "paths" in run(scenario())
    assert all(not r.authorized for r in seen(emulator, "GET", prefix="/api/openapi"))


def test_sync_client_on_the_portal(fal_env, emulator) -> None:
    with QueueClient(fal_env) as fal:
        handle, _ = fal.submit(MODEL, {"prompt": "sync", "aspect_ratio": "1:1"})
        output = fal.wait(handle, timeout=30)
    assert output["images"][0]["url"].startswith(emulator.url)
