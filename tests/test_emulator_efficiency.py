"""The emulator costs little per request, so a benchmark measures its clients: a status stream sleeps until
the job's next change (or a cancel / release wakes it) instead of re-reading every open stream on a timer
(counted in snapshot computations, never timed), and its replies never wait for the client's delayed ACK."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import httpx
import pytest

from fal_notebook.emulator import server as emulator_server
from fal_notebook.emulator.jobs import INF, JobBook

MODEL = "fal-ai/flux/dev"
HEADERS = {"Authorization": "Key a:b"}


@pytest.fixture
def snapshots(emulator, monkeypatch):
    """How many snapshots the emulator computed (status polls, submits and stream wake-ups all count)."""
    book = emulator.state.book
    real = book.snapshot
    count = [0]
    lock = threading.Lock()

    def counting(job, now=None):
        with lock:
            count[0] += 1
        return real(job, now)

    monkeypatch.setattr(book, "snapshot", counting)
    return count


def submit(emu_http) -> dict:
    response = emu_http.post(f"/{MODEL}", json={"prompt": "a red fox"})
    assert response.status_code == 200, response.text
    return response.json()


def stream(url: str, on_first=None) -> list[dict | str]:
    """Every event (parsed) and ping until the server closes; ``on_first()`` runs after the first event."""
    seen: list[dict | str] = []
    with httpx.stream("GET", url + "/stream", params={"logs": 1}, headers=HEADERS, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if on_first is not None and len(seen) == 1:
                    on_first()
            elif line.startswith(":"):
                seen.append(line)
    return seen


def test_a_stream_whose_next_change_is_far_away_computes_few_snapshots(emulator, emu_http, snapshots):
    emulator.configure(queue_seconds=0.0, run_seconds=1.0, log_lines=0, ping_interval=15.0)
    reply = submit(emu_http)
    before = snapshots[0]
    events = stream(reply["status_url"])
    assert [e["status"] for e in events] == ["IN_PROGRESS", "COMPLETED"]
    # one read per event, and perhaps one more if the sleep ended a hair early; a 20 ms timer made ~50
    assert snapshots[0] - before <= 3


def test_a_cancel_wakes_a_sleeping_stream_at_once(emulator, emu_http, snapshots):
    """A held job has no foreseeable change and pings are an hour apart: only the cancel can end the sleep
    (without the wake-up the read would time out)."""
    emulator.configure(ping_interval=3600.0)
    emulator.hold()
    reply = submit(emu_http)
    before = snapshots[0]
    events = stream(reply["status_url"], on_first=lambda: emu_http.put(reply["cancel_url"]))
    assert [e["status"] for e in events] == ["IN_QUEUE", "COMPLETED"]
    assert events[-1]["error_type"] == "request_cancelled"
    assert snapshots[0] - before <= 3


def test_a_release_from_another_thread_wakes_the_stream(emulator, emu_http, snapshots):
    emulator.configure(ping_interval=3600.0, run_seconds=0.3, log_lines=3)
    emulator.hold()
    reply = submit(emu_http)
    before = snapshots[0]
    releaser = []

    def release() -> None:  # from a thread of its own, as a test or the control route would
        thread = threading.Thread(target=emulator.release)
        thread.start()
        releaser.append(thread)

    events = stream(reply["status_url"], on_first=release)
    releaser[0].join()
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED" and "IN_PROGRESS" in statuses
    messages = [line["message"] for e in events for line in e.get("logs") or []]
    assert messages == ["Loading model", "Generating: step 1/2", "Generating: step 2/2"]
    assert snapshots[0] - before <= 2 * len(events) + 1


def test_queue_positions_are_each_sent_once_and_read_once(emulator, emu_http, snapshots):
    emulator.configure(queue_seconds=0.6, queue_ahead=3, run_seconds=0.1, log_lines=0, ping_interval=3600.0)
    reply = submit(emu_http)
    before = snapshots[0]
    events = stream(reply["status_url"])
    positions = [e["queue_position"] for e in events if e["status"] == "IN_QUEUE"]
    assert positions == sorted(set(positions), reverse=True) and positions[-1] == 0
    assert [e["status"] for e in events][-2:] == ["IN_PROGRESS", "COMPLETED"]
    assert snapshots[0] - before <= 2 * len(events) + 1


def test_pings_still_come_when_nothing_changes(emulator, emu_http):
    emulator.configure(queue_seconds=0.0, run_seconds=0.5, log_lines=0, ping_interval=0.1)
    events = stream(submit(emu_http)["status_url"])
    assert [e["status"] for e in events if isinstance(e, dict)] == ["IN_PROGRESS", "COMPLETED"]
    assert 2 <= sum(1 for e in events if e == ": ping") <= 6


def test_next_change_follows_positions_logs_and_the_end():
    book = JobBook()
    job = book.add(endpoint_id=MODEL, app_path="fal-ai/flux", arguments={}, queue_s=1.0, run_s=2.0, log_lines=4,
                   queue_ahead=3)
    t0 = job.submitted
    # queued: positions 3, 2, 1, 0 each hold a quarter of the second
    assert book.snapshot(job, t0).queue_position == 3
    assert book.next_change(job, t0) == pytest.approx(t0 + 0.25)
    assert book.next_change(job, t0 + 0.6) == pytest.approx(t0 + 0.75)
    assert book.next_change(job, t0 + 0.8) == pytest.approx(t0 + 1.0)  # position 0 → the start
    for now in (t0, t0 + 0.25, t0 + 0.6, t0 + 0.8):  # the position really differs at each foreseen instant
        later = book.next_change(job, now)
        assert book.snapshot(job, later + 1e-9) != book.snapshot(job, now)
    # running: a log line every 0.5 s, then the end
    assert book.next_change(job, t0 + 1.0) == pytest.approx(t0 + 1.5)
    assert book.next_change(job, t0 + 2.6) == pytest.approx(t0 + 3.0)
    assert len(book.snapshot(job, t0 + 2.6).logs) == 4
    assert book.next_change(job, t0 + 3.0) == INF


def test_next_change_of_held_and_cancelled_jobs():
    book = JobBook()
    book.hold_new = True
    job = book.add(endpoint_id=MODEL, app_path="fal-ai/flux", arguments={}, queue_s=1.0, run_s=2.0, log_lines=0,
                   queue_ahead=3, start_timeout=5.0)
    t0 = job.submitted
    assert book.next_change(job, t0) == pytest.approx(t0 + 5.0)  # only its start timeout is foreseen
    assert book.release() == 1
    assert book.next_change(job, job.released) == pytest.approx(job.released + 2.0)
    assert book.cancel(job)
    assert book.next_change(job, job.cancelled) == INF


def test_connections_the_emulator_accepts_have_nagle_off():
    """A reply goes out in two writes (headers, body): with Nagle on, the second waited for the client's
    delayed ACK, ~40 ms on every request of a kept-alive connection. asyncio turns it off only on sockets that
    say they are TCP, so the listening socket must."""
    listener = emulator_server._bind("127.0.0.1", 0)
    port = listener.getsockname()[1]

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(accepted, 10)
            writer.close()
            return value
        finally:
            server.close()

    assert asyncio.run(accept_one()) != 0
