"""Run the emulator for real: uvicorn on a loopback socket, in a thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from fal_notebook.emulator.app import EmulatorApp
from fal_notebook.emulator.jobs import EmulatedJob
from fal_notebook.emulator.knobs import Knobs
from fal_notebook.emulator.state import EmulatorState, SeenRequest
from fal_notebook.errors import FalError

__all__ = ["EmulatorServer", "serve", "announce"]

_START_TIMEOUT = 15.0


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose protocol says TCP, and
    # accepted sockets inherit it. With proto 0, a reply written in two parts (headers, then body) waited for
    # the client's delayed ACK: ~40 ms on every request of a kept-alive connection.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: EmulatorApp, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=False, ws="none",
                            timeout_graceful_shutdown=1, timeout_keep_alive=30)
    return uvicorn.Server(config)


class EmulatorServer:
    """A real fal emulator on ``http://host:port`` (port 0 picks a free one).

    >>> with EmulatorServer() as emu:          # doctest: +SKIP
    ...     os.environ["FAL_NOTEBOOK_ENDPOINT"] = emu.url
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, scenario: str = "fast") -> None:
        self.host = host
        self.state = EmulatorState(scenario)
        self.app = EmulatorApp(self.state)
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        self._sock = _bind(self.host, self._port)
        self._port = self._sock.getsockname()[1]
        self._server = _uvicorn_server(self.app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"fal-emulator-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:  # uvicorn's own handshake flag; the socket already listens
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise FalError(f"the fal emulator did not start on {self.host}:{self._port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.state.store.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    # -- test hooks ------------------------------------------------------------------------------------------

    def configure(self, scenario: str | None = None, **knobs: Any) -> Knobs:
        """Switch scenario and/or knobs (fault counters restart). Unknown names raise ``ConfigError``."""
        if scenario is not None:
            knobs["scenario"] = scenario
        return self.state.configure(**knobs)

    def reset(self, scenario: str = "fast") -> None:
        """Default knobs, no jobs, no hold, nothing recorded: what the ``emulator`` fixture does per test."""
        self.state.reset(scenario)

    @property
    def knobs(self) -> Knobs:
        return self.state.knobs

    @property
    def requests(self) -> list[SeenRequest]:
        return self.state.records()

    def clear_requests(self) -> None:
        self.state.clear_records()

    def hold(self, on: bool = True) -> None:
        """While on, new jobs stay IN_QUEUE until :meth:`release`."""
        self.state.book.hold_new = on

    def release(self, request_id: str | None = None) -> int:
        """Start held jobs now (one, or all); also turns holding off when releasing all."""
        return self.state.book.release(request_id, stop_holding=request_id is None)

    @property
    def jobs(self) -> dict[str, EmulatedJob]:
        return {job.request_id: job for job in self.state.book.all()}

    def status_of(self, request_id: str) -> str | None:
        job = self.state.book.get(request_id)
        return None if job is None else self.state.book.snapshot(job).status


def announce(url: str) -> None:
    """The one line the CLI prints once the socket listens (tools wait for it)."""
    sys.stdout.write(f"fal emulator listening on {url}\n")
    sys.stdout.flush()


def serve(host: str = "127.0.0.1", port: int = 8765, scenario: str = "fast",
          on_ready: Callable[[str], None] | None = announce) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(url)`` runs once the socket listens."""
    state = EmulatorState(scenario)
    sock = _bind(host, port)
    server = _uvicorn_server(EmulatorApp(state))
    try:
        if on_ready is not None:
            bound = sock.getsockname()[1]
            on_ready(f"http://{f'[{host}]' if ':' in host else host}:{bound}")
        server.run(sockets=[sock])
    finally:
        sock.close()
        state.store.close()
