"""``fal-notebook``: every command of the original skill, with JSON on stdout and exit codes instead of tracebacks.

Data commands print JSON (indent 2, UTF-8 as is); ``to-data-uri`` / ``video-to-uri`` print the URI itself so
``$(fal-notebook to-data-uri x.png)`` works as before. A job is always printed the same way: ``id``,
``request_id``, ``model``, ``state`` (also as ``status``), ``queue_position``, fal's ``status_url`` /
``response_url`` / ``cancel_url``, the times, ``files`` (absolute local paths), ``error`` (``type``,
``message``, ``detail``, …), ``origin``, ``tags`` and the input; data URIs are cut to their header and length.
``poll --watch`` prints JSON Lines instead: one compact job per line as each finishes (jobs submitted while it
runs included), then ``{"summary": true, "count", "states", "still_pending"}``. Errors are one line on stderr and an exit code:

  0   ok
  1   no API key, or fal refused the key
  2   usage: an unknown command, arguments that do not parse, JSON that is not JSON
  3   unknown model, or no such job
  4   invalid input: the input breaks the model's schema or limits (nothing was sent), or a file is unusable
  5   the request failed on fal's side (an error result, cancelled, expired, an HTTP error)
  6   timed out waiting
  7   the network failed and retries were used up
  70  internal error (a bug: please report it with the command line)
  130 interrupted (Ctrl-C)

The grammar comes from :mod:`fal_notebook.parsers` (shared with ``%fal``); the handlers here are a few library
calls each. Jobs submitted here are stored with origin ``cli``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from ._version import __version__
from .errors import (
    AuthError,
    ConfigError,
    FalError,
    FalTimeoutError,
    JobCancelledError,
    NotFoundError,
    RequestError,
    TransportError,
    UnknownModelError,
    UploadError,
    UsageError,
    ValidationError,
)
from .parsers import SUBCOMMANDS, FalArgumentParser

__all__ = ["main", "build_parser", "exit_code", "emit", "scrub", "say", "one_line", "EXIT_CODES"]

log = logging.getLogger("fal_notebook")

ORIGIN = "cli"
EXIT_CODES = __doc__.split("exit code:\n\n", 1)[1].split("\n\n", 1)[0]
_EXIT_BY_ERROR: list[tuple[type[BaseException], int]] = [
    (ConfigError, 1), (AuthError, 1), (UsageError, 2), (UnknownModelError, 3), (NotFoundError, 3),
    (ValidationError, 4), (UploadError, 4), (FalTimeoutError, 6), (TransportError, 7),
    (RequestError, 5), (JobCancelledError, 5),
]
INTERNAL, INTERRUPTED = 70, 130


def exit_code(exc: BaseException) -> int:
    """The documented exit code of an error (see the module docstring)."""
    return next((code for cls, code in _EXIT_BY_ERROR if isinstance(exc, cls)), INTERNAL)


class _CliParser(FalArgumentParser):
    """Usage errors raise (so ``main`` prints one line); ``--help`` and ``--version`` print and exit as usual."""

    print_help = argparse.ArgumentParser.print_help
    exit = argparse.ArgumentParser.exit


def build_parser() -> argparse.ArgumentParser:
    """The ``fal-notebook`` parser: one subparser per CLI subcommand, built on the parsers ``%fal`` uses."""
    formatter = argparse.RawDescriptionHelpFormatter
    epilog = f"exit codes:\n{EXIT_CODES}"
    top = _CliParser(prog="fal-notebook", description="fal.ai models from the shell: submit, follow and fetch "
                     "requests kept in a durable job store.", epilog=epilog, formatter_class=formatter)
    top.add_argument("--version", action="version", version=f"fal-notebook {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="Log what happens (to stderr).")
    sub = top.add_subparsers(metavar="COMMAND", parser_class=_CliParser)
    for spec in SUBCOMMANDS.values():
        if spec.cli:
            parser = sub.add_parser(spec.name, aliases=list(spec.aliases), parents=[spec.parent], help=spec.help,
                                    description=spec.help, epilog=epilog, formatter_class=formatter)
            parser.set_defaults(subcommand=spec)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code. Never lets a traceback reach the user."""
    with _stderr_logging() as verbose:
        try:
            namespace = build_parser().parse_args(argv)
            verbose(namespace.verbose)
            if getattr(namespace, "subcommand", None) is None:
                raise UsageError("a command is needed; `fal-notebook --help` lists them")
            command = namespace.subcommand.build(namespace)
            return HANDLERS[command.command](command) or 0
        except SystemExit as exc:  # --help / --version
            return exc.code if isinstance(exc.code, int) else 0
        except KeyboardInterrupt:
            say("interrupted")
            return INTERRUPTED
        except FalError as exc:
            say(one_line(exc))
            return exit_code(exc)
        except Exception as exc:  # a bug: one line, not a traceback (-v logs it)
            log.debug("internal error", exc_info=True)
            say(f"internal error: {type(exc).__name__}: {one_line(exc)}")
            return INTERNAL
        finally:
            _release_jobs()


