"""Hostile answers: what a broken or malicious server (or a man in the middle) sends must end in a clear error or
a safe value: no link with a non-http(s) scheme, no URL followed that is not http(s), no redirect to a private
host, no download without a size cap or deadline, no thumbnail decoded without a pixel cap, no log handling
whose cost grows with the whole history, no JSON nested past a bound. Each test prints its figure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import resource
import time
from pathlib import Path

import httpx
import pytest
from test_protocol_conformance import RID, Fal, handle, ok, run, status_body, urls

from fal_notebook.client import AsyncQueueClient
from fal_notebook.client.http import MAX_JSON_DEPTH
from fal_notebook.client.wire import LOG_TAIL, RequestHandle, Status
from fal_notebook.config import Limits
from fal_notebook.errors import FalError, FalTimeoutError, RequestError, TransportError
from fal_notebook.media import THUMB_MAX_PIXELS, is_web_url, thumbnail_jpeg
from fal_notebook.views.card_data import CARD_MEDIA, card_data
from fal_notebook.views.html import CardData, Media, card_html, card_text, safe_link

STREAM = f"/fal-ai/flux/requests/{RID}/status/stream"
STATUS = f"/fal-ai/flux/requests/{RID}/status"
HOSTILE_URLS = ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "file:///etc/passwd",
                "data:text/html,<script>alert(1)</script>", "vbscript:x", "ftp://example.com/a.png",
                "//evil.example/a.png", "http:/x", "java\tscript:alert(1)"]


def with_limits(client: AsyncQueueClient, **changes: object) -> AsyncQueueClient:
    settings = client.session.settings
    client.session.settings = dataclasses.replace(settings, limits=dataclasses.replace(Limits(), **changes))
    return client


# -- links ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_no_card_link_carries_a_non_http_scheme(url: str) -> None:
    card = CardData("j1", "fal-ai/flux/dev", "COMPLETED",
                    media=(Media("image", "out.png", url, url), Media("video", "clip.mp4", url, url)))
    page = card_html(card)
    for attr in ("href", "src", "poster"):
        for value in page.split(f'{attr}="')[1:]:
            link = value.split('"', 1)[0]
            assert link.startswith(("http://", "https://", "data:image/")) or ":" not in link.split("/")[0], link
    assert "javascript" not in page.lower().replace("&quot;", "")
    print(f"\nFIGURE hostile link {url!r}: 0 links with a non-http(s) scheme")


def test_card_data_drops_hostile_result_urls_and_says_and_n_more() -> None:
    class Job:
        id, model, state, arguments, files = "j1", "fal-ai/flux/dev", "COMPLETED", {"prompt": "p"}, []

        def result(self, timeout: float = 0) -> dict:
            images = [{"url": "javascript:alert(1)"}] + [{"url": f"https://v3.fal.media/{n}.png"}
                                                          for n in range(CARD_MEDIA + 40)]
            return {"images": images}

    card = card_data(Job())
    assert len(card.media) == CARD_MEDIA and card.more_media == 41
    assert card.media[0].href == "" and card.media[0].thumb == ""
    page = card_html(card)
    assert "and 41 more" in page and "and 41 more" in card_text(card) and "javascript" not in page
    print(f"\nFIGURE many outputs: {CARD_MEDIA + 41} outputs → {len(card.media)} tiles + 'and 41 more'")


def test_safe_link_keeps_web_links_local_paths_and_picture_data() -> None:
    assert safe_link("https://v3.fal.media/a.png") == "https://v3.fal.media/a.png"
    assert safe_link("fal_outputs/a.png") == "fal_outputs/a.png"
    assert safe_link("c:odd/a.png") == ""
    assert safe_link("data:image/jpeg;base64,AAAA", image=True) == "data:image/jpeg;base64,AAAA"
    assert safe_link("data:image/jpeg;base64,AAAA") == ""
    assert safe_link("/etc/passwd") == ""
    assert not any(is_web_url(u) for u in HOSTILE_URLS)


# -- URLs that are followed --------------------------------------------------------------------------------------
def test_submit_reply_with_non_http_urls_falls_back_to_fal_urls() -> None:
    body = {"request_id": RID, "status": "IN_QUEUE", "status_url": "file:///etc/passwd",
            "response_url": "javascript:x", "cancel_url": "ftp://x/cancel"}
    rebuilt = RequestHandle.from_submit("fal-ai/flux/dev", body, "https://queue.fal.run")
    assert rebuilt == RequestHandle.fallback("fal-ai/flux/dev", RID, "https://queue.fal.run")


@pytest.mark.parametrize("field", ["status_url", "response_url", "cancel_url"])
def test_a_stored_non_http_url_is_refused_not_followed(field: str) -> None:
    fal = Fal({})
    bad = dataclasses.replace(handle(), **{field: "file:///etc/passwd"})
    client = fal.client()
    call = {"status_url": client.status, "response_url": client.result, "cancel_url": client.cancel}[field]
    with pytest.raises(RequestError, match="only http"):
        run(call(bad))
    assert fal.requests == []
    print(f"\nFIGURE {field}=file:///etc/passwd: 0 requests sent, RequestError")


# -- downloads ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["http://127.0.0.1:8888/api/contents", "http://169.254.169.254/latest/",
                                    "http://[::1]/x", "http://10.0.0.7/x", "file:///etc/passwd",
                                    "http://localhost/x"])
def test_redirects_go_only_to_public_http_hosts(tmp_path: Path, target: str) -> None:
    fal = Fal({("GET", "/files/a/out.png"): httpx.Response(302, headers={"location": target})})
    with pytest.raises(TransportError, match="refused a redirect"):
        run(fal.client().download("https://v3.fal.media/files/a/out.png", tmp_path / "out.png"))
    assert len(fal.requests) == 1 and list(tmp_path.iterdir()) == []
    print(f"\nFIGURE redirect to {target}: refused after 1 request, nothing written")


def test_endless_redirects_stop(tmp_path: Path) -> None:
    fal = Fal({("GET", "/loop"): httpx.Response(302, headers={"location": "/loop"})})
    with pytest.raises(TransportError, match="more than 5 redirects"):
        run(fal.client().download("https://v3.fal.media/loop", tmp_path / "out.png"))
    assert len(fal.requests) == 6


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/a.png", "javascript:alert(1)"])
def test_only_http_media_is_downloaded(tmp_path: Path, url: str) -> None:
    fal = Fal({})
    with pytest.raises(RequestError, match="only http"):
        run(fal.client().download(url, tmp_path / "out.png"))
    assert fal.requests == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("declared", [True, False])
def test_download_size_cap(tmp_path: Path, declared: bool) -> None:
    chunk = b"\0" * 65536
    sent = []

    async def body():
        for _ in range(64):  # 4 MiB in all
            sent.append(len(chunk))
            yield chunk

    headers = {"content-length": str(4 * 2**20)} if declared else {}
    fal = Fal({("GET", "/big.png"): lambda _r: httpx.Response(200, content=body(), headers=headers)})
    client = with_limits(fal.client(), download_mb=1.0)
    with pytest.raises(TransportError, match="more than 1 MB"):
        run(client.download("https://v3.fal.media/big.png", tmp_path / "big.png"))
    assert list(tmp_path.iterdir()) == []
    assert sum(sent) <= 2 * 2**20 + len(chunk)  # the cap plus at most one read buffer (1 MiB)
    print(f"\nFIGURE size cap 1 MiB (length declared: {declared}): stopped after {sum(sent)} bytes read")


def test_slow_loris_download_hits_its_total_deadline(tmp_path: Path) -> None:
    async def trickle():
        while True:
            await asyncio.sleep(0.01)
            yield b"x"

    fal = Fal({("GET", "/slow.png"): lambda _r: httpx.Response(200, content=trickle())})
    client = with_limits(fal.client(), download_seconds=0.5)
    start = time.monotonic()
    with pytest.raises(FalTimeoutError, match="not finished after 0.5 s"):
        run(client.download("https://v3.fal.media/slow.png", tmp_path / "slow.png"))
    assert list(tmp_path.iterdir()) == []
    print(f"\nFIGURE slow-loris download (1 byte/10 ms, deadline 0.5 s): stopped after "
          f"{time.monotonic() - start:.2f} s, nothing kept")


def test_oversized_data_uri_is_refused(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + "A" * (2 * 2**20)
    client = with_limits(Fal({}).client(), download_mb=1.0)
    with pytest.raises(TransportError, match="more than 1 MB"):
        run(client.download(uri, tmp_path / "x.png"))
    assert list(tmp_path.iterdir()) == []


# -- streams and logs --------------------------------------------------------------------------------------------
def test_a_stream_that_only_pings_falls_back_to_polling() -> None:
    async def pings():
        while True:
            yield b": ping\n\n"
            await asyncio.sleep(0.02)

    fal = Fal({("GET", STREAM): lambda _r: httpx.Response(200, content=pings(),
                                                            headers={"content-type": "text/event-stream"}),
               ("GET", STATUS): ok(status_body("COMPLETED", logs=None, metrics={}))})
    client = fal.client()
    client.stream_silence = 0.3

    async def follow() -> list[Status]:
        return [s async for s in client.stream_status(handle(), poll_interval=0)]

    seen = asyncio.run(asyncio.wait_for(follow(), 10))
    assert [s.state for s in seen] == ["COMPLETED"]
    assert fal.paths() == [f"GET {STREAM}", f"GET {STATUS}"]
    print("\nFIGURE ping-only stream: polling took over after 0.3 s of pings without a status")


def test_endless_log_stream_costs_linear_time_and_bounded_memory() -> None:
    """Each event's work is bounded by its new lines and the tail, never by everything said so far."""
    events, per_event = 20_000, 5
    prior: Status | None = None
    start = time.process_time()
    for n in range(events):
        delta = [{"message": f"line {n}.{k}"} for k in range(per_event)]
        prior = Status.from_json(status_body("IN_PROGRESS", logs=delta, metrics={}), prior=prior, delta=True)
    spent = time.process_time() - start
    assert prior is not None and prior.log_count == events * per_event and len(prior.logs) == LOG_TAIL
    assert prior.logs[-1]["message"] == f"line {events - 1}.{per_event - 1}"
    print(f"\nFIGURE endless log stream: {events * per_event} lines in {events} events, tail {len(prior.logs)}, "
          f"{spent * 1e6 / events:.0f} µs CPU per event")


