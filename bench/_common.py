"""Shared by the bench scripts: an in-process emulator, both clients pointed at it, request counting, tables.

Nothing here leaves loopback. The baseline is the official ``fal_client`` 1.0.3 with only its module URL
globals patched to the emulator (as ``tests/test_fal_client_compat.py`` does); fal_notebook is pointed there
through ``FAL_NOTEBOOK_ENDPOINT`` in a private settings object, so the real environment is never touched.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY = "bench-id:bench-secret"
MODEL = "fal-ai/nano-banana-pro"
KINDS = ("submit", "status", "stream", "result", "cancel", "media", "upload", "schema", "other")


# -- the two clients -----------------------------------------------------------------------------------------
def fal_client_for(url: str) -> Any:
    """A ``fal_client.SyncClient`` talking to the emulator at ``url`` (module globals patched for good)."""
    import fal_client
    import fal_client.client as fal_module

    fal_module.QUEUE_URL_FORMAT = url + "/"
    fal_module.RUN_URL_FORMAT = url + "/"
    fal_module.REST_URL = url
    fal_module.CDN_URL = url
    return fal_client.SyncClient(key=KEY)


def settings_for(url: str, home: Path) -> Any:
    """fal_notebook ``Settings`` aimed at the emulator, with home and outputs under ``home``."""
    from fal_notebook.config import load_settings

    (home / "home").mkdir(parents=True, exist_ok=True)
    (home / "outputs").mkdir(parents=True, exist_ok=True)
    env = {"FAL_NOTEBOOK_ENDPOINT": url, "FAL_KEY": KEY, "FAL_NOTEBOOK_HOME": str(home / "home"),
           "FAL_NOTEBOOK_OUTPUTS": str(home / "outputs")}
    return load_settings(env)


@contextmanager
def job_manager(url: str, **options: Any) -> Iterator[Any]:
    """A started, isolated ``JobManager`` (own temp store and outputs, no legacy import, no resume)."""
    from fal_notebook.runtime import JobManager
    from fal_notebook.store import JobStore

    with tempfile.TemporaryDirectory(prefix="fal-bench-") as tmp:
        settings = settings_for(url, Path(tmp))
        manager = JobManager(settings, store=JobStore(settings.store_path), origin="bench",
                             legacy_file=False, auto_resume=False, **options)
        try:
            yield manager.start()
        finally:
            manager.close()
            manager.store.close()


class Delayed:
    """ASGI wrapper adding ``seconds`` before every request is handled: a stand-in for a network round trip,
    which loopback does not have. The sleep is on the server's loop, so other requests are not held up."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            import asyncio

            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


@contextmanager
def emulator(scenario: str = "fast", *, added_latency: float = 0.0, **knobs: Any) -> Iterator[Any]:
    """An in-process ``EmulatorServer`` on a free loopback port; ``added_latency`` s before every request."""
    from fal_notebook.emulator import EmulatorServer

    server = EmulatorServer(scenario=scenario)
    if added_latency > 0:
        server.app = Delayed(server.app, added_latency)  # read by start() when it builds the uvicorn server
    server.start()
    try:
        if knobs:
            server.configure(**knobs)
        yield server
    finally:
        server.stop()


# -- counting what the emulator saw --------------------------------------------------------------------------
def kind_of(method: str, path: str) -> str:
    """Which fal call a recorded request was, from its method and path (protocol §1, §5)."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] in ("files", "media", "uploads"):
        return "media" if method == "GET" else "upload"
    if segments[:1] == ["storage"]:
        return "upload"
    if segments[:2] == ["api", "openapi"]:
        return "schema"
    if "requests" in segments:
        tail = segments[segments.index("requests") + 2:]
        named = {(): "result", ("response",): "result", ("status",): "status",
                 ("status", "stream"): "stream", ("cancel",): "cancel"}
        return named.get(tuple(tail), "other")
    return "submit" if method == "POST" else "other"


def count_kinds(requests: Iterable[Any]) -> Counter:
    """``Counter`` of :func:`kind_of` over the emulator's ``SeenRequest`` records."""
    return Counter(kind_of(r.method, r.path) for r in requests)


# -- timing and printing -------------------------------------------------------------------------------------
class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    median: float
    p95: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), percentile(values, 0.95))


def ratio(baseline: float, ours: float) -> str:
    """``baseline / ours`` as ``"12.3x"``; ``"inf"`` when ours is zero and the baseline is not."""
    if ours == 0:
        return "n/a" if baseline == 0 else "inf"
    return f"{baseline / ours:.1f}x"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain fixed-width table (left-aligned first column, right-aligned numbers)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(padded)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def header(title: str) -> str:
    """The first lines every script prints: what, where, when."""
    import os

    cpus = os.cpu_count()
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (f"{title}\n{stamp}  Python {platform.python_version()}  {platform.machine()}, {cpus} CPU(s), "
            "emulator on loopback\n")
