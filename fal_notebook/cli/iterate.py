"""``fal-notebook rerun / export / compare / lineage / code / rate / label / note``: a few library calls each,
JSON on stdout like every other command (``code`` prints the line itself, so ``$(fal-notebook code ID)`` works)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from ..errors import UsageError
from ..jobs import until
from .jobs import ACCEPT_TIMEOUT, exit_for_jobs, job_record, manager, model_spec, wait_and_emit
from .output import emit

__all__ = ["cmd_rerun", "cmd_export", "cmd_compare", "cmd_lineage", "cmd_code", "cmd_judge"]


def cmd_rerun(command: Any) -> int:
    """The job again (same model, input, seed); ``--field value`` and prompt words change it."""
    from ..parsers import build_model_call

    job = manager().get(command.id)
    call = build_model_call(model_spec(job.model), list(command.changes))
    if call.size > 1:
        raise UsageError("rerun makes one job; --n and --sweep are for new requests")
    new = job.rerun(tags=[*job.tags, *call.tags] if call.tags else None,
                    validate=None if call.validate else False, confirm=call.yes, **dict(call.arguments))
    record = job_record(new, seed=new.seed, parent=job.id, warnings=list(new.warnings))
    if call.wait:
        return wait_and_emit([new], None, lambda js: job_record(js[0], seed=js[0].seed, parent=job.id))
    until(new, lambda j: j.request_id is not None or j.done, ACCEPT_TIMEOUT, "accepted")
    emit({**record, "request_id": new.request_id, "state": new.state.value})
    return exit_for_jobs([new])


def cmd_export(command: Any) -> int:
    from .. import jobs
    from ..views.export import export

    manager()  # the CLI's default manager (origin cli, no automatic resume)
    found = jobs.select(command.ids, tags=command.tags, labels=command.labels, min_rating=command.min_rating)
    if not found:
        raise UsageError("no job matches; `fal-notebook list --all` shows the known ones")
    report = export(found, command.directory)
    emit({"directory": str(report.directory.resolve()), "files": [str(p) for p in report.files],
          "contact_sheet": str(report.contact_sheet) if report.contact_sheet else None,
          "prompts": str(report.prompts), "skipped": list(report.skipped)})
    return 0


def cmd_compare(command: Any) -> int:
    from ..views.compare import compare_data

    data = compare_data([manager().get(i) for i in command.ids])
    emit({"jobs": [t.job_id for t in data.tiles], "differing": list(data.differing),
          "rows": [dataclasses.asdict(row) for row in data.rows]})
    return 0


def cmd_lineage(command: Any) -> int:
    from ..views.lineage import lineage_nodes

    nodes = lineage_nodes(manager().get(command.id), lambda job, up: job.links(up))
    emit({"nodes": [dataclasses.asdict(node) for node in nodes]})
    return 0


def cmd_code(command: Any) -> int:
    from ..parsers import magic_line
    from ..runtime.variations import plain_inputs

    job = manager().get(command.id)
    if command.python:
        text = job.code()
    else:
        arguments = plain_inputs(job.arguments)
        if job.seed is not None:
            arguments["seed"] = job.seed
        text = magic_line(model_spec(job.model), arguments)
    sys.stdout.write(text + "\n")
    return 0


def cmd_judge(command: Any) -> int:
    job = manager().get(command.id)
    if command.command == "rate":
        if not command.value.strip().isdigit():
            raise UsageError(f"rate ID N: N is 1..5, got {command.value!r}")
        job.rate(int(command.value))
    else:
        getattr(job, command.command)(command.value)
    emit(job_record(job, rating=job.rating, label=job.label_text, note=job.note_text))
    return 0
