"""What a kernel interrupt during a wait leaves on screen: one line per job, no traceback through internals."""

from __future__ import annotations

from typing import Any

from ..errors import one_line

__all__ = ["Interrupted", "cancel_line"]


class Interrupted(KeyboardInterrupt):
    """A kernel interrupt already handled (its jobs cancelled): still an interrupt, so "Run All" stops, but
    IPython shows only its lines (``_render_traceback_``) instead of frames through the runtime."""

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def cancel_line(job: Any) -> str:
    """Cancel ``job`` after an interrupt and say in one line what fal answered."""
    short = f"{job.id[:6]}…"
    try:
        answer = job.cancel()
    except KeyboardInterrupt:  # a second interrupt while cancelling: stop trying, say how to finish the job
        return f"interrupted: job {short} was not cancelled (interrupted again); it may still run: %fal cancel {job.id}"
    except Exception as exc:  # the interrupt stands; say what is still running and how to stop it
        return (f"interrupted: job {short} could not be cancelled on fal ({one_line(exc)}); it may still run: "
                f"%fal cancel {job.id}")
    if answer == "ALREADY_COMPLETED" or answer == "COMPLETED":
        return f"interrupted: job {short} had already finished on fal; %fal status {job.id} shows it"
    return f"interrupted: job {short} cancelled on fal"
