"""What each ``%fal`` / ``fal-notebook`` subcommand parses into: one frozen dataclass per subcommand, whose
``command`` field names it, so the magics and the CLI dispatch on data (jupyter-ai's ``parsers.py`` shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "JobsCommand", "StatusCommand", "ResultCommand", "CancelCommand", "WaitCommand", "ResumeCommand",
    "ModelsCommand", "InfoCommand", "ConfigCommand", "HistoryCommand", "PanelCommand", "CheckKeyCommand",
    "SubmitCommand", "PollCommand", "DataUriCommand", "EmulatorCommand", "EstimateCommand", "SpendCommand",
    "ImportHistoryCommand", "AdoptCommand",
    "ResubmitCommand",
    "CompareCommand", "RerunCommand", "LineageCommand", "CodeCommand", "ExportCommand", "JudgeCommand",
]


@dataclass(frozen=True, kw_only=True)
class JobsCommand:
    command: Literal["jobs"] = "jobs"
    all: bool = False
    model: str | None = None
    state: str | None = None
    limit: int | None = None
    label: str | None = None
    min_rating: int | None = None
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class StatusCommand:
    command: Literal["status"] = "status"
    id: str
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class ResultCommand:
    command: Literal["result"] = "result"
    id: str
    model: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class CancelCommand:
    command: Literal["cancel"] = "cancel"
    ids: tuple[str, ...] = ()
    all: bool = False


@dataclass(frozen=True, kw_only=True)
class ResubmitCommand:
    """Send again a job fal did not receive (NOT_RECEIVED)."""

    command: Literal["resubmit"] = "resubmit"
    id: str
    wait: bool = False
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class WaitCommand:
    command: Literal["wait"] = "wait"
    ids: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class ResumeCommand:
    command: Literal["resume"] = "resume"
    all: bool = False


@dataclass(frozen=True, kw_only=True)
class ModelsCommand:
    command: Literal["models"] = "models"
    search: str | None = None
    category: str | None = None

    def matches(self, spec: Any) -> bool:
        """Whether a catalogue entry passes the ``--category`` and search-text filters."""
        text = " ".join([spec.id, spec.title, *spec.aliases]).lower()
        return (self.category in (None, spec.category)) and (self.search or "").lower() in text


@dataclass(frozen=True, kw_only=True)
class InfoCommand:
    command: Literal["info"] = "info"
    model: str


@dataclass(frozen=True, kw_only=True)
class ConfigCommand:
    command: Literal["config"] = "config"
    settings: tuple[str, ...] = ()  # ``name=value`` pairs to set (``max_cost=2.5``); none: show the settings


@dataclass(frozen=True, kw_only=True)
class HistoryCommand:
    command: Literal["history"] = "history"
    text: str | None = None
    limit: int = 20


@dataclass(frozen=True, kw_only=True)
class PanelCommand:
    command: Literal["panel"] = "panel"
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class CheckKeyCommand:
    command: Literal["check-key"] = "check-key"


@dataclass(frozen=True, kw_only=True)
class SubmitCommand:
    command: Literal["submit"] = "submit"
    model: str
    arguments: str  # JSON text, ``@file.json`` or ``-`` (stdin); the CLI reads it
    wait: bool = False
    timeout: float | None = None
    validate: bool = True
    tags: tuple[str, ...] = ()
    yes: bool = False  # send even when the estimate exceeds max_cost


@dataclass(frozen=True, kw_only=True)
class PollCommand:
    command: Literal["poll"] = "poll"
    watch: bool = False
    interval: float = 2.0
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class DataUriCommand:
    command: Literal["to-data-uri", "video-to-uri"] = "to-data-uri"
    path: str


@dataclass(frozen=True, kw_only=True)
class EmulatorCommand:
    command: Literal["emulator"] = "emulator"
    host: str = "127.0.0.1"
    port: int = 8765
    scenario: str = "normal"


@dataclass(frozen=True, kw_only=True)
class EstimateCommand:
    command: Literal["estimate"] = "estimate"
    model: str
    tokens: tuple[str, ...] = ()  # the CLI's JSON (or @file.json, -), or the model call's words and options


@dataclass(frozen=True, kw_only=True)
class SpendCommand:
    command: Literal["spend"] = "spend"
    since: str | None = None
    all: bool = False


@dataclass(frozen=True, kw_only=True)
class ImportHistoryCommand:
    command: Literal["import-history"] = "import-history"
    models: tuple[str, ...] = ()
    since: str = "1d"


@dataclass(frozen=True, kw_only=True)
class AdoptCommand:
    command: Literal["adopt"] = "adopt"
    request_id: str
    model: str


@dataclass(frozen=True, kw_only=True)
class CompareCommand:
    command: Literal["compare"] = "compare"
    ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RerunCommand:
    command: Literal["rerun"] = "rerun"
    id: str
    changes: tuple[str, ...] = ()  # ``--field value`` / prompt words, typed later by the job's model schema


@dataclass(frozen=True, kw_only=True)
class LineageCommand:
    command: Literal["lineage"] = "lineage"
    id: str


@dataclass(frozen=True, kw_only=True)
class CodeCommand:
    command: Literal["code"] = "code"
    id: str
    python: bool = False


@dataclass(frozen=True, kw_only=True)
class ExportCommand:
    command: Literal["export"] = "export"
    ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    min_rating: int | None = None
    directory: str


@dataclass(frozen=True, kw_only=True)
class JudgeCommand:
    command: Literal["rate", "label", "note"] = "rate"
    id: str
    value: str
