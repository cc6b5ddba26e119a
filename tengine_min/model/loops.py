"""Loops in a directed graph, found without recursion and in linear time.

The validator's cycle checks: a jobnet's `to` graph is first trimmed by Kahn's algorithm
(`not_topologically_sortable`: repeatedly drop vertices without incoming edges), which clears a
DAG, the common case, in one cheap pass; what is left goes through an iterative Tarjan pass for
its strongly connected components (`strongly_connected`), and one breadth-first search inside
each gives a concrete loop to show (`loop_through`). A 100,000-long loop needs no recursion.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from itertools import chain
from typing import TypeVar

__all__ = ["loop_through", "not_topologically_sortable", "strongly_connected"]

V = TypeVar("V", bound=Hashable)  # a vertex


def strongly_connected(order: Iterable[V], successors: Callable[[V], Iterable[V]]) -> list[list[V]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit), in O(V + E).
    `order` gives the vertices; `successors(v)` the targets of v's edges. Components come out in
    reverse topological order, each as a list of its vertices."""
    index: dict[V, int] = {}
    low: dict[V, int] = {}
    on_stack: set[V] = set()
    stack: list[V] = []
    components: list[list[V]] = []

    def visit(vertex: V) -> Iterator[V]:
        index[vertex] = low[vertex] = len(index)
        stack.append(vertex)
        on_stack.add(vertex)
        return iter(successors(vertex))

    for start in order:
        if start in index:
            continue
        work = [(start, visit(start))]
        while work:
            vertex, targets = work[-1]
            for target in targets:
                if target not in index:
                    work.append((target, visit(target)))
                    break
                if target in on_stack:
                    low[vertex] = min(low[vertex], index[target])
            else:  # every edge of `vertex` is done
                work.pop()
                if work:
                    caller = work[-1][0]
                    low[caller] = min(low[caller], low[vertex])
                if low[vertex] == index[vertex]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == vertex:
                            break
                    components.append(component)
    return components


def not_topologically_sortable(successors: Mapping[str, list[str]]) -> list[str]:
    """The vertices that repeated removal of vertices without incoming edges (Kahn) cannot
    remove: those on a loop and those downstream of one. Empty for a DAG. Every successor of a
    returned vertex is returned too, so the loops can be searched among these alone."""
    indegree = Counter(chain.from_iterable(successors.values()))
    free = [name for name in successors if name not in indegree]
    while free:
        for target in successors[free.pop()]:
            indegree[target] -= 1
            if indegree[target] == 0:
                free.append(target)
    return [name for name, count in indegree.items() if count > 0]


def loop_through(start: V, members: set[V], successors: Callable[[V], Iterable[V]]) -> list[V]:
    """A shortest loop start -> ... -> start inside one strongly connected component
    (breadth-first, so linear in the component's size)."""
    came_from: dict[V, V | None] = {start: None}
    queue = deque([start])
    while queue:
        vertex = queue.popleft()
        for target in successors(vertex):
            if target == start:
                back = [vertex]
                step = came_from[vertex]
                while step is not None:
                    back.append(step)
                    step = came_from[step]
                return [*reversed(back), start]
            if target in members and target not in came_from:
                came_from[target] = vertex
                queue.append(target)
    return [start, start]  # not reached for a real component; keeps the message well-formed

