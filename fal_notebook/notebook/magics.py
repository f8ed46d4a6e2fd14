"""``%fal`` / ``%%fal``: parse the line, pick a handler from one table, call the library, return something to show.

The grammar lives in :mod:`fal_notebook.parsers`; every ``handle_<name>`` is a few library calls. Errors from
the library (:class:`~fal_notebook.errors.FalError`) become one-line IPython usage errors, never tracebacks.
A later subcommand (the form panel) slots in by adding one entry to :attr:`FalMagics.handlers`.

    %fal nano-banana-pro a red fox in the snow --aspect-ratio 16:9
    %fal wait
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ..errors import FalError, FalTimeoutError, UsageError, counted, one_line
from ..parsers import grammar as parsers
from ..views.account import found_models_table, spend_table
from ..views.card_data import prompt_of, state_name
from ..views.tables import Message, job_table, model_info
from .interrupt import Interrupted

__all__ = ["FalMagics"]

log = logging.getLogger("fal_notebook")
PRICE_TIMEOUT = 5.0  # seconds %fal info waits for fal's price list before showing where to look instead


@magics_class
class FalMagics(Magics):
    """The ``%fal`` magic. ``presenter`` shows jobs (one live card each) and remembers what a cell showed."""

    def __init__(self, shell: Any, presenter: Any) -> None:
        super().__init__(shell)
        self.presenter = presenter
        self.handlers: dict[str, Callable[[Any], Any]] = {
            "call": self.handle_call,
            "jobs": self.handle_jobs,
            "status": self.handle_status,
            "cancel": self.handle_cancel,
            "resubmit": self.handle_resubmit,
            "wait": self.handle_wait,
            "resume": self.handle_resume,
            "models": self.handle_models,
            "info": self.handle_info,
            "config": self.handle_config,
            "history": self.handle_history,
            "estimate": self.handle_estimate,
            "spend": self.handle_spend,
            "import-history": self.handle_import_history,
            "adopt": self.handle_adopt,
            "panel": self.handle_panel,
            "compare": self.handle_compare,
            "rerun": self.handle_rerun,
            "lineage": self.handle_lineage,
            "code": self.handle_code,
            "export": self.handle_export,
            "rate": self.handle_judge,
            "label": self.handle_judge,
            "note": self.handle_judge,
        }

    @no_var_expand
    @line_cell_magic
    def fal(self, line: str, cell: str | None = None) -> Any:
        """Run a fal model, or manage jobs. ``%fal help`` lists everything.

        %fal MODEL prompt words… [--field value …] [--n N] [--sweep field=a,b,c] [--wait] [--yes]
        %%fal MODEL [--field value …]   (body: a YAML mapping of fields, or the prompt; {name} from your namespace)
        %fal jobs | status ID | cancel ID|all | wait [--timeout S] | resume | models | info MODEL | config
        %fal history [TEXT]
        %fal models [TEXT] [--category C] | estimate MODEL prompt [--field v] | spend [--since 7d] [--all]
        %fal config max_cost=2.50 | import-history [--model M] [--since 7d] | adopt REQUEST_ID --model M
        %fal panel [MODEL]   (a form, this notebook's live jobs and a gallery; fal_notebook.panel() in Python)
        %fal compare ID ID… | rerun ID [--field v] | lineage ID | code ID [--python] | rate ID N | label ID L
        %fal note ID TEXT | export [ID…] [--tag T] [--label L] DIR | jobs --label L --min-rating N
        """
        from .. import jobs

        namespace = self.shell.user_ns
        try:
            if cell is None:
                command = parsers.parse_magic_line(line, namespace, lookup=jobs.model_spec)
            else:
                command = parsers.parse_cell(line, cell, namespace, lookup=jobs.model_spec)
            handler = self.handlers.get(command.command)
            if handler is None:
                raise UsageError(f"%fal {command.command} is not available in this version")
            return handler(command)
        except FalError as exc:
            raise IPythonUsageError(parsers.for_notebook(one_line(exc))) from None

    # --- model calls --------------------------------------------------------------------------------------

    def handle_call(self, call: Any) -> Any:
        """Submit one request (or a group for --n / --sweep), show a card per job, return the Job/JobGroup."""
        from .. import jobs

        jobs.check_group_size(call.size, call.yes)  # before anything is sent
        key = self.presenter.cells.key(call.model, call.expand())  # before a seed is picked: the cell's own request
        earlier = None if call.new or key is None else _earlier_run(key)
        if earlier is not None:
            return self._show_again(earlier, call)
        first_seed = _first_seed(call) if call.size > 1 else None
        requests = call.expand(first_seed)
        if len(requests) == 1:  # over max_cost: refused with the estimate, nothing sent (unless --yes)
            result = jobs.submit(call.model, requests[0], validate=call.validate, tags=call.tags, confirm=call.yes)
            submitted = [result]
        else:  # every request is validated, and the group's estimate held against max_cost, before any is sent
            result = jobs.submit_group(call.model, requests, call.axes, validate=call.validate, tags=call.tags,
                                       confirm=call.yes)
            submitted = list(result)
        if key is not None:
            _remember_run(key, submitted)
        if call.wait:
            self.presenter.wait_for(submitted, result)
        else:
            self.presenter.present(result)
        return result

    def _show_again(self, found: list[Any], call: Any) -> Any:
        """The cell ran before and its job for this request stands: show that job instead of paying twice."""
        from .. import jobs

        result = found[0] if len(found) == 1 else jobs.JobGroup(found, axes=call.axes)
        ids = ", ".join(f"{j.id[:6]}…" for j in found)
        running = any(not j.done for j in found)
        what = "is still running" if running else "finished (FAL_NOTEBOOK_REATTACH=finished)"
        self.presenter.note(f"this cell's earlier {counted(len(found), 'job')} ({ids}) {what}: showing "
                            f"{'it' if len(found) == 1 else 'them'} instead of submitting again; add --new to "
                            "submit anyway")
        if call.wait:
            self.presenter.wait_for(found, result)
        else:
            self.presenter.present(result)
        return result

    # --- subcommands --------------------------------------------------------------------------------------

    def handle_jobs(self, cmd: Any) -> Any:
        from .. import jobs

        found = jobs.jobs(model=cmd.model, state=cmd.state, all=cmd.all, limit=cmd.limit, label=cmd.label,
                          min_rating=cmd.min_rating, text=cmd.text)
        title = "all jobs" if cmd.all else "this notebook's jobs"
        return job_table(f"{title}: {len(found)}", [job.snapshot() for job in found])

    def handle_status(self, cmd: Any) -> Any:
        from .. import jobs

        job = jobs.get(cmd.id)
        self.presenter.present(job)
        return job

    def handle_resubmit(self, cmd: Any) -> Any:
        from .. import jobs

        job = jobs.get(cmd.id).resubmit()
        self.presenter.present(job)
        if cmd.wait:
            self.presenter.wait_for([job])
        return job

    def handle_cancel(self, cmd: Any) -> Message:
        from .. import jobs

        targets = [j for j in jobs.jobs() if not j.done] if cmd.all else [jobs.get(i) for i in cmd.ids]
        for job in targets:
            job.cancel()
        ids = ", ".join(j.id for j in targets) or "none"
        return Message(f"cancel requested for {counted(len(targets), 'job')}: {ids}")

    def handle_wait(self, cmd: Any) -> Message:
        from .. import jobs

        targets = [jobs.get(i) for i in cmd.ids] or None
        try:
            finished = jobs.wait(targets, timeout=cmd.timeout)
        except KeyboardInterrupt:
            raise Interrupted("interrupted: stopped waiting; the jobs keep running on fal "
                              "(%fal cancel all stops them, %fal jobs lists them)") from None
        except FalTimeoutError:
            self.presenter.resend(targets)  # show what did finish before saying what did not
            raise
        self.presenter.resend(finished)
        if not finished:
            return Message("nothing to wait for: this notebook has no unfinished jobs (%fal jobs --all lists all)")
        counts = Counter(state_name(j.state) for j in finished)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return Message(f"{counted(len(finished), 'job')} done: {summary}")

    def handle_resume(self, cmd: Any) -> Message:
        from .. import jobs

        resumed = jobs.resume(all=cmd.all)
        for job in resumed:
            self.presenter.present(job)
        return Message(f"following {counted(len(resumed), 'unfinished job')} again")

    def handle_models(self, cmd: Any) -> Any:
        from .. import jobs

        return found_models_table(jobs.search_models(cmd.search, cmd.category))

    def handle_estimate(self, cmd: Any) -> dict:
        """``%fal estimate MODEL prompt [--field v]``: the price before paying; nothing is sent."""
        from .. import jobs

        spec = jobs.model_spec(cmd.model)
        requests = parsers.build_model_call(spec, list(cmd.tokens), namespace=self.shell.user_ns).expand()
        estimate = jobs.estimate(spec.id, requests)
        if estimate is None:
            raise UsageError(f"no price for {spec.id}: fal's pricing API could not be reached and no price is "
                             "cached, or fal does not price this model per unit")
        return estimate

    def handle_spend(self, cmd: Any) -> Any:
        from .. import jobs

        return spend_table(jobs.spend(since=cmd.since, all=cmd.all))

    def handle_import_history(self, cmd: Any) -> Message:
        from .. import jobs

        report = jobs.import_history(list(cmd.models), since=cmd.since)
        failed = "; ".join(f"{f['model']}: {f['error']}" for f in report["failed"])
        return Message(f"imported {report['imported']} past request(s) of {len(report['models'])} model(s) "
                       f"(following {report['following']} unfinished); `%fal history` shows them"
                       + (f"\nnot read: {failed}" if failed else ""))

    def handle_adopt(self, cmd: Any) -> Any:
        from .. import jobs

        job = jobs.adopt(cmd.request_id, cmd.model)
        self.presenter.present(job)
        return job

    def handle_info(self, cmd: Any) -> Any:
        from .. import jobs

        spec = jobs.model_spec(cmd.model)
        return model_info(spec, _price(spec.id))

    def handle_config(self, cmd: Any) -> Message:
        from ..config import load_settings, read_max_cost

        for pair in cmd.settings:
            _set_setting(pair)
        settings = load_settings()
        limit = read_max_cost()
        budget = "none (FAL_NOTEBOOK_MAX_COST or %fal config max_cost=…)" if limit is None else f"{limit:g}"
        return Message(f"{settings.describe()}\noutputs: {settings.outputs.resolve()}\n"
                       f"job store: {settings.store_path}\nmax_cost: {budget}")

    def handle_history(self, cmd: Any) -> Any:
        from .. import jobs

        found = [job.snapshot() for job in jobs.jobs(all=True)]
        if cmd.text:
            needle = cmd.text.lower()
            found = [j for j in found if needle in _searchable(j)]
        found = found[: cmd.limit]
        label = f" matching {cmd.text!r}" if cmd.text else ""
        return job_table(f"history{label}: {counted(len(found), 'job')}", found, thumbs=True)

    def handle_panel(self, cmd: Any) -> Any:
        """The panel, as the cell's value (``p = %fal panel`` keeps it without showing it)."""
        from .panel.panel import panel

        return panel(cmd.model)

    # --- iterating ---------------------------------------------------------------------------------------

    def handle_compare(self, cmd: Any) -> Any:
        from .. import jobs
        from ..views.compare import compare

        if len(cmd.ids) < 2:
            raise UsageError("%fal compare needs two or more job ids")
        return compare([jobs.get(i) for i in cmd.ids])

    def handle_rerun(self, cmd: Any) -> Any:
        """The job again (same model, input, seed); ``--field v`` and prompt words change it."""
        from .. import jobs
        from ..parsers import build_model_call

        job = jobs.get(cmd.id)
        call = build_model_call(jobs.model_spec(job.model), list(cmd.changes), namespace=self.shell.user_ns)
        if call.size > 1:
            raise UsageError("%fal rerun makes one job; use --n / --sweep on a %fal MODEL line")
        new = job.rerun(tags=[*job.tags, *call.tags] if call.tags else None,
                        validate=None if call.validate else False, confirm=call.yes, **dict(call.arguments))
        if call.wait:
            self.presenter.wait_for([new], new)
        else:
            self.presenter.present(new)
        return new

    def handle_lineage(self, cmd: Any) -> Any:
        from .. import jobs
        from ..views.lineage import Lineage, lineage_nodes

        return Lineage(lineage_nodes(jobs.get(cmd.id), lambda job, up: job.links(up)))

    def handle_code(self, cmd: Any) -> Message:
        """Put the ``%fal`` line (or the Python call) that makes the job again into the next cell."""
        from .. import jobs
        from ..parsers import magic_line

        job = jobs.get(cmd.id)
        code = job.code() if cmd.python else magic_line(jobs.model_spec(job.model), _with_seed(job))
        self.shell.set_next_input(code, replace=False)
        return Message(f"the next cell makes job {job.id} again")

    def handle_export(self, cmd: Any) -> Any:
        from .. import jobs
        from ..views.export import export

        found = jobs.select(cmd.ids, tags=cmd.tags, labels=cmd.labels, min_rating=cmd.min_rating)
        if not found:
            raise UsageError("no job matches; `%fal jobs --all` lists them")
        return Message(repr(export(found, cmd.directory)))

    def handle_judge(self, cmd: Any) -> Message:
        from .. import jobs

        job = jobs.get(cmd.id)
        if cmd.command == "rate":
            if not cmd.value.strip().isdigit():
                raise UsageError(f"%fal rate ID N: N is 1..5, got {cmd.value!r}")
            job.rate(int(cmd.value))
        else:
            getattr(job, cmd.command)(cmd.value)
        return Message(f"job {job.id}: {cmd.command} kept")


def _first_seed(call: Any) -> int | None:
    """One random first seed per group (a sweep compares the swept fields at the same seed)."""
    from .. import jobs
    from ..catalog.seeds import pick_seed

    if not call.seeded or "seed" in call.arguments:
        return None
    return pick_seed(jobs.model_spec(call.model), call.n)


def _with_seed(job: Any) -> dict:
    from ..runtime.variations import plain_inputs

    arguments = plain_inputs(job.arguments)
    if job.seed is not None:
        arguments["seed"] = job.seed
    return arguments


def _price(endpoint_id: str) -> Any:
    """fal's listed price for the model, or ``None`` when the price list cannot be read (offline, no key)."""
    from ..client.platform import PlatformClient
    from ..client.retry import RetryPolicy
    from ..config import load_settings

    try:
        with PlatformClient(load_settings(), timeout=PRICE_TIMEOUT, retry=RetryPolicy(max_attempts=1)) as fal:
            return fal.prices([endpoint_id]).get(endpoint_id)
    except FalError as exc:
        log.info("no price for %s: %s", endpoint_id, exc)
        return None


def _earlier_run(key: str) -> list[Any] | None:
    """The jobs this cell submitted for this request last time, when they stand in for a new submit."""
    from .. import jobs
    from ..config import load_settings
    from .reattach import reusable

    manager = jobs.manager()
    found = []
    for job_id in manager.store.cell_run(manager.origin, key):
        try:
            found.append(jobs.get(job_id))
        except FalError:  # forgotten (another store, deleted history): submit again
            return None
    return found if reusable(found, load_settings().reattach) else None


def _remember_run(key: str, submitted: list[Any]) -> None:
    from .. import jobs

    manager = jobs.manager()
    manager.store.remember_cell_run(manager.origin, key, [job.id for job in submitted])


def _searchable(job: Any) -> str:
    return f"{job.id} {getattr(job, 'request_id', '') or ''} {job.model} {prompt_of(job)}".lower()


_SETTINGS = {"max_cost": "FAL_NOTEBOOK_MAX_COST"}


def _set_setting(pair: str) -> None:
    """``max_cost=2.50`` (or ``none``) for this kernel: checked first, then put in its environment, where
    every submit reads it."""
    import os

    from ..config import read_max_cost

    name, eq, value = pair.partition("=")
    key = name.strip().lower().replace("-", "_")
    if not eq or key not in _SETTINGS:
        raise UsageError(f"%fal config: expected NAME=VALUE with NAME one of {', '.join(_SETTINGS)}; got {pair!r}")
    variable = _SETTINGS[key]
    read_max_cost({variable: value})  # a bad amount is refused before it is kept
    os.environ[variable] = value.strip()

