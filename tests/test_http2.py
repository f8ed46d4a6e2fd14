"""HTTP/2 for real: the emulator behind hypercorn on TLS (ALPN picks h2, as with fal), the runtime multiplexing.

On HTTP/1.1 every status stream holds a connection, so the runtime streams only ``max_streams`` jobs at a time
and polls the rest. On HTTP/2 streams share connections: here the HTTP/1.1 bound is 4, yet every one of 150
jobs is followed by its own stream, over a handful of connections, at the protocol's minimum of calls.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections import Counter

import pytest

pytest.importorskip("hypercorn")
pytest.importorskip("h2")

from fal_notebook.config import load_settings  # noqa: E402
from fal_notebook.emulator import EmulatorServer  # noqa: E402
from fal_notebook.runtime import JobManager, as_completed  # noqa: E402
from fal_notebook.store import JobState, JobStore  # noqa: E402

JOBS = 150
SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}


class Connections:
    """ASGI wrapper: which HTTP version and which client socket (one per connection) each request came on."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["http_version"], tuple(scope["client"] or ())))
        await self.app(scope, receive, send)


@pytest.fixture
def h2_emulator(tmp_path):
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = EmulatorServer(scenario="normal")
    app = Connections(emulator.app)
    config = Config()
    config.bind, config.certfile, config.keyfile = [f"127.0.0.1:{port}"], str(cert), str(key)
    config.alpn_protocols, config.accesslog, config.errorlog = ["h2", "http/1.1"], None, None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    async def run():
        config.startup_timeout = 10
        task = loop.create_task(serve(app, config, shutdown_trigger=stop.wait))
        while True:  # serving once the port accepts connections
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        started.set()
        await task

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(20), "hypercorn did not start"
    yield emulator, app, f"https://127.0.0.1:{port}", cert
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    emulator.state.store.close()


@pytest.mark.timeout(240)
def test_every_job_streams_over_a_few_http2_connections(h2_emulator, tmp_path, monkeypatch):
    emulator, app, url, cert = h2_emulator
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts the test's certificate
    emulator.configure(run_seconds=1.0, queue_seconds=0.0, log_lines=0)
    settings = load_settings({"FAL_NOTEBOOK_ENDPOINT": url, "FAL_KEY": "h2-id:h2-secret",
                              "FAL_NOTEBOOK_HOME": str(tmp_path / "home"),
                              "FAL_NOTEBOOK_OUTPUTS": str(tmp_path / "out")})
    manager = JobManager(settings, store=JobStore(tmp_path / "s.sqlite3"), legacy_file=False, auto_resume=False,
                         max_streams=4)
    try:
        jobs = [manager.submit("fal-ai/fast-sdxl", SMALL, validate=False) for _ in range(JOBS)]
        list(as_completed(jobs, timeout=180))
        multiplexed = manager.client.multiplexed
    finally:
        manager.close()
    assert Counter(job.state for job in jobs) == {JobState.COMPLETED: JOBS} and all(job.files for job in jobs)
    assert multiplexed and {version for version, _ in app.seen} == {"2"}
    paths = Counter("stream" if r.path.endswith("/status/stream") else "status" if r.path.endswith("/status")
                    else "other" for r in emulator.requests if "/requests/" in r.path)
    assert paths["stream"] == JOBS and paths["status"] <= JOBS // 4, paths  # not 4 streams and polling for the rest
    connections = {client for _, client in app.seen}
    assert len(connections) <= 2 + -(-JOBS // 64), len(connections)  # the main one plus stream connections
