"""Shared fixtures: one real emulator for the whole run, and an environment that points fal_notebook at it."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fal_notebook.config import Settings, load_settings
from fal_notebook.emulator import EmulatorServer

TEST_KEY = "test-id:test-secret"


def pytest_configure(config: pytest.Config) -> None:
    """A shell that starts the run in the background may leave SIGINT ignored, which every child inherits: then
    ``_thread.interrupt_main()`` does nothing and a child given SIGINT never sees it, so the Ctrl-C tests would
    hang. Handling it here makes children start with the default disposition (exec resets handlers)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _ipython_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """IPython shells and the kernels the tests start keep their profile in a temp dir, not in ~/.ipython; a test
    that sets no home of its own (``fal_env`` does) gets a session temp store and outputs, never the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
    patch.setenv("FAL_NOTEBOOK_HOME", str(tmp_path_factory.mktemp("fal-notebook-home")))
    patch.setenv("FAL_NOTEBOOK_OUTPUTS", str(tmp_path_factory.mktemp("fal-notebook-outputs")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _no_default_manager_left() -> Iterator[None]:
    """No test leaves the process's default JobManager following jobs into the next test."""
    yield
    jobs = sys.modules.get("fal_notebook.jobs")
    if jobs is not None:
        jobs.reset_for_tests()


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(scenario="fast").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(_emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session's emulator, reset to ``fast`` with default knobs, no jobs and no recorded requests."""
    _emulator_server.reset("fast")
    yield _emulator_server
    _emulator_server.reset("fast")  # drop anything a test left held


@pytest.fixture
def fal_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """``FAL_NOTEBOOK_ENDPOINT`` → the emulator, a test key, and home/outputs in a temp dir; yields Settings."""
    home, outputs = tmp_path / "home", tmp_path / "outputs"
    home.mkdir()
    outputs.mkdir()
    for name in ("FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_TOOLS_MD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_NOTEBOOK_ENDPOINT", emulator.url)
    monkeypatch.setenv("FAL_KEY", TEST_KEY)
    monkeypatch.setenv("FAL_NOTEBOOK_HOME", str(home))
    monkeypatch.setenv("FAL_NOTEBOOK_OUTPUTS", str(outputs))
    yield load_settings()


@pytest.fixture
def child_env(fal_env: Settings, tmp_path: Path) -> dict[str, str]:
    """The environment of a child Python process in the same setting as ``fal_env`` (this checkout importable,
    no notebook session, no legacy pending file): for tests that kill or race processes."""
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    env["FAL_PENDING_FILE"] = str(tmp_path / "no-legacy.json")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


@pytest.fixture
def emu_http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A plain httpx client for the emulator, sending a well-formed test key."""
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Key {TEST_KEY}"}, timeout=30) as client:
        yield client


def _wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    """``wait_for(predicate, timeout=30)``: poll a condition instead of sleeping."""
    return _wait_for


@pytest.fixture
def completed(emu_http: httpx.Client) -> Callable[..., dict]:
    """``completed(status_url, logs=False)`` polls a request until COMPLETED and returns the last status body."""

    def poll(status_url: str, logs: bool = False, timeout: float = 30.0) -> dict:
        def done() -> dict | None:
            body = emu_http.get(status_url, params={"logs": int(logs)}).json()
            return body if body["status"] == "COMPLETED" else None

        return _wait_for(done, timeout)

    return poll
