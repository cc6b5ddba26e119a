"""Property tests of the validator.

Random valid definitions (random DAGs of `to` edges in boot_jobs mode among jobs, sub-jobnets and
expansions, nested jobnets and finally blocks, expansions between roots forming a DAG) must give
no problem at all. Then defects are injected (a loop of `to` edges of any length, a self
expansion, a mutual or longer expansion loop, an expansion of a missing root, a duplicate root, a
duplicate child name, an unknown target) and the validator must report exactly what a reference
check finds, compared as sets of (code, jobnet path). The reference below is written apart from
the validator and shares no code with it: Kahn's algorithm for `to` loops, plain reachability
sets for expansion loops, and it reads the final structure, so injections that interact (a
duplicate name changes the edges) are judged as they end up.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tengine_min.model.nodes import (
    EXPANSION,
    FINALLY,
    JOB,
    JOBNET,
    KINDS,
    Definitions,
    Node,
    Sequencing,
    UnknownOption,
    Where,
)
from tengine_min.model.problems import CODES
from tengine_min.model.validator import runnable_roots, validate

DEFECTS = ("cycle", "self_expansion", "expansion_loop", "missing_expansion", "duplicate_root",
           "duplicate_name", "unknown_target")

# -- generating valid definitions ------------------------------------------------------------


def _container(draw, kind: str, name: str, depth: int, expandable: list[str]) -> Node:
    node = Node(kind, name, Where("gen.rb"))
    for k in range(draw(st.integers(0, 5))):
        choices = ["job"] + (["jobnet"] if depth < 2 else [])
        used = {c.name for c in node.children}
        free_targets = [r for r in expandable if r not in used]
        choices += ["expansion"] if free_targets else []
        choice = draw(st.sampled_from(choices))
        if choice == "job":
            node.add(Node(JOB, f"c{k}", Where("gen.rb"), script="$HOME/work.sh"))
        elif choice == "jobnet":
            node.add(_container(draw, JOBNET, f"c{k}", depth + 1, expandable))
        else:
            node.add(Node(EXPANSION, draw(st.sampled_from(free_targets)), Where("gen.rb")))
    vertices = list(node.children)
    if vertices and draw(st.booleans()):  # boot_jobs mode with a random DAG of `to`
        order = draw(st.permutations(range(len(vertices))))
        targeted = set()
        for pos, i in enumerate(order):
            for j in order[pos + 1:]:
                if draw(st.booleans()):
                    vertices[i].to.append(vertices[j].name)
                    targeted.add(j)
        sources = [v.name for i, v in enumerate(vertices) if i not in targeted]
        node.sequencing.append(Sequencing("boot_jobs", Where("gen.rb"), sources))
    elif draw(st.booleans()):
        node.sequencing.append(Sequencing("auto_sequence", Where("gen.rb")))
    if depth < 2 and kind != FINALLY and draw(st.booleans()):
        node.add(_container(draw, FINALLY, FINALLY, depth + 1, expandable))
    return node


@st.composite
def valid_definitions(draw) -> Definitions:
    names = [f"r{i}" for i in range(draw(st.integers(1, 5)))]
    # a root only expands roots after it: the expansion graph is a DAG
    roots = [_container(draw, JOBNET, name, 0, names[i + 1:]) for i, name in enumerate(names)]
    return _numbered(Definitions(roots=roots, files=["gen.rb"]))


def _numbered(defs: Definitions) -> Definitions:
    """Give every node and declaration its own line, in declaration order per file."""
    lines: Counter[str] = Counter()
    stack = list(reversed(defs.roots))
    while stack:
        node = stack.pop()
        file = node.where.file
        lines[file] += 1
        node.where = Where(file, lines[file])
        for seq in node.sequencing:
            lines[file] += 1
            seq.where = Where(file, lines[file])
        stack.extend(reversed(node.children))
    return defs


# -- injecting defects -----------------------------------------------------------------------


def _containers(root: Node) -> list[Node]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.kind in (JOBNET, FINALLY):
            found.append(node)
        stack.extend(node.children)
    return found


def _is_boot_mode(node: Node) -> bool:
    return any(s.kind == "boot_jobs" for s in node.sequencing)


def _add_vertex(container: Node, vertex: Node) -> None:
    """Add a child that runs: in boot_jobs mode it is booted, so no warning can follow."""
    container.add(vertex)
    if _is_boot_mode(container):
        container.sequencing[-1].names.append(vertex.name)


def _reachable_names(container: Node, start: str) -> list[str]:
    succ: dict[str, list[str]] = {}
    for v in container.children:
        if v.kind != FINALLY:
            succ.setdefault(v.name, []).extend(v.to)
    seen, todo = {start}, [start]
    while todo:
        for t in succ.get(todo.pop(), []):
            if t in succ and t not in seen:
                seen.add(t)
                todo.append(t)
    return sorted(seen)


def _inject(draw, defs: Definitions, defect: str, serial: int) -> None:
    roots = defs.roots
    if defect == "cycle":
        boot = [c for r in roots for c in _containers(r) if _is_boot_mode(c)]
        if not boot:
            return
        container = draw(st.sampled_from(boot))
        vertices = [v for v in container.children if v.kind != FINALLY]
        head = draw(st.sampled_from(vertices))
        tail_name = draw(st.sampled_from(_reachable_names(container, head.name)))
        tail = next(v for v in vertices if v.name == tail_name)
        tail.to.append(head.name)  # tail is reachable from head: this closes a loop
    elif defect == "self_expansion":
        root = draw(st.sampled_from(roots))
        container = draw(st.sampled_from(_containers(root)))
        _add_vertex(container, Node(EXPANSION, root.name, Where("gen.rb")))
    elif defect == "expansion_loop":
        originals = [r for r in roots if r.where.file == "gen.rb"]  # one per name
        if len(originals) < 2:
            return
        size = draw(st.integers(2, len(originals)))
        chain = draw(st.permutations(originals))[:size]
        for here, there in zip(chain, chain[1:] + chain[:1], strict=True):
            container = draw(st.sampled_from(_containers(here)))
            _add_vertex(container, Node(EXPANSION, there.name, Where("gen.rb")))
    elif defect == "missing_expansion":
        container = draw(st.sampled_from([c for r in roots for c in _containers(r)]))
        _add_vertex(container, Node(EXPANSION, f"nowhere{serial}", Where("gen.rb")))
    elif defect == "duplicate_root":
        name = draw(st.sampled_from(roots)).name
        copy = Node(JOBNET, name, Where("dup.rb"))
        copy.add(Node(JOB, "j", Where("dup.rb"), script="$HOME/work.sh"))
        roots.append(copy)
    elif defect == "duplicate_name":
        candidates = [c for r in roots for c in _containers(r)
                      if any(v.kind != FINALLY for v in c.children)]
        if not candidates:
            return
        container = draw(st.sampled_from(candidates))
        twin = draw(st.sampled_from([v for v in container.children if v.kind != FINALLY]))
        container.add(Node(JOB, twin.name, Where("gen.rb"), script="$HOME/other.sh"))
    elif defect == "unknown_target":
        boot = [c for r in roots for c in _containers(r) if _is_boot_mode(c)]
        if not boot:
            return
        container = draw(st.sampled_from(boot))
        vertex = draw(st.sampled_from([v for v in container.children if v.kind != FINALLY]))
        vertex.to.append(f"ghost{serial}")


@st.composite
def defective_definitions(draw) -> tuple[Definitions, list[str]]:
    defs = draw(valid_definitions())
    defects = draw(st.lists(st.sampled_from(DEFECTS), min_size=1, max_size=4))
    for serial, defect in enumerate(defects):
        _inject(draw, defs, defect, serial)
    return _numbered(defs), defects


# -- the reference check (independent of the validator) --------------------------------------


def reference(defs: Definitions) -> tuple[set[tuple[str, str]], set[str]]:
    """(the expected (code, jobnet) pairs, the expected runnable root names)."""
    found: set[tuple[str, str]] = set()
    bad_roots: set[str] = set()
    root_names = [r.name for r in defs.roots]
    expands: dict[str, set[str]] = {name: set() for name in root_names}

    def visit(node: Node, path: str, root: str) -> None:
        if node.kind == EXPANSION:
            parent_path = path.rsplit("/", 1)[0]
            if node.name == root:
                found.add(("expansion_self", parent_path))
                bad_roots.add(root)
            elif node.name not in root_names:
                found.add(("expansion_missing", parent_path))
                bad_roots.add(root)
            else:
                expands[root].add(node.name)
        if node.kind in (JOBNET, FINALLY):
            for code in judge_children(node):
                found.add((code, path))
                bad_roots.add(root)
        for child in node.children:
            visit(child, f"{path}/{child.name}", root)

    for root in defs.roots:
        visit(root, "/" + root.name, root.name)
    for name, count in Counter(root_names).items():
        if count > 1:
            found.add(("duplicate_root", "/" + name))
            bad_roots.add(name)

    # expansion loops: roots that reach each other
    reach = {name: _reach(name, expands) for name in expands}
    for name in expands:
        loop = {other for other in reach[name] if name in reach[other]}
        if len(loop) >= 2:
            first = min(loop, key=root_names.index)
            found.add(("expansion_cycle", "/" + first))
            bad_roots.update(loop)

    # a root that expands (transitively) a bad root cannot run either
    runnable = {name for name in expands if not (reach[name] | {name}) & bad_roots}
    return found, runnable


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    """Roots reachable from `start` by one or more expansions."""
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name])
    return seen


def judge_children(container: Node) -> list[str]:
    """The codes a jobnet's own children and edges deserve, by the textbook rules."""
    codes = []
    vertices = [c for c in container.children if c.kind != FINALLY]
    names = [v.name for v in vertices]
    if len(set(names)) < len(names):
        codes.append("duplicate_name")
    boots = [s.names for s in container.sequencing if s.kind == "boot_jobs"]
    if not (boots and boots[-1]):
        return codes  # auto_sequence: `to` plays no part
    known = set(names)
    if any(t not in known for v in vertices for t in v.to) or any(
            b not in known for b in boots[-1]):
        codes.append("unknown_target")
    # Kahn: repeatedly remove vertices without incoming edges; what remains holds a loop
    incoming = {name: 0 for name in known}
    edges = [(v.name, t) for v in vertices for t in v.to if t in known]
    for _, target in edges:
        incoming[target] += 1
    ready = [name for name, n in incoming.items() if n == 0]
    removed = 0
    while ready:
        name = ready.pop()
        removed += 1
        for origin, target in edges:
            if origin == name:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    if removed < len(known):
        codes.append("cycle")
    return codes