def _release_jobs() -> None:
    """Release the job leases this command took (a second Ctrl-C here must not print a traceback)."""
    if "fal_notebook._cli_jobs" in sys.modules:
        try:
            sys.modules["fal_notebook._cli_jobs"].close()
        except KeyboardInterrupt:
            log.debug("interrupted while releasing jobs; their leases run out on their own")


@contextlib.contextmanager
def _stderr_logging() -> Iterator[Callable[[bool], None]]:
    """The library's warnings as ``fal-notebook: WARNING: …`` lines on stderr for one command (``-v``: all)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fal-notebook: %(levelname)s: %(message)s"))
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    try:
        yield lambda verbose: log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def one_line(exc: BaseException) -> str:
    """An error's text on one line: a ValidationError's list of problems joined with ``;``."""
    parts = [part.strip().removeprefix("- ") for part in str(exc).splitlines() if part.strip()]
    return "; ".join(parts).replace(":;", ":") or type(exc).__name__


def say(text: str) -> None:
    prefix = "" if text.startswith("fal-notebook") else "fal-notebook: "
    sys.stderr.write(f"{prefix}{text}\n")
    sys.stderr.flush()


def emit(data: Any, *, line: bool = False) -> None:
    """JSON on stdout: indent 2 (``line``: one compact line, for JSON Lines), non-ASCII kept, times in
    ISO 8601, paths and enums as text, and every data URI cut to its header and length (see :func:`scrub`)."""
    indent = None if line else 2
    text = json.dumps(scrub(data), indent=indent, ensure_ascii=False, default=_json_default)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "value", None) if isinstance(value, Enum) else str(value)


_DATA_URI = re.compile(r"(data:[\w.+-]*/?[\w.+-]*(?:;[\w.+-]+(?:=[\w.+-]*)?)*),([A-Za-z0-9+/=%_-]{32,})")


def scrub(value: Any) -> Any:
    """``value`` with every data URI (whole strings or inside text, e.g. an error echoing the input) shown as
    ``data:<type>;base64,…(N characters)``: a terminal or a log never receives megabytes of base64."""
    if isinstance(value, str):
        return _DATA_URI.sub(lambda m: f"{m[1]},…({len(m[0])} characters)", value) if "data:" in value else value
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


# --- commands that need no job store --------------------------------------------------------------------------


def cmd_check_key(command: Any) -> int:
    from .config import load_settings

    settings = load_settings()
    if settings.key is None:
        say("no API key: set FAL_KEY=key_id:key_secret (https://fal.ai/dashboard/keys), or FAL_KEY_ID and "
             "FAL_KEY_SECRET, or a FAL_KEY line in TOOLS.md")
        return 1
    emit({"key": settings.key.masked, "source": settings.key.source, "well_formed": settings.key.well_formed,
          "endpoint": settings.endpoints.queue, "emulated": settings.endpoints.emulated})
    if not settings.key.well_formed:
        say("the key holds a space, line break, control or non-ASCII character and cannot be sent; copy it "
            "again as key_id:key_secret")
        return 1
    return 0


def cmd_models(command: Any) -> int:
    from . import catalog

    specs = [s for s in catalog.models() if command.matches(s)]
    emit({"models": [_model_summary(s) for s in specs], "count": len(specs)})
    return 0


def _model_summary(spec: Any) -> dict[str, Any]:
    return {"id": spec.id, "title": spec.title, "category": spec.category, "aliases": list(spec.aliases),
            "required": list(spec.required), "file_fields": sorted(spec.media_fields), "output": spec.output}


def cmd_info(command: Any) -> int:
    from . import catalog

    emit(catalog.get(command.model).describe())
    return 0


def cmd_data_uri(command: Any) -> int:
    from . import media

    if command.command == "video-to-uri":
        uri = media.video_to_data_uri(command.path)
    else:
        uri = media.to_data_uri(command.path)
    sys.stdout.write(uri + "\n")
    return 0


def cmd_emulator(command: Any) -> int:
    from .emulator import SCENARIOS
    from .emulator.__main__ import main as emulator_main

    if command.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {command.scenario!r}; choose from {', '.join(sorted(SCENARIOS))}")
    return emulator_main(["--host", command.host, "--port", str(command.port), "--scenario", command.scenario])


def _jobs_command(name: str) -> Callable[[Any], int]:
    """A handler from :mod:`fal_notebook._cli_jobs`, imported when first run (it pulls in the runtime)."""

    def run(command: Any) -> int:
        from . import _cli_jobs

        return getattr(_cli_jobs, name)(command)

    run.__name__ = name
    return run


HANDLERS: dict[str, Callable[[Any], int]] = {
    "check-key": cmd_check_key,
    **{name: _jobs_command(f"cmd_{name}") for name in ("submit", "status", "result", "cancel", "wait", "poll")},
    "jobs": _jobs_command("cmd_list"),
    "models": cmd_models,
    "info": cmd_info,
    "to-data-uri": cmd_data_uri,
    "video-to-uri": cmd_data_uri,
    "emulator": cmd_emulator,
}


if __name__ == "__main__":
    sys.exit(main())
