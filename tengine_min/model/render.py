"""Print a jobnet tree as plain text: one line per vertex, indented two spaces per depth.

A line reads `name (kind)`, then `[expansion of X]` for an inlined expansion, then for a vertex
that runs a script its script, server and credential, then `-> a, b` for the siblings it leads to,
then `id: ...` when ids are asked for. Plain and deterministic so tests can compare it; the CLI
may dress it up.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from .execution import Execution, Vertex
from .instantiate import instantiate
from .nodes import Definitions


def render_template(defs: Definitions, root_name: str, *, show_ids: bool = False) -> str:
    """The tree of root template `root_name` with expansions inlined. With show_ids, each line
    carries the id of the template node it comes from. Raises InstantiationError as instantiate."""
    counter = itertools.count(1)
    # Throwaway runtime ids: they are never printed, and a local counter keeps the global id
    # sequence untouched.
    execution = instantiate(defs, root_name, execution_id="template",
                            new_id=lambda: f"{next(counter):024x}")
    return _render(execution, (lambda v: v.template_id or "-") if show_ids else None)


def render_execution(execution: Execution, *, show_ids: bool = True) -> str:
    """The runtime tree of `execution`; with show_ids (the default) each line carries the
    runtime id, as the console's monitor screen does."""
    return _render(execution, (lambda v: v.id) if show_ids else None)


def _render(execution: Execution, id_of: Callable[[Vertex], str] | None) -> str:
    successors_by_parent: dict[str, dict[str, list[str]]] = {}
    lines = []
    for vertex, depth in execution.walk():
        parts = [f"{'  ' * depth}{vertex.name} ({vertex.kind})"]
        if vertex.was_expansion:
            parts.append(f"[expansion of {vertex.name}]")
        if vertex.runs_script:
            parts.append(f"script: {vertex.script or '-'}")
            parts.append(f"server: {vertex.server_name or '-'}")
            parts.append(f"credential: {vertex.credential_name or '-'}")
        if vertex.parent_id is not None:
            nexts = _successors(execution, vertex.parent_id, successors_by_parent).get(vertex.id)
            if nexts:
                parts.append("-> " + ", ".join(nexts))
        if id_of is not None:
            parts.append(f"id: {id_of(vertex)}")
        lines.append("  ".join(parts))
    return "\n".join(lines) + "\n"


def _successors(execution: Execution, parent_id: str,
                cache: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """Child id -> names of the children it leads to, computed once per parent so a wide jobnet
    costs linear time."""
    if parent_id not in cache:
        parent = execution.vertices[parent_id]
        table: dict[str, list[str]] = {}
        for a, b in parent.edges:
            table.setdefault(a, []).append(execution.vertices[b].name)
        cache[parent_id] = table
    return cache[parent_id]
