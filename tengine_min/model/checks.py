"""The checks of one validation run: every node, every jobnet's children and sequence, and
what spans roots (duplicate roots, expansions).

Everything here is iterative and linear in the size of the definitions: a 100,000-job jobnet or
a deeply nested tree is checked without recursion, each check is entered only when a cheap test
says something may be wrong, and name paths are built only for the problems that show them
(`_LazyPath`). The cycle checks use loops.py.
"""

from __future__ import annotations

import difflib
import math
import signal
from collections.abc import Iterable, Mapping
from itertools import chain, pairwise
from typing import Any

from .loops import loop_through, not_topologically_sortable, strongly_connected
from .messages import (
    arrow_chain,
    display_name,
    join_and,
    lines_of,
    options_taken,
    place,
    place_from,
    quoted_names,
)
from .nodes import (
    ALLOWED_OPTIONS,
    CONTAINERS,
    EXPANSION,
    FINALLY,
    HADOOP_JOB,
    HADOOP_JOB_RUN,
    JOB,
    JOBNET,
    KINDS,
    Definitions,
    Node,
)
from .problems import Problem, problem

__all__ = ["Checker"]

# Kinds that run a script.
_SCRIPTED = (JOB, HADOOP_JOB_RUN)
# Kinds that never have children.
_LEAVES = (JOB, EXPANSION, HADOOP_JOB)
# What may stand inside what (Tengine's E1..E4): a hadoop_job only in a hadoop_job_run, which
# holds nothing else; no finally directly in a finally; nothing inside the leaves.
_CHILD_KINDS: dict[str, frozenset[str]] = {
    JOBNET: frozenset({JOBNET, FINALLY, JOB, EXPANSION, HADOOP_JOB_RUN}),
    FINALLY: frozenset({JOBNET, JOB, EXPANSION, HADOOP_JOB_RUN}),
    HADOOP_JOB_RUN: frozenset({HADOOP_JOB}),
    **{leaf: frozenset() for leaf in _LEAVES},
}
# Signal names Tengine's kill accepts: "TERM" or "SIGTERM".
_SIGNAL_NAMES = frozenset(
    name for sig in signal.Signals for name in (sig.name, sig.name.removeprefix("SIG"))
)
# How many candidate comparisons difflib may spend on "did you mean" in one validation: keeps a
# pathological definition (thousands of wrong names among thousands of siblings) linear.
_SUGGESTION_BUDGET = 200_000


