"""Shared fixtures: one real emulator for the whole run, and an environment that points fal_notebook at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fal_notebook.config import Settings, load_settings
from fal_notebook.emulator import EmulatorServer

TEST_KEY = "test-id:test-secret"


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(scenario="fast").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(_emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session's emulator, reset to the ``fast`` scenario with default knobs and no recorded requests."""
    _emulator_server.reset("fast")
    yield _emulator_server
    _emulator_server.reset("fast")  # release anything a test left held


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
