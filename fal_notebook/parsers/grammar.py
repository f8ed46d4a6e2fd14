"""The grammar of ``%fal`` / ``%%fal`` and of the ``fal-notebook`` command, in one place.

Every subcommand is declared once in :data:`SUBCOMMANDS` and parses into a frozen dataclass (``_commands.py``)
whose ``command`` field names it, so the magics and the CLI work on data, and ``%fal status`` and
``fal-notebook status`` cannot drift apart (both build their parsers from the same parent parser objects).
Anything that is not a subcommand is a model call: ``MODEL prompt words… [--field value …]``, with values
typed from the model's JSON Schema.

Only argparse, shlex, json and pyyaml: no IPython, no network, nothing that exits. Errors are
:class:`~fal_notebook.errors.UsageError`, one message saying what was expected.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UnknownModelError, UsageError
from .cell_body import interpolate, parse_cell_body
from .commands import (
    AdoptCommand,
    CancelCommand,
    CheckKeyCommand,
    CodeCommand,
    CompareCommand,
    ConfigCommand,
    DataUriCommand,
    EmulatorCommand,
    EstimateCommand,
    ExportCommand,
    HistoryCommand,
    ImportHistoryCommand,
    InfoCommand,
    JobsCommand,
    JudgeCommand,
    LineageCommand,
    ModelsCommand,
    PanelCommand,
    PollCommand,
    RerunCommand,
    ResubmitCommand,
    ResultCommand,
    ResumeCommand,
    SpendCommand,
    StatusCommand,
    SubmitCommand,
    WaitCommand,
)
from .model_call import ModelCall, Unchecked, build_model_call, coerce_value, model_usage, names_option

if TYPE_CHECKING:
    from ..catalog import Lookup

__all__ = [
    "FalArgumentParser",
    "Subcommand",
    "SUBCOMMANDS",
    "ModelCall",
    "parse_magic_line",
    "parse_cell",
    "build_model_call",
    "coerce_value",
    "split_line",
    "parse_cell_body",
    "interpolate",
    "model_usage",
    "magic_parser",
    "for_notebook",
]


class FalArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`UsageError` instead of printing and exiting.

    Help (``-h``) raises too, with the help text as the message: a magic shows it as one usage message and
    the kernel never sees ``SystemExit``. The CLI subclasses this to print help the usual way.
    """

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}{self._suggestion(message)}")

    def _suggestion(self, message: str) -> str:
        """" (did you mean --limit?)" for a misspelt option (argparse learns this only in Python 3.14)."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        known = [o for o in self._option_string_actions if o.startswith("--")]
        hints = []
        for word in message.split(":", 1)[1].split():
            near = difflib.get_close_matches(word.split("=", 1)[0], known, n=1) if word.startswith("-") else []
            hints += [f"{word} → {near[0]}"] if near else []
        return f" (did you mean {', '.join(h.split(' → ')[1] for h in hints)}?)" if hints else ""

    def print_help(self, file: Any = None) -> None:
        raise UsageError(self.format_help())

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"{self.prog}: exit {status}")


# --- subcommands --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its arguments (``configure``), how a parsed namespace becomes its dataclass (``build``),
    and where it exists (``%fal``, the CLI, or both)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], Any]
    aliases: tuple[str, ...] = ()
    magic: bool = True
    cli: bool = True

    @property
    def parent(self) -> argparse.ArgumentParser:
        """The parser object both the magic and the CLI build on (``parents=[...]``)."""
        return _PARENTS[self.name]


def _timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, metavar="S", help="Give up waiting after S seconds.")


def _model_and_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "ref", metavar="[MODEL] ID",
        help="A local job id or fal request id (resolved through the job store). A leading MODEL is accepted "
        "for compatibility with the original skill and used only for requests the store does not know.",
    )
    parser.add_argument("second", nargs="?", help=argparse.SUPPRESS)


def _split_ref(ns: argparse.Namespace) -> dict[str, str | None]:
    if ns.second is None:
        return {"id": ns.ref, "model": None}
    return {"id": ns.second, "model": ns.ref}


def _jobs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="Every job in the history, from every notebook and the CLI.")
    p.add_argument("--model", help="Only jobs of this model (endpoint id or alias).")
    p.add_argument("--state", help="Only jobs in this state, e.g. IN_PROGRESS or COMPLETED.")
    p.add_argument("--limit", type=int, metavar="N", help="At most N jobs, newest first.")
    p.add_argument("--label", help="Only jobs with this label (job.label(...)).")
    p.add_argument("--min-rating", type=int, metavar="N", help="Only jobs rated N (1..5) or better.")
    p.add_argument("--text", help="Only jobs whose id, model, input, label or note contains this text.")


def _cancel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", metavar="ID|all", help="Job ids to cancel, or `all` for every unfinished one.")


def _cancel(ns: argparse.Namespace) -> CancelCommand:
    if [i.lower() for i in ns.ids] == ["all"]:
        return CancelCommand(all=True)
    return CancelCommand(ids=tuple(ns.ids))


def _wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="*", metavar="ID", help="Jobs to wait for; none means every unfinished job.")
    _timeout(p)


def _resubmit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID", help="The job (state NOT_RECEIVED: fal's request history shows it never "
                   "arrived).")
    p.add_argument("--wait", action="store_true", help="Wait until it is done.")
    _timeout(p)


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", help="Search fal's catalogue (bundled models first) for this text.")
    p.add_argument("--search", help="The same as TEXT.")
    p.add_argument("--category", help="Only this category, e.g. text-to-image or video-to-video.")


def _models(ns: argparse.Namespace) -> ModelsCommand:
    if ns.text and ns.search and ns.text != ns.search:
        raise UsageError("give the search text once: as TEXT or with --search")
    return ModelsCommand(search=ns.search or ns.text, category=ns.category)


def _estimate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="Endpoint id or alias.")
    p.add_argument("tokens", nargs=argparse.REMAINDER, metavar="INPUT",
                   help="The input: JSON, @file.json or - (stdin), or a prompt with --field value options as in "
                        "%%fal (--n and --sweep multiply the requests).")


def _since(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--since", default=default, metavar="SPAN",
                   help="Only since then: 7d, 12h, 30m, 2w, or a date (2026-01-31)." +
                   (f" Default {default}." if default else ""))


def _spend_args(p: argparse.ArgumentParser) -> None:
    _since(p, None)
    p.add_argument("--all", action="store_true", help="Every job in the store, not only this notebook's.")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", dest="models", action="append", default=[], metavar="M",
                   help="Only this model (repeatable); default: every model this store, the catalogue or fal's "
                        "usage knows.")
    _since(p, "1d")


def _adopt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("request_id", metavar="REQUEST_ID", help="fal's request id, from any other tool.")
    p.add_argument("--model", required=True, metavar="M", help="The endpoint id (or alias) it was sent to.")


def _submit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="Endpoint id (fal-ai/nano-banana-pro) or alias (nano-banana-pro).")
    p.add_argument("arguments", metavar="JSON", help="The input as JSON, @file.json, or - to read stdin.")
    p.add_argument("--wait", action="store_true", help="Wait for the result and print the final record.")
    _timeout(p)
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="Send the input as given, without checking it against the model's schema.")
    p.add_argument("--tag", dest="tags", action="append", default=[], help="Label the job (repeatable).")
    p.add_argument("--yes", action="store_true", help="Send even when the estimate exceeds max_cost.")


def _poll_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", action="store_true", help="Follow every unfinished job to its end, printing one "
                   "JSON line per job as it finishes and a summary line last (JSON Lines; Ctrl-C stops).")
    p.add_argument("--interval", type=float, default=2.0, metavar="S", help="With --watch: read the store again "
                   "every S seconds, so jobs submitted meanwhile are followed too.")
    p.add_argument("--timeout", type=float, metavar="S", help="Give up after S seconds (exit 6): by default 300 "
                   "for one pass (finished jobs being downloaded), no limit with --watch.")


def _emulator_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    p.add_argument("--port", type=int, default=8765, help="Port to listen on (0 picks a free one).")
    p.add_argument("--scenario", default="normal", help="fast, normal, slow, or a fault such as rate_limit.")


def _rerun_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="ID", help="The job to run again: same model, input and seed.")
    p.add_argument("changes", nargs=argparse.REMAINDER, metavar="--field value",
                   help="Fields to change (prompt words replace the prompt), and --wait, --tag T.")


def _export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", dest="tags", action="append", default=[], help="Jobs with this tag (repeatable).")
    p.add_argument("--label", dest="labels", action="append", default=[], help="Jobs with this label (repeatable).")
    p.add_argument("--min-rating", type=int, metavar="N", help="Jobs rated N (1..5) or better.")


def _export_args(p: argparse.ArgumentParser) -> None:
    _export_options(p)
    p.add_argument("items", nargs=argparse.REMAINDER, metavar="[ID …] DIR",
                   help="Jobs to export (none: every job matching --tag / --label / --min-rating), then the folder.")


def _export(ns: argparse.Namespace) -> ExportCommand:
    # options may come between the ids and the folder: parse what followed the first id once more, intermixed
    inner = FalArgumentParser(prog="export", add_help=False)
    _export_options(inner)
    inner.add_argument("items", nargs="*")
    rest = inner.parse_intermixed_args(ns.items)
    ns.tags, ns.labels = ns.tags + rest.tags, ns.labels + rest.labels
    ns.min_rating = rest.min_rating if rest.min_rating is not None else ns.min_rating
    if not rest.items:
        raise UsageError("export: the folder to write to is missing: %fal export [ID …] [--tag T] DIR")
    *ids, directory = rest.items
    if not (ids or ns.tags or ns.labels or ns.min_rating is not None):
        raise UsageError("export: say which jobs: IDs, --tag T, --label L or --min-rating N, then the folder")
    return ExportCommand(ids=tuple(ids), tags=tuple(ns.tags), labels=tuple(ns.labels), min_rating=ns.min_rating,
                         directory=directory)


def _judge(name: str, what: str) -> Subcommand:
    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("ref", metavar="ID", help="The job.")
        p.add_argument("value", nargs="+", metavar=what.upper(), help=f"The {what}.")

    return Subcommand(name, f"Set a job's {what}, kept in the job store.", configure,
                      lambda ns: JudgeCommand(command=name, id=ns.ref, value=" ".join(ns.value)))


def _fields(cls: type, ns: argparse.Namespace, **extra: Any) -> Any:
    names = set(cls.__dataclass_fields__) - {"command"}
    values = {k: v for k, v in vars(ns).items() if k in names}
    values.update(extra)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _nothing(parser: argparse.ArgumentParser) -> None:
    """A subcommand without arguments."""


SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in [
        Subcommand("jobs", "List jobs: this origin's unfinished ones, or the whole history with --all.",
                   _jobs_args, lambda ns: _fields(JobsCommand, ns), aliases=("list",)),
        Subcommand("status", "Refresh and show one job's status.", _model_and_id,
                   lambda ns: StatusCommand(**_split_ref(ns))),
        Subcommand("result", "Show one job's result (waits for it; --timeout to give up).",
                   lambda p: (_model_and_id(p), _timeout(p)),
                   lambda ns: ResultCommand(**_split_ref(ns), timeout=ns.timeout), magic=False),
        Subcommand("cancel", "Cancel jobs by id, or every unfinished one with `all`.", _cancel_args, _cancel),
        Subcommand("wait", "Wait until the jobs are done.", _wait_args, lambda ns: _fields(WaitCommand, ns)),
        Subcommand("resubmit", "Send again a job that fal did not receive (NOT_RECEIVED); never any other.",
                   _resubmit_args, lambda ns: _fields(ResubmitCommand, ns)),
        Subcommand("resume", "Follow unfinished jobs again (this notebook's; --all for every origin).",
                   lambda p: p.add_argument("--all", action="store_true", help="Resume jobs of every origin."),
                   lambda ns: ResumeCommand(all=ns.all), cli=False),
        Subcommand("models", "Search fal's models: the bundled ones first, then fal's whole catalogue.",
                   _models_args, _models),
        Subcommand("info", "Describe one model: fields, types, defaults, limits.",
                   lambda p: p.add_argument("model", help="Endpoint id or alias."),
                   lambda ns: InfoCommand(model=ns.model), aliases=("model-info",)),
        Subcommand("config", "Show the endpoint, the masked key, the budget and where files go; "
                   "NAME=VALUE sets a setting for this session (max_cost=2.50, max_cost=none).",
                   lambda p: p.add_argument("settings", nargs="*", metavar="NAME=VALUE"),
                   lambda ns: ConfigCommand(settings=tuple(ns.settings)), cli=False),
        Subcommand("history", "Search past jobs by prompt, model or id.",
                   lambda p: (p.add_argument("text", nargs="*", help="Text to look for."),
                              p.add_argument("--limit", type=int, default=20, metavar="N", help="At most N jobs.")),
                   lambda ns: HistoryCommand(text=" ".join(ns.text) or None, limit=ns.limit), cli=False),
        Subcommand("panel", "Open the form panel.",
                   lambda p: p.add_argument("model", nargs="?", help="Preselect this model."),
                   lambda ns: PanelCommand(model=ns.model), cli=False),
        Subcommand("check-key", "Show which API key would be used (masked) and where it came from.", _nothing,
                   lambda ns: CheckKeyCommand(), magic=False),
        Subcommand("submit", "Submit a request to fal's queue and print its record.", _submit_args,
                   lambda ns: _fields(SubmitCommand, ns), magic=False),
        Subcommand("poll", "One pass over unfinished jobs: refresh each once and print what changed.",
                   _poll_args, lambda ns: _fields(PollCommand, ns), magic=False),
        Subcommand("to-data-uri", "Print a local file as a data: URI.",
                   lambda p: p.add_argument("path", help="The file."),
                   lambda ns: DataUriCommand(path=ns.path), magic=False),
        Subcommand("video-to-uri", "Check a local video against the video models' limits, then print it as a "
                   "data: URI.", lambda p: p.add_argument("path", help="The video file."),
                   lambda ns: DataUriCommand(command="video-to-uri", path=ns.path), magic=False),
        Subcommand("emulator", "Run the local fal emulator until Ctrl-C.", _emulator_args,
                   lambda ns: _fields(EmulatorCommand, ns), magic=False),
        Subcommand("estimate", "Price a request before paying: unit price × quantity (images, megapixels, "
                   "seconds) = total.", _estimate_args,
                   lambda ns: EstimateCommand(model=ns.model, tokens=tuple(ns.tokens))),
        Subcommand("spend", "What the jobs cost, per model (from their estimates), and fal's own usage figures "
                   "when the key may read them.", _spend_args, lambda ns: _fields(SpendCommand, ns)),
        Subcommand("import-history", "Bring the account's past requests (made anywhere) into the job store.",
                   _import_args, lambda ns: _fields(ImportHistoryCommand, ns)),
        Subcommand("adopt", "Follow a request made from another tool, by its request id.", _adopt_args,
                   lambda ns: _fields(AdoptCommand, ns)),
        Subcommand("compare", "Show jobs side by side, the fields that differ highlighted.",
                   lambda p: p.add_argument("ids", nargs="+", metavar="ID", help="Two or more jobs."),
                   lambda ns: CompareCommand(ids=tuple(ns.ids))),
        Subcommand("rerun", "Run a job again: same model, input and seed, plus the changes given.", _rerun_args,
                   lambda ns: RerunCommand(id=ns.ref, changes=tuple(ns.changes))),
        Subcommand("lineage", "Draw the chain of jobs whose results led to this one, and what came of it.",
                   lambda p: p.add_argument("ref", metavar="ID", help="The job."),
                   lambda ns: LineageCommand(id=ns.ref)),
        Subcommand("code", "The %%fal line (or with --python the Python call) that makes this job again.",
                   lambda p: (p.add_argument("ref", metavar="ID", help="The job."),
                              p.add_argument("--python", action="store_true", help="The Python call instead.")),
                   lambda ns: CodeCommand(id=ns.ref, python=ns.python)),
        Subcommand("export", "Write results with their settings embedded, a contact sheet and prompts.jsonl.",
                   _export_args, _export),
        _judge("rate", "rating (1..5)"),
        _judge("label", "label"),
        _judge("note", "note"),
    ]
}


def _make_parent(sub: Subcommand) -> argparse.ArgumentParser:
    parser = FalArgumentParser(add_help=False)
    sub.configure(parser)
    return parser


_PARENTS: dict[str, argparse.ArgumentParser] = {name: _make_parent(s) for name, s in SUBCOMMANDS.items()}
_MAGIC_NAMES: dict[str, Subcommand] = {
    name: s for s in SUBCOMMANDS.values() if s.magic for name in (s.name, *s.aliases)
}


def magic_parser(name: str) -> FalArgumentParser:
    """The ``%fal NAME`` parser (help raises :class:`UsageError` with the help text)."""
    sub = _MAGIC_NAMES[name]
    return FalArgumentParser(prog=f"%fal {name}", description=sub.help, parents=[sub.parent])


MAGIC_USAGE = (
    "usage: %fal MODEL prompt words… [--field value …] [--n N] [--seed S] [--sweep field=a,b,c] [--wait] "
    "[--no-validate] [--tag T] [--yes] [--new]\n       %fal {" + ",".join(s.name for s in SUBCOMMANDS.values() if s.magic)
    + "} …  (%fal SUBCOMMAND --help, %fal MODEL --help)"
)


def parse_magic_line(line: str, namespace: Mapping[str, Any] | None = None, *, lookup: Lookup | None = None) -> Any:
    """Parse a ``%fal`` line into a subcommand dataclass or a :class:`ModelCall`.

    ``namespace`` (the user's) fills ``{name}`` placeholders in a model call's values and in every subcommand
    argument (``%fal cancel {job.id}``, ``%fal status {job}``); ``$var`` is left alone.
    ``lookup`` gives a model's spec (bundled, cached or fetched; default: the bundled and registered ones).
    """
    tokens = split_line(line)
    if not tokens or tokens[0] in {"-h", "--help", "help"}:
        raise UsageError(MAGIC_USAGE)
    if tokens[0] in _MAGIC_NAMES:
        sub = _MAGIC_NAMES[tokens[0]]
        args = [_token_text(interpolate(t, namespace)) for t in tokens[1:]]
        return sub.build(magic_parser(tokens[0]).parse_args(args))
    try:
        spec = _spec(tokens[0], tokens[1:], lookup)
    except UnknownModelError as exc:
        near = difflib.get_close_matches(tokens[0].lower(), list(_MAGIC_NAMES), n=1, cutoff=0.7)
        if near:
            raise UsageError(f"%fal {tokens[0]}: no such subcommand or model (did you mean %fal {near[0]}?)") from None
        raise exc from None
    return build_model_call(spec, tokens[1:], namespace=namespace)


_SHELL_COMMAND = re.compile(r"`fal-notebook ([a-z][\w-]*)([^`]*)`")


def for_notebook(message: str) -> str:
    """An error's hint in a notebook's terms: "`fal-notebook list --all`" becomes "`%fal jobs --all` (or
    `%fal history TEXT`)"; commands that exist only in the CLI stay as they are."""

    def swap(match: re.Match[str]) -> str:
        sub = _MAGIC_NAMES.get(match.group(1))
        if sub is None:
            return match.group(0)
        extra = " (or `%fal history TEXT`)" if sub.name == "jobs" else ""
        return f"`%fal {sub.name}{match.group(2)}`{extra}"

    return _SHELL_COMMAND.sub(swap, message)


