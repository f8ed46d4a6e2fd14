"""``%load_ext fal_notebook`` / ``%unload_ext fal_notebook``: what gets registered, and how it is taken back.

On load: the ``%fal`` magic, a display hook so ``job`` alone in a cell shows its card, two cell events, one quiet
line about the endpoint and key, and resumption of this notebook's unfinished jobs. Inside a kernel the
``post_run_cell`` event re-publishes finished cards from the cell that is running (nbclient and papermill record
only that cell's messages); in terminal IPython the events print one line per finished job instead, because
nothing may be drawn from the background there.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import counted
from . import live as render
from .interrupt import Interrupted, cancel_line
from .progress import wait_with_progress
from .reattach import CellRuns

__all__ = ["load_ipython_extension", "unload_ipython_extension", "Presenter"]

log = logging.getLogger("fal_notebook")

_MAGIC_NAME = "fal"


class Presenter:
    """Shows jobs for one shell and remembers which ones the running cell already showed.

    The magic displays a card itself and returns the Job; when that Job is also the cell's value, the display
    hook sees it was shown in this cell and stays quiet, so ``%fal …`` and ``job = %fal …`` show one card. A
    terminal's display hook writes ``Out[n]:`` before any formatter runs, so there the line is ended with the
    job's one-line repr instead of being left empty.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.kernel = getattr(shell, "kernel", None) is not None
        self._shown: set[str] = set()
        self.cells = CellRuns()

    def present(self, obj: Any) -> list[render.LiveCard]:
        cards = render.show(obj, live=self.kernel)
        self._shown.update(job.id for card in cards for job in card.jobs)
        if not self.kernel:
            render.mark_announced(job for card in cards for job in card.jobs)
        return cards

    def display_job(self, obj: Any) -> None:
        """IPython's ``_ipython_display_`` printer for Job and JobGroup."""
        jobs = render.jobs_of(obj)
        if jobs and all(job.id in self._shown for job in jobs):
            if not self.kernel:  # a terminal's display hook has already written "Out[n]: "; end that line
                print(repr(obj))
            return
        self.present(obj)

    def wait_for(self, jobs: list[Any], shown: Any = None) -> None:
        """Show ``shown`` (a Job or JobGroup of ``jobs``) and block until ``jobs`` finish (``--wait``).

        In a kernel the live cards come first and are re-published at the end; in a terminal one progress
        line is redrawn in place and the final cards are printed once. An interrupt cancels the jobs still
        running and ends the cell with one line per job (:class:`Interrupted`), not a traceback.
        """
        if self.kernel:
            self.present(jobs if shown is None else shown)
        try:
            if self.kernel:
                for job in jobs:
                    job.wait()
            else:
                wait_with_progress(jobs)
        except KeyboardInterrupt:
            lines = [cancel_line(job) for job in jobs if not job.done]
            if self.kernel:
                self.resend(jobs)
            else:
                self._shown.update(job.id for job in jobs)  # the line says it all; no card, no notice
            raise Interrupted("\n".join(lines) or "interrupted: every job had already finished") from None
        if self.kernel:
            self.resend(jobs)
        else:
            self.present(jobs if shown is None else shown)  # finished: printed once, never announced again

    def resend(self, jobs: list[Any] | None) -> None:
        """Publish finished cards again from this cell (nbclient keeps only its messages). A terminal cannot
        redraw, so there only ``jobs`` themselves are printed, never an older job's card."""
        if self.kernel:
            render.resend_final(jobs)
        elif jobs:
            self.present(jobs)

    def note(self, text: str) -> None:
        """A short line above a card (why nothing was submitted, say), shown as output of the running cell."""
        from IPython.display import display

        from ..views.tables import Message

        display(Message(text))

    def pre_run_cell(self, info: Any = None) -> None:
        self._shown.clear()
        self.cells.start_cell(info)
        self._announce()

    def post_run_cell(self, result: Any = None) -> None:
        if self.kernel:
            render.resend_final()
        else:
            self._announce()

    def _announce(self) -> None:
        if self.kernel:
            return
        for job in render.finished_unannounced():
            print(render.notice(job))


def _startup_line() -> str:
    from ..config import load_settings

    return load_settings().describe()


def _resume(kernel: bool) -> tuple[str, list[Any]]:
    """Follow this notebook's unfinished jobs again: a line saying so ("" when there were none), and the jobs."""
    from .. import jobs

    try:
        resumed = jobs.resume()
    except Exception as exc:  # a broken store must not stop the extension from loading
        log.warning("could not resume unfinished jobs: %s", exc)
        return f"could not resume unfinished jobs: {exc}", []
    if not resumed:
        return "", []
    ids = ", ".join(job.id for job in resumed)
    where = "their live cards follow" if kernel else "%fal jobs lists them"
    return (f"following {counted(len(resumed), 'unfinished job')} of this notebook again: {ids} ({where}; "
            "running their cells again shows them instead of submitting twice)", resumed)


def load_ipython_extension(ip: Any) -> None:
    """Register ``%fal`` and the display hooks on ``ip``; print one line about the endpoint and key."""
    from ..jobs import Job, JobGroup
    from .magics import FalMagics

    presenter = Presenter(ip)
    ip.register_magics(FalMagics(ip, presenter))
    formatter = ip.display_formatter.ipython_display_formatter
    for cls in (Job, JobGroup):
        formatter.for_type(cls, presenter.display_job)
    ip.events.register("pre_run_cell", presenter.pre_run_cell)
    ip.events.register("post_run_cell", presenter.post_run_cell)
    resumed_line, resumed = _resume(presenter.kernel)
    print("\n".join(line for line in (_startup_line(), resumed_line) if line))
    if presenter.kernel and resumed:  # live again: the cards of the jobs a restart left running, in this cell
        for job in resumed:
            presenter.present(job)


def unload_ipython_extension(ip: Any) -> None:
    """Take back everything :func:`load_ipython_extension` registered (IPython has no API to drop a magic)."""
    magics = ip.magics_manager.registry.pop("FalMagics", None)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop(_MAGIC_NAME, None)
    from ..jobs import Job, JobGroup

    for cls in (Job, JobGroup):
        ip.display_formatter.ipython_display_formatter.type_printers.pop(cls, None)
    if magics is not None:
        presenter = magics.presenter
        for event, callback in (("pre_run_cell", presenter.pre_run_cell),
                                ("post_run_cell", presenter.post_run_cell)):
            try:
                ip.events.unregister(event, callback)
            except ValueError:
                pass