def test_a_huge_cumulative_poll_log_is_cut_to_the_tail() -> None:
    logs = [{"message": str(n)} for n in range(50_000)]
    status = Status.from_json(status_body("IN_PROGRESS", logs=logs, metrics={}))
    assert status.log_count == 50_000 and len(status.logs) == LOG_TAIL and status.logs[-1]["message"] == "49999"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_a_clear_error(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"status": "COMPLETED", "request_id": "' + RID + '", "x": ' + nested + '}'
    fal = Fal({("GET", STATUS): httpx.Response(200, text=body, headers={"content-type": "application/json"}),
               ("GET", f"/fal-ai/flux/requests/{RID}"): httpx.Response(200, text=body)})
    with pytest.raises(RequestError, match="nested more than"):
        run(fal.client().status(handle()))
    with pytest.raises(RequestError, match="nested more than"):
        run(fal.client().result(handle()))
    print(f"\nFIGURE JSON {depth} levels deep: RequestError, no RecursionError")


def test_unknown_status_is_a_clear_error() -> None:
    fal = Fal({("GET", STATUS): ok(status_body("EXPLODED" * 1000))})
    with pytest.raises(RequestError, match="unknown request status") as caught:
        run(fal.client().status(handle()))
    assert len(str(caught.value)) < 300


