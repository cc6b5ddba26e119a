"""Judge jobnet definitions: every reason a definition cannot run, found in one pass.

The readers record what the author wrote, defects included (nodes.py); this module is the one
place that judges it, so every format gets the same codes and messages. Each problem names the
jobnet it concerns by its name path and says what to change.

Everything here is iterative and linear in the size of the definitions. A jobnet's `to` graph is
first trimmed by Kahn's algorithm (repeatedly drop vertices without incoming edges), which clears
a DAG, the common case, in one cheap pass; what is left goes through an iterative Tarjan pass for
its strongly connected components, and one breadth-first search inside each gives a concrete
loop to show. The expansion graph between roots gets the same Tarjan pass. A 100,000-job jobnet,
a 100,000-long loop of `to` edges or a deeply nested tree validate without recursion, and name
paths are built only for the problems that show them.
"""

from __future__ import annotations

import difflib
import math
import signal
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Any

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
    OPTION_ALIASES,
    Definitions,
    Node,
)
from .problems import ERROR, Problem, problem

if TYPE_CHECKING:
    from ..resources import Resources

__all__ = ["check_resource_names", "errors", "runnable_roots", "strongly_connected",
           "validate"]

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
# Loops longer than this are shown shortened; nobody reads 100,000 names in one message.
_LONGEST_SHOWN_LOOP = 30
# How many candidate comparisons difflib may spend on "did you mean" in one validation: keeps a
# pathological definition (thousands of wrong names among thousands of siblings) linear.
_SUGGESTION_BUDGET = 200_000


def validate(defs: Definitions, resources: Resources | None = None) -> list[Problem]:
    """The readers' problems plus everything wrong with `defs`, sorted by (file, line, code).
    Given `resources`, server and credential names they do not define are problems too."""
    found = _Checker(defs).run()
    if resources is not None:
        found += check_resource_names(defs, resources)
    return sorted([*defs.problems, *found], key=_sort_key)


def check_resource_names(defs: Definitions, resources: Resources) -> list[Problem]:
    """Every `server_name` / `credential_name` written in `defs` that `resources` does not
    define (Tengine's load-time warnings W1/W2, errors here): `unknown_server`,
    `unknown_credential`. Each name is checked where it is written, so an inherited name is
    reported once, at the jobnet that sets it."""
    checks = (("server_name", "server", "unknown_server", resources.servers),
              ("credential_name", "credential", "unknown_credential", resources.credentials))
    problems: list[Problem] = []
    # (node, its parent's entry): paths are built only for the nodes that have a problem.
    stack: list[tuple[Node, tuple | None]] = [(root, None) for root in reversed(defs.roots)]
    while stack:
        node, parent = stack.pop()
        for key, what, code, known in checks:
            name = node.options.get(key)
            if not isinstance(name, str) or not name.strip() or name in known:
                continue  # a non-string name is bad_value's business
            path = _chain_path(node, parent)
            jobnet = path if node.kind in CONTAINERS or parent is None else \
                _chain_path(*parent)
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            names = sorted(known)
            defined = ", ".join(names[:10]) + (f" and {len(names) - 10} more"
                                               if len(names) > 10 else "") or "none"
            problems.append(problem(
                code, f"{node.kind} '{path}' names {what} '{name}', which {resources.source} "
                      f"does not define{hint}; defined: {defined}", node.where, jobnet))
        entry = (node, parent)
        stack.extend((child, entry) for child in reversed(node.children or []))
    return problems


