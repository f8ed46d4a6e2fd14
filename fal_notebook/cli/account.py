"""The ``fal-notebook`` commands about fal's platform: estimate, spend, import-history, adopt.

``estimate`` prints ``{"model", "unit_price", "unit", "quantity", "total", "currency"}`` and sends nothing;
``spend`` the cost per model from the jobs' estimates, plus fal's usage figures when the key may read them.
"""

from __future__ import annotations

from typing import Any

from ..errors import RequestError
from .jobs import job_record, load_arguments, manager, model_spec
from .output import emit

__all__ = ["cmd_estimate", "cmd_spend", "cmd_import_history", "cmd_adopt", "requests_for"]


def requests_for(model: str, tokens: tuple[str, ...], *, namespace: dict[str, Any] | None = None,
                 json_allowed: bool = True) -> list[dict[str, Any]]:
    """The requests an estimate is for: one JSON object (inline, ``@file.json``, ``-``), or a model call's
    prompt words and ``--field value`` options (``--n`` / ``--sweep`` make several)."""
    from ..parsers import build_model_call

    if json_allowed and len(tokens) == 1 and (tokens[0] == "-" or tokens[0][:1] in ("{", "@")):
        return [load_arguments(tokens[0])]
    return build_model_call(model_spec(model), list(tokens), namespace=namespace).expand()


def price_or_fail(model: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """The estimate, or a ``RequestError`` saying why there is none."""
    estimate = manager().estimate(model, requests)
    if estimate is None:
        raise RequestError(f"no price for {model}: fal's pricing API could not be reached and no price is "
                           "cached, or fal does not price this model per unit")
    return estimate


def cmd_estimate(command: Any) -> int:
    emit(price_or_fail(command.model, requests_for(command.model, command.tokens)))
    return 0


def cmd_spend(command: Any) -> int:
    from .. import jobs

    manager()
    emit(jobs.spend(since=command.since, all=command.all))
    return 0


def cmd_import_history(command: Any) -> int:
    from .. import jobs

    manager()
    report = jobs.import_history(list(command.models), since=command.since)
    emit(report)
    return 0 if not report["failed"] or report["imported"] or report["seen"] else 5


def cmd_adopt(command: Any) -> int:
    job = manager().adopt(command.request_id, command.model)
    emit(job_record(job))
    return 0
