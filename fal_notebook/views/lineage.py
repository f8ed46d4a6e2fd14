"""A job's lineage drawn as an indented chain: the jobs whose results it used above, what used its results below
(``FLUX → edit → Kling video``). Reads jobs through ``parents`` / ``children``; bounded, so a popular result
cannot make the picture grow without end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .card_data import prompt_of, state_name
from .html import badge, esc

__all__ = ["LineageNode", "Lineage", "lineage_nodes", "lineage_html", "lineage_text", "MAX_NODES"]

MAX_NODES = 60


@dataclass(frozen=True)
class LineageNode:
    job_id: str
    model: str
    state: str
    prompt: str
    depth: int  # < 0 ancestors, 0 the job itself, > 0 descendants
    kind: str = ""  # how it relates to the node above: "input" or "rerun"


def _node(job: Any, depth: int, kind: str) -> LineageNode:
    return LineageNode(str(job.id), str(job.model), state_name(job.state), prompt_of(job)[:80], depth, kind)


def lineage_nodes(job: Any, links: Callable[[Any, bool], list[tuple[Any, str]]],
                  limit: int = MAX_NODES) -> list[LineageNode]:
    """Ancestors (oldest generation first), the job, then descendants depth first; at most ``limit`` nodes.

    ``links(job, up)`` gives ``(job, kind)`` pairs: its parents when ``up``, else its children."""
    seen = {job.id}
    ancestors: list[LineageNode] = []
    frontier = [(job, 0)]
    while frontier and len(ancestors) < limit:
        current, depth = frontier.pop(0)
        for parent, kind in links(current, True):
            if parent.id not in seen:
                seen.add(parent.id)
                ancestors.append(_node(parent, depth - 1, kind))
                frontier.append((parent, depth - 1))
    ancestors.sort(key=lambda n: n.depth)
    below: list[LineageNode] = []

    def walk(current: Any, depth: int) -> None:
        for child, kind in links(current, False):
            if child.id in seen or len(ancestors) + len(below) >= limit:
                continue
            seen.add(child.id)
            below.append(_node(child, depth + 1, kind))
            walk(child, depth + 1)

    walk(job, 0)
    return [*ancestors, _node(job, 0, ""), *below]


def _line(node: LineageNode, top: int) -> tuple[int, str]:
    return node.depth - top, f"{node.kind} → " if node.kind else ""


def lineage_html(nodes: list[LineageNode]) -> str:
    top = min((n.depth for n in nodes), default=0)
    items = []
    for node in nodes:
        indent, arrow = _line(node, top)
        mark = "font-weight:700;background:#eef2ff" if node.depth == 0 else ""
        prompt = f' <span style="color:#6b7280">{esc(node.prompt)}</span>' if node.prompt else ""
        items.append(f'<div class="fal-lineage-node" data-fal-job="{esc(node.job_id)}" '
                     f'style="margin-left:{indent * 22}px;{mark}">{"└ " if indent else ""}{esc(arrow)}'
                     f"<b>{esc(node.model)}</b> <code>{esc(node.job_id[:6])}</code> {badge(node.state)}{prompt}</div>")
    return f'<div class="fal-lineage" style="font-family:system-ui,sans-serif;font-size:12px">{"".join(items)}</div>'


def lineage_text(nodes: list[LineageNode]) -> str:
    top = min((n.depth for n in nodes), default=0)
    lines = []
    for node in nodes:
        indent, arrow = _line(node, top)
        here = "  ← this job" if node.depth == 0 else ""
        lines.append(f"{'   ' * indent}{'└─ ' if indent else ''}{arrow}{node.model} {node.job_id} {node.state}"
                     f"{' ' + repr(node.prompt) if node.prompt else ''}{here}")
    return "\n".join(lines)


class Lineage:
    """``%fal lineage``'s answer: displays as the chain; ``.nodes`` holds the plain :class:`LineageNode` list."""

    def __init__(self, nodes: list[LineageNode]) -> None:
        self.nodes = nodes

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": lineage_text(self.nodes), "text/html": lineage_html(self.nodes)}

    def __repr__(self) -> str:
        return lineage_text(self.nodes)