# -- thumbnails --------------------------------------------------------------------------------------------------
def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def test_a_huge_image_is_refused_before_decoding() -> None:
    data = _png(9000, 8000, "1")  # 72 MP: a tiny file, 288 MB as RGBA
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(FalError, match="above the 64 MP limit"):
        thumbnail_jpeg(data)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown < 50
    print(f"\nFIGURE 72 MP PNG ({len(data)} bytes): refused, peak memory grew {grown:.0f} MB")


def test_a_large_image_thumbnails_in_bounded_memory(tmp_path: Path) -> None:
    """The largest image accepted, RGBA: memory stays near one decoded copy (the old code made ~5)."""
    import subprocess
    import sys

    source = tmp_path / "big.png"
    make = ("from PIL import Image;import sys;"
            "Image.new('RGBA',(8000,7900),(9,9,9,128)).save(sys.argv[1],'PNG',compress_level=1)")
    subprocess.run([sys.executable, "-c", make, str(source)], timeout=120, check=True)
    code = ("import resource,sys;from fal_notebook.media import thumbnail_jpeg;"
            "t=thumbnail_jpeg(sys.argv[1],max_side=384,max_bytes=56000);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024, len(t))")
    out = subprocess.run([sys.executable, "-c", code, str(source)], capture_output=True, text=True, timeout=120,
                         check=True)
    peak, size = map(int, out.stdout.split())
    decoded = 8000 * 7900 * 4 / 2**20
    assert 8000 * 7900 <= THUMB_MAX_PIXELS and size <= 56000
    assert peak < decoded * 1.5 + 100, peak
    print(f"\nFIGURE 63 MP RGBA PNG: thumbnail {size} bytes, process peak {peak} MB "
          f"(one decoded copy is {decoded:.0f} MB)")