def _token_text(value: Any) -> str:
    """A filled subcommand argument as text: ``{job}`` names the job by its id, numbers read as written."""
    if isinstance(value, str):
        return value
    if isinstance(getattr(value, "id", None), str):
        return value.id
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UsageError(f"a {type(value).__name__} cannot be a subcommand argument; give a job, a job id or text")


def parse_cell(line: str, body: str, namespace: Mapping[str, Any] | None = None, *,
               lookup: Lookup | None = None) -> ModelCall:
    """Parse ``%%fal MODEL [options]`` plus its body (YAML mapping, or the prompt itself)."""
    tokens = split_line(line)
    if not tokens or tokens[0].startswith("-"):
        raise UsageError("usage: %%fal MODEL [--field value …]  followed by a YAML mapping or the prompt")
    base = interpolate(parse_cell_body(body), namespace)
    return build_model_call(_spec(tokens[0], tokens[1:], lookup), tokens[1:], base=base, namespace=namespace)


def _spec(model: str, tokens: list[str], lookup: Lookup | None) -> Any:
    """The model's spec from the one injected lookup. With ``--no-validate`` nothing waits for the network: a
    schema at hand still types the values; without one the options are taken as given (:class:`Unchecked`)."""
    from .. import catalog  # models.json is parsed on first use, not at import time

    checked = not names_option(tokens, "no_validate")
    try:
        return (lookup or catalog.known)(model, fetch=checked)
    except UnknownModelError:
        if checked:
            raise
        return Unchecked(id=catalog.resolve(model))  # an id without an owner is still an unknown model


# --- splitting a line ---------------------------------------------------------------------------------------

_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")
_KEEP = "\ue000"  # a private-use character stands in for apostrophes while shlex runs


def split_line(line: str) -> list[str]:
    """Split like a shell, but keep apostrophes in words ("a fox's den") and never fail on a stray quote.

    shlex would join ``it's Bob's`` into one mangled word, or refuse ``the dogs' bone``; prompts are prose.
    """
    protected = _APOSTROPHE.sub(_KEEP, line)
    try:
        tokens = shlex.split(protected)
    except ValueError:
        lexer = shlex.shlex(protected, posix=True)
        lexer.whitespace_split, lexer.quotes, lexer.commenters = True, '"', ""
        try:
            tokens = list(lexer)
        except ValueError:
            tokens = protected.split()
    return [t.replace(_KEEP, "'") for t in tokens]
