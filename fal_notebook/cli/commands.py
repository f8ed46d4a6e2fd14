"""The ``fal-notebook`` commands that need no job store: check-key, models, info, to-data-uri, emulator."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import UsageError
from .output import emit, say

__all__ = ["cmd_check_key", "cmd_models", "cmd_info", "cmd_data_uri", "cmd_emulator"]


def cmd_check_key(command: Any) -> int:
    from ..config import load_settings

    settings = load_settings()
    if settings.key is None:
        say("no API key: set FAL_KEY=key_id:key_secret (https://fal.ai/dashboard/keys), or FAL_KEY_ID and "
             "FAL_KEY_SECRET, or a FAL_KEY line in TOOLS.md")
        return 1
    problem = settings.key.problem()
    emit({"key": settings.key.masked, "source": settings.key.source, "well_formed": problem is None,
          "endpoint": settings.endpoints.queue, "emulated": settings.endpoints.emulated})
    if problem is not None:
        say(problem)
        return 1
    return 0


def cmd_models(command: Any) -> int:
    """The bundled models first, then fal's whole catalogue; offline, the bundled ones and a note on stderr."""
    from .. import jobs
    from .jobs import manager

    manager()
    report = jobs.search_models(command.search, command.category)
    if report.get("note"):
        say(report["note"])
    emit({**report, "count": len(report["models"])})
    return 0


def cmd_info(command: Any) -> int:
    """Any fal model: bundled, cached, or described by its OpenAPI document (fetched once, cached)."""
    from .jobs import model_spec

    emit(model_spec(command.model).describe())
    return 0


def cmd_data_uri(command: Any) -> int:
    from .. import media

    if command.command == "video-to-uri":
        uri = media.video_to_data_uri(command.path)
    else:
        uri = media.to_data_uri(command.path)
    sys.stdout.write(uri + "\n")
    return 0


def cmd_emulator(command: Any) -> int:
    from ..emulator import SCENARIOS
    from ..emulator.__main__ import main as emulator_main

    if command.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {command.scenario!r}; choose from {', '.join(sorted(SCENARIOS))}")
    return emulator_main(["--host", command.host, "--port", str(command.port), "--scenario", command.scenario])