class Checker:
    """One validation run: walks every tree once, then checks what spans roots."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.problems: list[Problem] = []
        self.parent_of: dict[Node, Node | None] = {}  # as walked: readers' parent links may lie
        self.expansions: list[tuple[Node, Node]] = []  # (root, expansion node)
        self.malformed: set[Node] = set()  # a name or `to` that is not a string: no edges built
        self.suggestion_budget = _SUGGESTION_BUDGET

    def run(self) -> list[Problem]:
        for root in self.defs.roots:
            self.check_tree(root)
        self.check_duplicate_roots()
        self.check_expansions()
        return self.problems

    # -- helpers ---------------------------------------------------------------------------

    def report(self, code: str, message: str, where: Any, jobnet: Any) -> None:
        """Record a problem; `jobnet` is a path (str or _LazyPath) or None."""
        self.problems.append(problem(code, message, where, None if jobnet is None else str(jobnet)))

    def path(self, node: Node | None) -> str:
        """The name path of `node` as walked; computed only when a problem needs it."""
        parts = []
        while node is not None:
            parts.append(display_name(node))
            node = self.parent_of.get(node)
        return "/" + "/".join(reversed(parts))

    def concerned_jobnet(self, node: Node) -> str:
        """The jobnet a problem about `node` concerns: itself if it holds children, else the
        nearest one around it (a job's problem is shown under the jobnet it is in)."""
        while node.kind not in CONTAINERS:
            parent = self.parent_of.get(node)
            if parent is None:
                break
            node = parent
        return self.path(node)

    def suggestion(self, name: str, candidates: Iterable[Any]) -> str:
        """' (did you mean 'x'?)' when a candidate is close to `name`, else ''."""
        pool = [c for c in candidates if isinstance(c, str) and c != name]
        if not pool or len(pool) > self.suggestion_budget:
            return ""
        self.suggestion_budget -= len(pool)
        close = difflib.get_close_matches(name, pool, n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""

    def descendant_named(self, name: str, jobnet: Node | None) -> Node | None:
        """A node named `name` below the children of `jobnet`, searched within the budget."""
        stack = [g for c in (jobnet.children if jobnet else []) for g in c.children or []]
        while stack and self.suggestion_budget > 0:
            self.suggestion_budget -= 1
            node = stack.pop()
            if node.name == name:
                return node
            stack.extend(node.children or [])
        return None

    # -- one tree --------------------------------------------------------------------------

    def check_tree(self, root: Node) -> None:
        """Every node on its own during the walk, then each jobnet's children and edges (after
        the walk, when every child's name and `to` have been judged)."""
        parent_of = self.parent_of
        parent_of[root] = None
        containers = []
        stack = [root]
        while stack:
            node = stack.pop()
            self.check_node(node)
            if node.kind in CONTAINERS:
                containers.append(node)
            elif node.kind == EXPANSION and node is not root:  # a root expansion is misplaced
                self.expansions.append((root, node))
            children = node.children
            if children:
                for child in children:
                    parent_of[child] = node
                stack.extend(reversed(children))
        for container in containers:
            self.check_container(container)

    def check_node(self, node: Node) -> None:
        """What can be wrong with one node on its own: where it is, its name, options, script.
        Each check is entered only when a cheap test says something may be wrong: this runs
        for every node of every definition."""
        parent = self.parent_of[node]
        kind = node.kind
        if parent is None or kind not in _CHILD_KINDS.get(parent.kind, ()) or (node.to and (
                kind == FINALLY)):
            self.check_placement(node, parent)
        name = node.name
        if not (isinstance(name, str) and name.strip() and "/" not in name):
            self.check_name(node)
        if node.options or node.unknown_options:
            self.check_options(node)
        if kind in _SCRIPTED and not (isinstance(node.script, str) and node.script.strip()):
            self.check_script(node)

    def check_placement(self, node: Node, parent: Node | None) -> None:
        kind = node.kind
        if parent is None:
            misplaced = kind != JOBNET
        else:  # below a construct of unknown kind nothing more is said: that one is reported
            misplaced = kind not in KINDS or (parent.kind in KINDS and
                                              kind not in _CHILD_KINDS[parent.kind])
        if misplaced:  # shown under the jobnet it stands in (a root: itself)
            self.report("misplaced", self.placement_message(node, parent), node.where,
                        self.concerned_jobnet(parent if parent is not None else node))
        if node.to and (parent is None or kind == FINALLY):
            self.report(
                "unknown_target",
                f"{kind} '{self.path(node)}' has `to` {quoted_names(node.to)}, but a "
                f"{'root jobnet' if parent is None else 'finally block'} is not part of any "
                f"sequence, so there is nothing it can lead to; remove the `to`",
                node.where, self.concerned_jobnet(node))

    def placement_message(self, node: Node, parent: Node | None) -> str:
        kind = node.kind
        what = f"{kind} '{self.path(node)}'"
        if kind not in KINDS:
            return (f"'{self.path(node)}' is a {kind!r}, which is not a construct of a jobnet "
                    f"definition (known: {', '.join(KINDS)})")
        if parent is None:
            return (f"{what} stands at the top level: only a jobnet can be a root; "
                    f"wrap it in jobnet(...)")
        if parent.kind in _LEAVES:
            return (f"{what} is inside {parent.kind} '{self.path(parent)}', which cannot hold "
                    f"anything; move it into a jobnet")
        if parent.kind == HADOOP_JOB_RUN:
            return (f"{what} is inside hadoop_job_run '{self.path(parent)}', which holds only "
                    f"hadoop_job (Tengine: hadoop_job_run block contains unexpected "
                    f"method({kind})); move it into a jobnet")
        if kind == HADOOP_JOB:
            return (f"{what} is inside {parent.kind} '{self.path(parent)}': a hadoop_job belongs "
                    f"in a hadoop_job_run block (Tengine: {parent.kind} block contains "
                    f"unexpected method(hadoop_job))")
        return (f"{what} is directly inside another finally (Tengine: finally block contains "
                f"unexpected method(finally)); put its jobs in the outer finally, or wrap it in "
                f"a jobnet")

    def check_name(self, node: Node) -> None:
        name: object = node.name  # what the file gave, whatever the model's type says
        if isinstance(name, str) and name.strip() and "/" not in name:
            return
        if not isinstance(name, str):
            self.malformed.add(node)  # no edge can name it; its jobnet's edges wait for a fix
        if not isinstance(name, str) and name is not None:
            why = f"has a name of type {type(name).__name__} ({name!r}); a name is a string"
        elif not name or not name.strip():
            why = "has no name; give it one"
        else:
            why = f"is named {name!r}, which contains '/', the separator of name paths; rename it"
        parent = self.parent_of.get(node)
        where_in = f" in '{self.path(parent)}'" if parent is not None else ""
        self.report("bad_value", f"a {node.kind}{where_in} {why}", node.where,
                    self.concerned_jobnet(node))

    def check_options(self, node: Node) -> None:
        jobnet = None  # computed once, only if needed
        allowed = ALLOWED_OPTIONS.get(node.kind, frozenset())
        for unknown in node.unknown_options or []:
            jobnet = jobnet or self.concerned_jobnet(node)
            self.report(
                "unknown_option",
                f"{node.kind} '{self.path(node)}' does not take option '{unknown.key}' "
                f"(Tengine: {unknown.key} is invalid option.); {options_taken(node.kind, allowed)}",
                unknown.where, jobnet)
        options = node.options if isinstance(node.options, Mapping) else {}
        for key, value in options.items():
            why = _bad_option_value(key, value)
            if why:
                jobnet = jobnet or self.concerned_jobnet(node)
                self.report("bad_value", f"{node.kind} '{self.path(node)}': {why}",
                            node.where, jobnet)

    def check_script(self, node: Node) -> None:
        script: object = node.script  # what the file gave, whatever the model's type says
        if isinstance(script, str) and script.strip():
            return
        if script is None or isinstance(script, str):
            message = (f"{node.kind} '{self.path(node)}' has no script: give the command it runs, "
                       f"e.g. {node.kind}(\"{display_name(node)}\", \"$HOME/bin/work.sh\")")
            self.report("empty_script", message, node.where, self.concerned_jobnet(node))
        else:
            self.report("bad_value",
                        f"{node.kind} '{self.path(node)}': the script must be a string (a shell "
                        f"command line), got {type(script).__name__} {script!r}",
                        node.where, self.concerned_jobnet(node))

    # -- one jobnet's children and sequence ------------------------------------------------

    def check_container(self, jobnet: Node) -> None:
        path = _LazyPath(self, jobnet)  # most jobnets have no problem: no path to build
        kind = jobnet.kind
        children = jobnet.children or []
        finals = [c for c in children if c.kind == FINALLY]
        if len(finals) > 1:
            self.report("duplicate_finally",
                        f"{kind} '{path}' has {len(finals)} finally blocks ("
                        f"{lines_of(f.where for f in finals)}); Tengine allows one (finally is "
                        f"duplicated): merge them into one",
                        finals[1].where, path)
        contradictory = self.check_sequencing(jobnet, path)
        seqs = jobnet.sequencing or []
        vertices = [c for c in children if c.kind != FINALLY]
        if not (all(isinstance(v.to, list) for v in vertices)
                and all(isinstance(t, str) for v in vertices for t in v.to)):
            self.check_to_values(vertices)  # one pass over all edges, not a call per child
        malformed = self.malformed and any(v in self.malformed for v in vertices)
        if not malformed:
            self.check_duplicate_names(jobnet, vertices, path)
        if contradictory or malformed or not all(_is_name_list(s.names) for s in seqs):
            return  # the sequencing or a name must be fixed first; both are reported
        # The mode is the one graph.plan_edges (and so the runtime) uses: in auto_sequence the
        # children are chained in the order written and `to` is unused; with boot_jobs the edges
        # are exactly the children's `to`.
        if jobnet.auto_sequence:
            self.check_ignored_to(jobnet, vertices, path)
        else:
            self.check_boot_edges(jobnet, vertices, path)

    def check_to_values(self, vertices: list[Node]) -> None:
        for vertex in vertices:
            if not _is_name_list(vertex.to):
                self.malformed.add(vertex)  # its jobnet's edges wait for a fix
                self.report("bad_value",
                            f"{vertex.kind} '{self.path(vertex)}': `to` must name siblings by "
                            f"their names (strings), got {vertex.to!r}",
                            vertex.where, self.concerned_jobnet(vertex))

    def check_sequencing(self, jobnet: Node, path: _LazyPath) -> bool:
        """boot_jobs / auto_sequence declarations. True when they contradict each other."""
        kind = jobnet.kind
        seqs = jobnet.sequencing or []
        boots = [s for s in seqs if s.kind == "boot_jobs"]
        autos = [s.where for s in seqs if s.kind == "auto_sequence"]
        options = jobnet.options if isinstance(jobnet.options, Mapping) else {}
        counted = ""
        if "auto_sequence" in options:
            autos.insert(0, jobnet.where)  # the option sits on the jobnet line, before the block
            counted = ", counting the :auto_sequence option"
        for boot in boots:
            if not _is_name_list(boot.names):
                self.report("bad_value",
                            f"boot_jobs of {jobnet.kind} '{path}' must list child names "
                            f"(strings), got {boot.names!r}",
                            boot.where, path)
        if len(boots) > 1:
            self.report("duplicate_boot_jobs",
                        f"{kind} '{path}' declares boot_jobs {len(boots)} times ("
                        f"{lines_of(b.where for b in boots)}) and Tengine would use only the last "
                        f"(boot_jobs or auto_sequence is duplicated): list every first child in "
                        f"one boot_jobs(...)",
                        boots[1].where, path)
        if len(autos) > 1:
            self.report("duplicate_auto_sequence",
                        f"{kind} '{path}' declares auto_sequence {len(autos)} times ("
                        f"{lines_of(autos)}{counted}) (Tengine: auto_sequence is duplicated): "
                        f"keep one",
                        autos[1], path)
        auto_on = any(s.kind == "auto_sequence" for s in seqs) or options.get("auto_sequence")
        if boots and auto_on:
            self.report("boot_jobs_with_auto_sequence",
                        f"{kind} '{path}' declares both boot_jobs and auto_sequence: keep "
                        f"boot_jobs (with `to`) to choose the order yourself, or auto_sequence to "
                        f"run the children in the order they are written",
                        boots[0].where, path)
            return True
        return False

    def check_duplicate_names(self, jobnet: Node, vertices: list[Node], path: _LazyPath) -> None:
        if len({v.name for v in vertices}) == len(vertices):
            return
        seen: dict[str, list[Node]] = {}
        for vertex in vertices:
            seen.setdefault(vertex.name, []).append(vertex)
        for name, same in seen.items():
            if len(same) > 1:
                self.report("duplicate_name",
                            f"{jobnet.kind} '{path}' has {len(same)} children named '{name}' ("
                            f"{lines_of(v.where for v in same)}); names must be unique "
                            f"within one jobnet (Tengine: {name} is duplicated): rename one",
                            same[1].where, path)

    def check_ignored_to(self, jobnet: Node, vertices: list[Node], path: _LazyPath) -> None:
        declared = any(s.kind == "auto_sequence" for s in jobnet.sequencing or [])
        fix = ("replace auto_sequence with boot_jobs(...)" if declared
               else "add boot_jobs(...) naming the first children")
        for vertex in vertices:
            if vertex.to:
                self.report("to_ignored",
                            f"`to` {quoted_names(vertex.to)} of '{vertex.name}' in jobnet "
                            f"'{path}' is ignored: the jobnet runs its children in the order "
                            f"written (auto_sequence); to follow `to`, {fix}",
                            vertex.where, path)

    def check_boot_edges(self, jobnet: Node, vertices: list[Node], path: _LazyPath) -> None:
        """boot_jobs mode: every name a sibling, no loop, every child reachable. The children's
        `to` lists serve as the successor lists as they are (never changed), not copied: a
        jobnet may have 100,000 children."""
        first: dict[str, Node] = {}  # name -> its first vertex (duplicates are reported apart)
        successors: dict[str, list[str]] = {}  # name -> the sibling names it leads to
        for vertex in vertices:
            name = vertex.name
            if name in first:
                successors[name] = successors[name] + vertex.to
            else:
                first[name] = vertex
                successors[name] = vertex.to
        unknown = set(chain.from_iterable(successors.values())).difference(successors)
        if unknown:
            for vertex in vertices:
                for target in vertex.to:
                    if target in unknown:
                        self.report_unknown_target(
                            f"`to` of '{vertex.name}' in jobnet '{path}'", target, first,
                            vertex.where, path)
            successors = {name: [t for t in targets if t not in unknown]
                          for name, targets in successors.items()}
        boots = jobnet.boot_job_names or []
        boot_where = [s for s in jobnet.sequencing if s.kind == "boot_jobs"][-1].where
        for name in boots:
            if name not in first:
                self.report_unknown_target(f"boot_jobs of jobnet '{path}'", name, first,
                                           boot_where, path)
        self.check_cycles(vertices, first, successors, path)
        self.check_reachable(first, successors, [n for n in boots if n in first], path)

    def report_unknown_target(self, subject: str, target: str, siblings: Mapping[str, Node],
                              where: Any, path: _LazyPath) -> None:
        if target == FINALLY:
            why = ("a finally block is not part of the sequence and cannot be a target; it runs "
                   "by itself when the jobnet reaches its end")
        else:
            deeper = self.descendant_named(target, path.node)
            hint = (f" ('{target}' is '{self.path(deeper)}', inside another jobnet)" if deeper
                    else self.suggestion(target, siblings))
            why = (f"no child of '{path}' has that name{hint}; `to` and boot_jobs name siblings "
                   f"in the same jobnet")
        self.report("unknown_target", f"{subject} names '{target}': {why}", where, path)

    def check_cycles(self, vertices: list[Node], first: dict[str, Node],
                     successors: dict[str, list[str]], path: _LazyPath) -> None:
        looping = not_topologically_sortable(successors)
        if not looping:
            return  # the common case: a DAG, found by one cheap pass
        position = {v.name: i for i, v in reversed(list(enumerate(vertices)))}
        order = sorted(looping, key=position.__getitem__)
        for component in strongly_connected(order, successors.__getitem__):
            if len(component) == 1 and component[0] not in successors[component[0]]:
                continue  # a vertex downstream of a loop, not on one
            start = min(component, key=position.__getitem__)  # first in the file
            loop = loop_through(start, set(component), successors.__getitem__)
            self.report("cycle",
                        f"circular dependency in jobnet '{path}': {arrow_chain(loop)}; remove one "
                        f"of these `to` links so the children can be ordered",
                        first[start].where, path)

    def check_reachable(self, first: dict[str, Node], successors: dict[str, list[str]],
                        boots: list[str], path: _LazyPath) -> None:
        reached = set(boots)
        queue = list(boots)
        while queue:
            for target in successors[queue.pop()]:
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        if len(reached) == len(first):
            return
        for name, vertex in first.items():
            if name not in reached:
                self.report("unreachable",
                            f"'{name}' in jobnet '{path}' never runs: it is not in boot_jobs and "
                            f"no child that runs leads to it with `to` (Tengine runs the jobnet "
                            f"without it); add it to boot_jobs or to the `to` of a child",
                            vertex.where, path)

    # -- across roots ----------------------------------------------------------------------

    def check_duplicate_roots(self) -> None:
        by_name: dict[str, list[Node]] = {}
        for root in self.defs.roots:
            if isinstance(root.name, str):
                by_name.setdefault(root.name, []).append(root)
        for name, same in by_name.items():
            if len(same) > 1:
                self.report("duplicate_root",
                            f"{len(same)} jobnet named \"{name}\" found at "
                            f"{join_and(place(r.where) for r in same)}; a root jobnet name must be "
                            f"unique (expansions find root jobnets by name): rename one",
                            same[1].where, "/" + name)

    def check_expansions(self) -> None:
        """Missing targets, self expansion, and loops of roots expanding each other."""
        position: dict[str, int] = {}
        for root in self.defs.roots:
            if isinstance(root.name, str):
                position.setdefault(root.name, len(position))
        # root -> target -> the first expansion node that makes that edge
        edges: dict[str, dict[str, Node]] = {name: {} for name in position}
        for root, node in self.expansions:
            target = node.name
            if not isinstance(target, str) or not target:
                continue  # bad_value already says so
            container = _LazyPath(self, self.parent_of.get(node))
            if target == root.name:
                self.report("expansion_self",
                            f"root jobnet '{target}' expands itself at '{self.path(node)}': the "
                            f"copy would contain itself without end; expand another root jobnet, "
                            f"or write the jobs there directly",
                            node.where, container)
            elif target not in position:
                self.report("expansion_missing",
                            f"expansion of '{target}' in '{container}': no root jobnet of that "
                            f"name{self.suggestion(target, position)}",
                            node.where, container)
            elif isinstance(root.name, str):
                edges[root.name].setdefault(target, node)

        def successors(name: str) -> Iterable[str]:
            return edges[name].keys()

        for component in strongly_connected(position, successors):
            if len(component) < 2:
                continue  # a root alone: expansion_self covers its self loop
            start = min(component, key=position.__getitem__)
            loop = loop_through(start, set(component), successors)
            where = edges[start][loop[1]].where
            steps = [f"'{a}' expands '{b}' at '{self.path(edges[a][b])}' "
                     f"({place_from(edges[a][b].where, where)})" for a, b in pairwise(loop)]
            self.report("expansion_cycle",
                        f"root jobnets expand each other: {arrow_chain(loop)} "
                        f"({'; '.join(steps)}); each copy would contain the next without end: "
                        f"remove one of these expansions",
                        where, "/" + start)


class _LazyPath:
    """A node's name path, built the first time it is formatted (only when a problem needs it):
    building every path up front would cost O(depth) per node."""

    def __init__(self, checker: Checker, node: Node | None) -> None:
        self.checker, self.node = checker, node
        self.text: str | None = None

    def __str__(self) -> str:
        if self.text is None:
            self.text = self.checker.path(self.node)
        return self.text


def _bad_option_value(key: str, value: Any) -> str | None:
    """Why an option's value is wrong, or None when it is fine (or not ours to judge)."""
    if key == "killing_signals":
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, str) and v in _SIGNAL_NAMES for v in value):
            return None
        return (f"killing_signals must be a non-empty list of signal names such as "
                f"[\"TERM\", \"KILL\"], got {value!r}")
    if key == "killing_signal_interval":
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value > 0):
            return None
        return f"killing_signal_interval must be a positive number of seconds, got {value!r}"
    if key in ("server_name", "credential_name"):
        if isinstance(value, str) and value.strip():
            return None
        return f"{key} must be a non-empty string (a registered name), got {value!r}"
    if key == "auto_sequence":
        if isinstance(value, bool):
            return None
        return f"auto_sequence must be true or false, got {value!r}"
    return None


def _is_name_list(names: Any) -> bool:
    return isinstance(names, list) and all(isinstance(n, str) for n in names)

