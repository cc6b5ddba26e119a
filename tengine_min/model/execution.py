"""The runtime tree of one execution: what `instantiate` makes from a root jobnet template.

Plain dataclasses without object cycles: a vertex names its parent and children by id, and the
Execution holds every vertex in a dict, so a store layer can map both to tables row by row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .nodes import DEFAULT_KILLING_SIGNAL_INTERVAL, DEFAULT_KILLING_SIGNALS

# Runtime kinds. The template kinds jobnet, finally, job, hadoop_job_run and hadoop_job carry over;
# an expansion becomes a "jobnet" with was_expansion=True; a hadoop_job holds Tengine's fixed box
# of two phase vertices that mirror its phase and run nothing.
JOBNET = "jobnet"
FINALLY = "finally"
JOB = "job"
HADOOP_JOB_RUN = "hadoop_job_run"
HADOOP_JOB = "hadoop_job"
MAP_PHASE = "map_phase"
REDUCE_PHASE = "reduce_phase"
RUNTIME_KINDS = (JOBNET, FINALLY, JOB, HADOOP_JOB_RUN, HADOOP_JOB, MAP_PHASE, REDUCE_PHASE)

# Kinds whose vertex runs a script on a host.
SCRIPT_KINDS = frozenset({JOB, HADOOP_JOB_RUN})
# Tengine's "chained boxes" of a hadoop_job_run: they mirror its phase and run nothing.
BOX_KINDS = frozenset({HADOOP_JOB, MAP_PHASE, REDUCE_PHASE})


@dataclass
class Vertex:
    """One named vertex of the runtime tree. Ids are runtime ids; `template_id` and
    `template_ancestor_ids` point into the root template the vertex was copied from (for a
    vertex inside an expansion: the *referenced* root template)."""

    id: str
    kind: str
    name: str
    name_path: str
    template_id: str | None  # None only for the Map/Reduce phases, which no template node has
    template_ancestor_ids: list[str]
    was_expansion: bool = False
    parent_id: str | None = None
    child_ids: list[str] = field(default_factory=list)  # declaration order, finally included
    finally_id: str | None = None
    start_ids: list[str] = field(default_factory=list)  # children that Start leads to
    edges: list[tuple[str, str]] = field(default_factory=list)  # (from child id, to child id)
    end_ids: list[str] = field(default_factory=list)  # children that lead to End
    script: str | None = None
    description: str = ""
    server_name: str | None = None
    credential_name: str | None = None
    killing_signals: list[str] = field(default_factory=lambda: list(DEFAULT_KILLING_SIGNALS))
    killing_signal_interval: int | float = DEFAULT_KILLING_SIGNAL_INTERVAL
    preparation: str | None = None

    @property
    def runs_script(self) -> bool:
        return self.kind in SCRIPT_KINDS

    def successor_ids(self, child_id: str) -> list[str]:
        """The children that `child_id` leads to inside this vertex (End not included)."""
        return [b for a, b in self.edges if a == child_id]


@dataclass
class Execution:
    """One execution (Tengine's Execution plus its runtime root jobnet): `id` is the schedule id
    exported as MM_SCHEDULE_ID, `vertices` every vertex by id in tree order (root first)."""

    id: str
    root: Vertex
    vertices: dict[str, Vertex]
    estimated_time: str = ""
    _by_path: dict[str, Vertex] | None = field(default=None, init=False, repr=False,
                                               compare=False)

    def vertex(self, vertex_id: str) -> Vertex:
        try:
            return self.vertices[vertex_id]
        except KeyError:
            raise KeyError(f"no vertex with id {vertex_id!r} in execution {self.id}") from None

    def parent(self, vertex: Vertex) -> Vertex | None:
        return None if vertex.parent_id is None else self.vertices[vertex.parent_id]

    def children(self, vertex: Vertex) -> list[Vertex]:
        return [self.vertices[i] for i in vertex.child_ids]

    def ancestors(self, vertex: Vertex) -> list[Vertex]:
        """The runtime root down to the parent of `vertex`."""
        chain = []
        current = self.parent(vertex)
        while current is not None:
            chain.append(current)
            current = self.parent(current)
        chain.reverse()
        return chain

    def walk(self) -> Iterator[tuple[Vertex, int]]:
        """Every vertex with its depth (root 0), depth first, in declaration order."""
        stack = [(self.root, 0)]
        while stack:
            vertex, depth = stack.pop()
            yield vertex, depth
            stack.extend((self.vertices[i], depth + 1) for i in reversed(vertex.child_ids))

    def jobs(self) -> list[Vertex]:
        """The vertices that run a script (job, hadoop_job_run), in tree order."""
        return [v for v in self.vertices.values() if v.runs_script]

    def vertex_by_path(self, name_path: str) -> Vertex:
        """The vertex at `/root/.../name`. A path names one vertex in a valid definition; if
        duplicate names made two, the first in tree order is returned."""
        if self._by_path is None:
            by_path: dict[str, Vertex] = {}
            for v in self.vertices.values():
                by_path.setdefault(v.name_path, v)
            self._by_path = by_path
        try:
            return self._by_path[name_path]
        except KeyError:
            raise KeyError(f"no vertex at {name_path!r} in execution {self.id}") from None
