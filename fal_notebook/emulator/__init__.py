"""A local fal.ai: queue, storage and CDN behaving as fal's hosts do (``fal-queue-protocol.md`` §9).

``EmulatorServer`` runs it on a free loopback port for tests; ``fal-notebook emulator`` (or
``python -m fal_notebook.emulator``) runs it in the foreground. It imports nothing from the client.
"""

from __future__ import annotations

from fal_notebook.emulator.app import EmulatorApp, create_app
from fal_notebook.emulator.knobs import FAULT_SCENARIOS, SCENARIOS, TIMING_SCENARIOS, Knobs
from fal_notebook.emulator.server import EmulatorServer, serve
from fal_notebook.emulator.state import SeenRequest

__all__ = [
    "EmulatorServer",
    "EmulatorApp",
    "SeenRequest",
    "Knobs",
    "SCENARIOS",
    "TIMING_SCENARIOS",
    "FAULT_SCENARIOS",
    "create_app",
    "serve",
]