def test_bogus_width_height_in_a_result_do_not_reach_the_card() -> None:
    class Job:
        id, model, state, arguments, files = "j1", "m", "COMPLETED", {}, []

        def result(self, timeout: float = 0) -> dict:
            return {"images": [{"url": "https://v3.fal.media/a.png", "width": "<b>", "height": True}]}

    card = card_data(Job())
    assert card.media[0].width is None and card.media[0].height is None
    assert json.dumps(urls())  # the shared helpers stay importable


NO_STREAM = {"stream": {"kind": "ping_only"}}  # so the status route is polled


@pytest.mark.parametrize(("faults", "ends", "kept"), [
    ({"submit": {"kind": "bad_urls"}}, "COMPLETED", 4),  # the reply's file:/javascript: URLs: fal's own used
    ({**NO_STREAM, "status": {"kind": "huge_logs"}}, "COMPLETED", 200),  # 20 000 lines a reading: tail kept
    ({**NO_STREAM, "status": {"kind": "deep_json"}}, "FAILED", 0),  # a clear error, not a RecursionError
    ({"result": {"kind": "garbage"}}, "FAILED", 4),  # not JSON: a clear error
    (NO_STREAM, "COMPLETED", 4),  # a stream of pings only: polling takes over
], ids=["submit-bad_urls", "status-huge_logs", "status-deep_json", "result-garbage", "stream-ping_only"])
def test_hostile_answers_from_a_real_server_end_cleanly(fal_env, emulator, tmp_path, faults, ends, kept):
    from fal_notebook.runtime.manager import JobManager
    from fal_notebook.store import JobStore

    emulator.configure(faults=faults, log_lines=4)
    manager = JobManager(fal_env, store=JobStore(tmp_path / "jobs.sqlite3"), origin="t", legacy_file=False)
    manager.client.stream_silence = 0.5
    try:
        job = manager.submit("fal-ai/flux/dev", {"prompt": "hostile"})
        job.wait(timeout=120)
    finally:
        manager.close()
    assert job.state.value == ends, job.error
    assert len(job.logs) <= 200 and all(len(line) <= 2_000 for line in job.logs)
    assert len(job.logs) >= kept
    assert all(url is None or url.startswith("http") for url in job.urls.values())
    page = card_html(card_data(job))
    assert "file:///" not in page and "javascript:" not in page
    outputs = [p.resolve() for p in job.files]
    assert all(p.is_relative_to(fal_env.outputs.resolve()) for p in outputs)
    print(f"\nFIGURE emulator faults {sorted(faults)} ({', '.join(f['kind'] for f in faults.values())}): job "
          f"{job.state.value}" + (f" ({type(job.error).__name__})" if job.error else "")
          + f", {len(job.logs)} log lines kept")
