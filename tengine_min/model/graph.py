"""The edges of one jobnet, as Tengine builds them from boot_jobs, auto_sequence and `to`.

Tengine (structure/jobnet_builder.rb, edge_builder.rb): with boot_jobs the edges are Start ->
each boot job, each `to` redirection, and every vertex that is never an edge origin -> End; a
fan-out is a Fork and a fan-in a Join. Without boot_jobs (or with auto_sequence) the children are
chained in declaration order, finally excluded, and `to` is not used. We keep the same edges but
no explicit Fork/Join vertices: a vertex with several incoming edges is the join.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .nodes import Node


@dataclass
class EdgePlan:
    mode: str  # "sequence" | "boot"
    start: list[str] = field(default_factory=list)  # children that Start leads to
    edges: list[tuple[str, str]] = field(default_factory=list)  # child -> child
    end: list[str] = field(default_factory=list)  # children that lead to End

    def successors(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for a, b in self.edges:
            out.setdefault(a, []).append(b)
        return out


def plan_edges(jobnet: Node) -> EdgePlan:
    names = [v.name for v in jobnet.vertices]
    if jobnet.auto_sequence:
        plan = EdgePlan("sequence")
        if names:
            plan.start = [names[0]]
            plan.edges = list(itertools.pairwise(names))
            plan.end = [names[-1]]
        return plan
    plan = EdgePlan("boot", start=list(jobnet.boot_job_names or []))
    plan.edges = [(v.name, target) for v in jobnet.vertices for target in v.to]
    origins = {a for a, _ in plan.edges}
    seen: set[str] = set()
    for name in plan.start + [n for edge in plan.edges for n in edge]:
        if name not in origins and name not in seen:
            seen.add(name)
            plan.end.append(name)
    return plan