def _chain_path(node: Node, parent: tuple | None) -> str:
    parts = [_display_name(node)]
    while parent is not None:
        node, parent = parent
        parts.append(_display_name(node))
    return "/" + "/".join(reversed(parts))


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that stop a definition from running (warnings do not)."""
    return [p for p in problems if p.severity == ERROR]


def runnable_roots(defs: Definitions, problems: Iterable[Problem]) -> set[str]:
    """Names of the root jobnets that may run: no error in themselves nor in any root jobnet they
    expand, transitively. A name given to two roots is never runnable (duplicate_root). An error
    that names no jobnet but a file (a syntax error, say) counts against every root of that file."""
    names = [r.name for r in defs.roots if isinstance(r.name, str)]
    by_path: dict[str, list[str]] = {}
    by_file: dict[str, list[str]] = {}
    for name in names:
        by_path.setdefault("/" + name, []).append(name)
    for root in defs.roots:
        if isinstance(root.name, str) and root.where is not None:
            by_file.setdefault(root.where.file, []).append(root.name)

    tainted: set[str] = set()
    for p in errors(problems):
        if p.jobnet:
            tainted.update(_roots_on_path(p.jobnet, by_path))
        elif p.file:
            tainted.update(by_file.get(p.file, ()))

    # Who expands whom, reversed: a root is tainted by any root it expands.
    expanded_by: dict[str, set[str]] = {}
    for root in defs.roots:
        if not isinstance(root.name, str):
            continue
        for node in _descendants(root):
            if node.kind == EXPANSION and isinstance(node.name, str):
                expanded_by.setdefault(node.name, set()).add(root.name)
    queue = deque(tainted)
    while queue:
        for expander in expanded_by.get(queue.popleft(), ()):
            if expander not in tainted:
                tainted.add(expander)
                queue.append(expander)
    return set(names) - tainted


def strongly_connected(order: Iterable[Hashable],
                       successors: Callable[[Hashable], Iterable[Hashable]]) -> list[list]:
    """Tarjan's strongly connected components, iteratively (no recursion limit), in O(V + E).
    `order` gives the vertices; `successors(v)` the targets of v's edges. Components come out in
    reverse topological order, each as a list of its vertices."""
    index: dict[Hashable, int] = {}
    low: dict[Hashable, int] = {}
    on_stack: set[Hashable] = set()
    stack: list[Hashable] = []
    components: list[list] = []

    def visit(vertex: Hashable) -> Iterable[Hashable]:
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


# -- the checks ------------------------------------------------------------------------------


class _Checker:
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
            parts.append(_display_name(node))
            node = self.parent_of.get(node)
        return "/" + "/".join(reversed(parts))

    def concerned_jobnet(self, node: Node) -> str:
        """The jobnet a problem about `node` concerns: itself if it holds children, else the
        nearest one around it (a job's problem is shown under the jobnet it is in)."""
        while node.kind not in CONTAINERS and self.parent_of.get(node) is not None:
            node = self.parent_of[node]
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
        if parent is None or kind not in _CHILD_KINDS.get(parent.kind, ()) or node.to and (
                kind == FINALLY):
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
                f"{kind} '{self.path(node)}' has `to` {_names(node.to)}, but a "
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
        name = node.name
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
                f"(Tengine: {unknown.key} is invalid option.); {_allowed_text(node.kind, allowed)}",
                unknown.where, jobnet)
        options = node.options if isinstance(node.options, Mapping) else {}
        for key, value in options.items():
            why = _bad_option_value(key, value)
            if why:
                jobnet = jobnet or self.concerned_jobnet(node)
                self.report("bad_value", f"{node.kind} '{self.path(node)}': {why}",
                            node.where, jobnet)

    def check_script(self, node: Node) -> None:
        script = node.script
        if isinstance(script, str) and script.strip():
            return
        if script is None or isinstance(script, str):
            message = (f"{node.kind} '{self.path(node)}' has no script: give the command it runs, "
                       f"e.g. {node.kind}(\"{_display_name(node)}\", \"$HOME/bin/work.sh\")")
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
                        f"{_lines(f.where for f in finals)}); Tengine allows one (finally is "
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
                        f"{_lines(b.where for b in boots)}) and Tengine would use only the last "
                        f"(boot_jobs or auto_sequence is duplicated): list every first child in "
                        f"one boot_jobs(...)",
                        boots[1].where, path)
        if len(autos) > 1:
            self.report("duplicate_auto_sequence",
                        f"{kind} '{path}' declares auto_sequence {len(autos)} times ("
                        f"{_lines(autos)}{counted}) (Tengine: auto_sequence is duplicated): "
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
                            f"{_lines(v.where for v in same)}); names must be unique "
                            f"within one jobnet (Tengine: {name} is duplicated): rename one",
                            same[1].where, path)

    def check_ignored_to(self, jobnet: Node, vertices: list[Node], path: _LazyPath) -> None:
        declared = any(s.kind == "auto_sequence" for s in jobnet.sequencing or [])
        fix = ("replace auto_sequence with boot_jobs(...)" if declared
               else "add boot_jobs(...) naming the first children")
        for vertex in vertices:
            if vertex.to:
                self.report("to_ignored",
                            f"`to` {_names(vertex.to)} of '{vertex.name}' in jobnet '{path}' is "
                            f"ignored: the jobnet runs its children in the order written "
                            f"(auto_sequence); to follow `to`, {fix}",
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
        looping = _not_topologically_sortable(successors)
        if not looping:
            return  # the common case: a DAG, found by one cheap pass
        position = {v.name: i for i, v in reversed(list(enumerate(vertices)))}
        order = sorted(looping, key=position.__getitem__)
        for component in strongly_connected(order, successors.__getitem__):
            if len(component) == 1 and component[0] not in successors[component[0]]:
                continue  # a vertex downstream of a loop, not on one
            start = min(component, key=position.__getitem__)  # first in the file
            loop = _loop_through(start, set(component), successors.__getitem__)
            self.report("cycle",
                        f"circular dependency in jobnet '{path}': {_chain(loop)}; remove one of "
                        f"these `to` links so the children can be ordered",
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
                            f"{_join(_place(r.where) for r in same)}; a root jobnet name must be "
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
            loop = _loop_through(start, set(component), successors)
            where = edges[start][loop[1]].where
            steps = [f"'{a}' expands '{b}' at '{self.path(edges[a][b])}' "
                     f"({_place_from(edges[a][b].where, where)})" for a, b in pairwise(loop)]
            self.report("expansion_cycle",
                        f"root jobnets expand each other: {_chain(loop)} ({'; '.join(steps)}); "
                        f"each copy would contain the next without end: remove one of these "
                        f"expansions",
                        where, "/" + start)


class _LazyPath:
    """A node's name path, built the first time it is formatted (only when a problem needs it):
    building every path up front would cost O(depth) per node."""

    def __init__(self, checker: _Checker, node: Node | None) -> None:
        self.checker, self.node, self.text = checker, node, None

    def __str__(self) -> str:
        if self.text is None:
            self.text = self.checker.path(self.node)
        return self.text


# -- small pure helpers ----------------------------------------------------------------------


def _sort_key(p: Problem) -> tuple[str, int, str]:
    return (p.file or "", p.line or 0, p.code)


def _display_name(node: Node) -> str:
    name = node.name
    if isinstance(name, str) and name:
        return name
    return f"<unnamed {node.kind}>" if name in (None, "") else f"<{name!r}>"


def _place(where: Any) -> str:
    return str(where) if where is not None else "?"


def _lines(wheres: Iterable[Any]) -> str:
    """'lines 3 and 7' when all are in one file (the problem names it), else 'a.rb:3 and b.rb:7'."""
    wheres = list(wheres)
    files = {getattr(w, "file", None) for w in wheres}
    if len(files) == 1 and all(getattr(w, "line", 0) for w in wheres):
        return "lines " + _join(str(w.line) for w in wheres)
    return "at " + _join(_place(w) for w in wheres)


def _place_from(where: Any, seen_from: Any) -> str:
    """'line 7' when `where` is in the file of `seen_from` (which the problem names)."""
    if getattr(where, "file", None) == getattr(seen_from, "file", None) and getattr(
            where, "line", 0):
        return f"line {where.line}"
    return _place(where)


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _names(names: Iterable[Any]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _chain(loop: list[Any]) -> str:
    """`a -> b -> a`, shortened in the middle when very long."""
    shown = [str(v) for v in loop]
    if len(shown) > _LONGEST_SHOWN_LOOP:
        hidden = len(shown) - 25
        shown = shown[:20] + [f"... ({hidden} more) ..."] + shown[-5:]
    return " -> ".join(shown)


def _allowed_text(kind: str, allowed: frozenset[str]) -> str:
    if not allowed:
        return f"{kind} takes no options"
    aliases = sorted(alias for alias, canonical in OPTION_ALIASES.items() if canonical in allowed)
    text = f"{kind} takes {', '.join(sorted(allowed))}"
    return text + (f" (or the aliases {', '.join(aliases)})" if aliases else "")


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


def _not_topologically_sortable(successors: Mapping[str, list[str]]) -> list[str]:
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


def _loop_through(start: Hashable, members: set,
                  successors: Callable[[Hashable], Iterable[Hashable]]) -> list:
    """A shortest loop start -> ... -> start inside one strongly connected component
    (breadth-first, so linear in the component's size)."""
    came_from: dict[Hashable, Hashable | None] = {start: None}
    queue = deque([start])
    while queue:
        vertex = queue.popleft()
        for target in successors(vertex):
            if target == start:
                back = [vertex]
                while came_from[back[-1]] is not None:
                    back.append(came_from[back[-1]])
                return [*reversed(back), start]
            if target in members and target not in came_from:
                came_from[target] = vertex
                queue.append(target)
    return [start, start]  # not reached for a real component; keeps the message well-formed


def _descendants(root: Node):
    """Every node under `root`, iteratively."""
    stack = list(root.children or [])
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children or [])


def _roots_on_path(jobnet: str, by_path: Mapping[str, list[str]]) -> list[str]:
    """The roots whose path is `jobnet` or a prefix of it ('/r' for '/r/sub/job')."""
    found: list[str] = []
    cut = jobnet.find("/", 1)
    while True:
        prefix = jobnet if cut < 0 else jobnet[:cut]
        found.extend(by_path.get(prefix, ()))
        if cut < 0:
            return found
        cut = jobnet.find("/", cut + 1)