# -- the properties --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(valid_definitions())
def test_valid_definitions_have_no_problem(defs):
    assert validate(defs) == []
    assert runnable_roots(defs, []) == {r.name for r in defs.roots}


@settings(max_examples=150, deadline=None)
@given(defective_definitions())
def test_injected_defects_are_reported_exactly(case):
    defs, _defects = case
    problems = validate(defs)
    expected, expected_runnable = reference(defs)
    assert {(p.code, p.jobnet) for p in problems} == expected
    assert runnable_roots(defs, problems) == expected_runnable


@settings(max_examples=150, deadline=None)
@given(defective_definitions())
def test_every_injected_defect_shows(case):
    """Each kind of defect injected is among the codes reported (the reference could in
    principle be wrong the same way as the validator; this pins the injections themselves)."""
    defs, defects = case
    reported = {p.code for p in validate(defs)}
    must = {"self_expansion": "expansion_self", "missing_expansion": "expansion_missing",
            "duplicate_root": "duplicate_root"}
    for defect in defects:
        if defect in must:
            assert must[defect] in reported
        elif defect == "expansion_loop" and len({r.name for r in defs.roots}) >= 2:
            assert "expansion_cycle" in reported
        elif defect == "cycle" and any(
                _is_boot_mode(c) for r in defs.roots for c in _containers(r)):
            assert "cycle" in reported


