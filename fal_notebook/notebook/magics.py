"""``%fal`` / ``%%fal``: parse the line, pick a handler from one table, call the library, return something to show.

The grammar lives in :mod:`fal_notebook.parsers`; every ``handle_<name>`` is a few library calls. Errors from
the library (:class:`~fal_notebook.errors.FalError`) become one-line IPython usage errors, never tracebacks.
A later subcommand (the form panel) slots in by adding one entry to :attr:`FalMagics.handlers`.

    %fal nano-banana-pro a red fox in the snow --aspect-ratio 16:9
    %fal wait
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ..errors import FalError, FalTimeoutError, UsageError, counted, one_line
from ..parsers import grammar as parsers
from ..views.card_data import prompt_of, state_name
from ..views.tables import Message, job_table, model_info, models_table
from .interrupt import Interrupted

__all__ = ["FalMagics"]


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
            "wait": self.handle_wait,
            "resume": self.handle_resume,
            "models": self.handle_models,
            "info": self.handle_info,
            "config": self.handle_config,
            "history": self.handle_history,
            "panel": self.handle_panel,
        }

    @no_var_expand
    @line_cell_magic
    def fal(self, line: str, cell: str | None = None) -> Any:
        """Run a fal model, or manage jobs. ``%fal help`` lists everything.

        %fal MODEL prompt words… [--field value …] [--n N] [--sweep field=a,b,c] [--wait]
        %%fal MODEL [--field value …]   (body: a YAML mapping of fields, or the prompt; {name} from your namespace)
        %fal jobs | status ID | cancel ID|all | wait [--timeout S] | resume | models | info MODEL | config
        %fal history [TEXT]
        %fal panel [MODEL]   (a form, this notebook's live jobs and a gallery; fal_notebook.panel() in Python)
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

        requests = call.expand()
        if len(requests) > 1 and call.validate:
            _validate_all(call.model, requests)  # a bad sweep value sends nothing, not half the sweep
        submitted = [jobs.submit(call.model, args, validate=call.validate, tags=call.tags) for args in requests]
        result = submitted[0] if len(submitted) == 1 else jobs.JobGroup(submitted)
        if call.wait:
            self.presenter.wait_for(submitted, result)
        else:
            self.presenter.present(result)
        return result

    # --- subcommands --------------------------------------------------------------------------------------

    def handle_jobs(self, cmd: Any) -> Any:
        from .. import jobs

        found = jobs.jobs(model=cmd.model, state=cmd.state, all=cmd.all, limit=cmd.limit)
        title = "all jobs" if cmd.all else "this notebook's jobs"
        return job_table(f"{title}: {len(found)}", [job.snapshot() for job in found])

    def handle_status(self, cmd: Any) -> Any:
        from .. import jobs

        job = jobs.get(cmd.id)
        self.presenter.present(job)
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
        counts = Counter(state_name(j.state) for j in finished)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing was pending"
        return Message(f"{counted(len(finished), 'job')} done: {summary}")

    def handle_resume(self, cmd: Any) -> Message:
        from .. import jobs

        resumed = jobs.resume(all=cmd.all)
        for job in resumed:
            self.presenter.present(job)
        return Message(f"following {counted(len(resumed), 'unfinished job')} again")

    def handle_models(self, cmd: Any) -> Any:
        from .. import catalog

        return models_table([s for s in catalog.models() if cmd.matches(s)])

    def handle_info(self, cmd: Any) -> Any:
        from .. import jobs

        return model_info(jobs.model_spec(cmd.model))

    def handle_config(self, cmd: Any) -> Message:
        from ..config import load_settings

        settings = load_settings()
        return Message(f"{settings.describe()}\noutputs: {settings.outputs.resolve()}\n"
                       f"job store: {settings.store_path}")

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


def _searchable(job: Any) -> str:
    return f"{job.id} {getattr(job, 'request_id', '') or ''} {job.model} {prompt_of(job)}".lower()


def _validate_all(model: str, requests: list[dict]) -> None:
    from .. import jobs
    from ..catalog.validate import validate

    spec = jobs.model_spec(model)
    for arguments in requests:
        validate(spec, arguments, probe_videos=False)
