"""``fal-notebook``: every command of the original skill, with JSON on stdout and exit codes instead of tracebacks.

Data commands print JSON (indent 2, UTF-8 as is); ``to-data-uri`` / ``video-to-uri`` print the URI itself so
``$(fal-notebook to-data-uri x.png)`` works as before. A job is always printed the same way: ``id``,
``request_id``, ``model``, ``state`` (also as ``status``), ``queue_position``, fal's ``status_url`` /
``response_url`` / ``cancel_url``, the times, ``files`` (absolute local paths), ``error`` (``type``,
``message``, ``detail``, …), ``origin``, ``tags`` and the input; data URIs are cut to their header and length.
``poll --watch`` prints JSON Lines instead: one compact job per line as each finishes (jobs submitted while it
runs included), then ``{"summary": true, "count", "states", "still_pending"}``. Errors are one line on stderr and an exit code from the table in
:mod:`fal_notebook.cli.exit_codes` (``--help`` prints it).

The grammar comes from :mod:`fal_notebook.parsers` (shared with ``%fal``); the handlers here are a few library
calls each. Jobs submitted here are stored with origin ``cli``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .._version import __version__
from ..errors import FalError, UsageError, one_line
from ..parsers import SUBCOMMANDS, FalArgumentParser
from . import account, commands, iterate, jobs
from .exit_codes import EXIT_CODE_TEXT, EXIT_CODES, INTERNAL, INTERRUPTED, exit_code
from .output import emit, say, scrub

__all__ = ["main", "build_parser", "exit_code", "emit", "scrub", "say", "one_line", "EXIT_CODES", "HANDLERS"]

log = logging.getLogger("fal_notebook")

# command name → handler (each takes the parsed command dataclass and returns an exit code)
HANDLERS: dict[str, Callable[[Any], int]] = {
    "check-key": commands.cmd_check_key,
    "submit": jobs.cmd_submit,
    "status": jobs.cmd_status,
    "result": jobs.cmd_result,
    "cancel": jobs.cmd_cancel,
    "resubmit": jobs.cmd_resubmit,
    "wait": jobs.cmd_wait,
    "poll": jobs.cmd_poll,
    "jobs": jobs.cmd_list,
    "models": commands.cmd_models,
    "info": commands.cmd_info,
    "to-data-uri": commands.cmd_data_uri,
    "video-to-uri": commands.cmd_data_uri,
    "emulator": commands.cmd_emulator,
    "estimate": account.cmd_estimate,
    "spend": account.cmd_spend,
    "import-history": account.cmd_import_history,
    "adopt": account.cmd_adopt,
    "rerun": iterate.cmd_rerun,
    "export": iterate.cmd_export,
    "compare": iterate.cmd_compare,
    "lineage": iterate.cmd_lineage,
    "code": iterate.cmd_code,
    "rate": iterate.cmd_judge,
    "label": iterate.cmd_judge,
    "note": iterate.cmd_judge,
}


class _CliParser(FalArgumentParser):
    """Usage errors raise (so ``main`` prints one line); ``--help`` and ``--version`` print and exit as usual."""

    print_help = argparse.ArgumentParser.print_help
    exit = argparse.ArgumentParser.exit


def build_parser() -> argparse.ArgumentParser:
    """The ``fal-notebook`` parser: one subparser per CLI subcommand, built on the parsers ``%fal`` uses."""
    formatter = argparse.RawDescriptionHelpFormatter
    epilog = f"exit codes:\n{EXIT_CODE_TEXT}"
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
    try:
        jobs.close()
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


if __name__ == "__main__":
    sys.exit(main())