# -- never raises on anything a reader could build ---------------------------------------------

_names = st.sampled_from(["a", "b", "c", "finally", "r0", "r1", "", "x/y", None, 7])
_option_values = st.sampled_from([None, True, 0, -1, 2.5, "KILL", ["TERM"], [], ["NOPE"], "x"])


@st.composite
def odd_node(draw, depth: int = 0) -> Node:
    kind = draw(st.sampled_from([*KINDS, "ruby_job"]))
    node = Node(kind, draw(_names), Where(draw(st.sampled_from(["a.rb", "b.yaml"])),
                                          draw(st.integers(0, 50))))
    node.script = draw(st.sampled_from([None, "", " ", "run.sh", 3]))
    node.to = draw(st.lists(st.one_of(_names, st.just("ghost")), max_size=3))
    for key in draw(st.lists(st.sampled_from(
            ["server_name", "credential_name", "killing_signals", "killing_signal_interval",
             "auto_sequence", "preparation"]), max_size=3)):
        node.options[key] = draw(_option_values)
    if draw(st.booleans()):
        node.unknown_options.append(UnknownOption("hoge", node.where))
    for _ in range(draw(st.integers(0, 2))):
        kind_of = draw(st.sampled_from(["boot_jobs", "auto_sequence"]))
        node.sequencing.append(Sequencing(kind_of, node.where,
                                          draw(st.lists(_names, max_size=3))))
    if depth < 2:
        for child in draw(st.lists(odd_node(depth + 1), max_size=3)):
            node.add(child)
    return node


@settings(max_examples=150, deadline=None)
@given(st.lists(odd_node(), min_size=1, max_size=4))
def test_odd_definitions_never_raise(roots):
    defs = Definitions(roots=roots)
    problems = validate(defs)
    assert all(p.code in CODES and p.severity == CODES[p.code][0] for p in problems)
    keys = [(p.file or "", p.line or 0, p.code) for p in problems]
    assert keys == sorted(keys)
    runnable = runnable_roots(defs, problems)
    assert runnable <= {r.name for r in roots if isinstance(r.name, str)}

