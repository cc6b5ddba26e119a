"""The import graph of tengine_min/ and harness/, read from the source with ast (nothing is
imported): no import cycles, and data flows one way (docs/states.md, "Layout").

An edge is what a statement makes Python run first: `import a.b` is an edge to `a.b`;
`from a.b import c` is an edge to `a.b` and, when `a.b.c` is a module, to `a.b.c` too. So a
package's `__init__` that imports its own modules, and a module of it that imports from the
package (`from . import x`), make a cycle. Imports inside functions and under TYPE_CHECKING count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tengine_min", "harness")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    file: str  # relative to the repository
    line: int

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} ({self.file}:{self.line})"


def module_files(root: Path = REPO) -> dict[str, Path]:
    """Every module of PACKAGES by dotted name; a package is its __init__.py."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path], root: Path) -> Iterator[Import]:
    """The edges from module `name` to the modules in `known` (see the module doc)."""
    is_package = path.name == "__init__.py"
    file = str(path.relative_to(root))
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(name, is_package, node.level, node.module)
            targets = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target in known and target != name:
                yield Import(name, target, file, node.lineno)


def _absolute(name: str, is_package: bool, level: int, module: str | None) -> str:
    """The module a `from ... import` names, relative imports resolved against `name`."""
    if level == 0:
        return module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def import_graph(root: Path = REPO) -> dict[str, list[Import]]:
    known = module_files(root)
    return {name: list(imports_of(name, path, known, root)) for name, path in known.items()}


def cycles(graph: dict[str, list[Import]], within: str) -> list[list[Import]]:
    """One cycle of imports per strongly connected group of modules under `within`
    (Tarjan's algorithm, iterative)."""
    nodes = [n for n in graph if _under(n, within)]
    edges = {n: [e for e in graph[n] if _under(e.imported, within)] for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            step = next(pending, None)
            if step is not None:
                target = step.imported
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges[target])))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_cycle_in(group, edges) for group in groups]


def _cycle_in(group: set[str], edges: dict[str, list[Import]]) -> list[Import]:
    """A shortest way round from the group's first module back to itself."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in edges[node]:
                if edge.imported == start:
                    return [*paths[node], edge]
                if edge.imported in group and edge.imported not in paths:
                    paths[edge.imported] = [*paths[node], edge]
                    following.append(edge.imported)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def crossings(graph: dict[str, list[Import]], source: str,
              forbidden: Iterable[str]) -> list[Import]:
    """The imports from modules under `source` of modules under any of `forbidden` (outside
    `source` itself)."""
    forbidden = tuple(forbidden)
    return [edge for name, found in graph.items() if _under(name, source) for edge in found
            if not _under(edge.imported, source)
            and any(_under(edge.imported, other) for other in forbidden)]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def describe(found: list[list[Import]]) -> str:
    return "\n".join("cycle:\n  " + "\n  ".join(map(str, cycle)) for cycle in found)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph()


def test_tengine_min_has_no_import_cycles(graph):
    found = cycles(graph, "tengine_min")
    assert not found, describe(found)


def test_harness_has_no_import_cycles(graph):
    found = cycles(graph, "harness")
    assert not found, describe(found)


# (the layer, what it must not import, why)
LAYERS = [
    ("tengine_min.events", ["tengine_min"],
     "the envelope and the event names are below everything: they import nothing else"),
    ("tengine_min.model", ["tengine_min.core", "tengine_min.console", "tengine_min.bus",
                           "tengine_min.store", "tengine_min.watcher"],
     "templates, phases and ids are below the store and the processes"),
    ("tengine_min.store", ["tengine_min.core", "tengine_min.console", "tengine_min.bus",
                           "tengine_min.watcher"],
     "the store keeps what the core and the console share; it knows neither"),
    ("tengine_min.bus", ["tengine_min.core", "tengine_min.console", "tengine_min.store",
                         "tengine_min.watcher"],
     "the bus carries events; it knows nothing of who sends or handles them"),
    ("tengine_min.watcher", ["tengine_min.core", "tengine_min.console", "tengine_min.store"],
     "the watcher runs on a job host: it talks to the bus, never to the store or the core"),
    ("tengine_min.transport", ["tengine_min.core", "tengine_min.console", "tengine_min.store",
                               "tengine_min.bus", "tengine_min.watcher"],
     "a transport runs a command on a server, for the core and the console alike"),
    ("tengine_min.console", ["tengine_min.core"],
     "the console reads the store and sends commands as events; only the core handles them"),
    ("tengine_min", ["harness"], "the product knows nothing of the harness that breaks it"),
    ("harness.history", ["harness", "tengine_min"],
     "the history is what every other part of the harness writes and reads: it knows none"),
    ("harness.coverage", ["harness.cluster", "harness.faults", "harness.report",
                          "harness.plugin"],
     "the coverage matrix is read from the history alone, never from the parts that wrote it"),
    ("harness.faults", ["harness.cluster", "harness.plugin", "harness.report"],
     "faults break what a cluster has; the cluster holds them, not the other way round"),
]


@pytest.mark.parametrize("layer, forbidden, why", LAYERS, ids=[layer for layer, _, _ in LAYERS])
def test_data_flows_one_way(graph, layer, forbidden, why):
    found = crossings(graph, layer, forbidden)
    assert not found, f"{why}:\n  " + "\n  ".join(map(str, found))


MAX_MODULE_LINES = 700  # issue 11: a module past this holds several concepts; split it


def test_no_module_is_over_700_lines():
    long = {str(path.relative_to(REPO)): lines for path in module_files().values()
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


# --- the checks themselves, on a small tree of files -------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_package_that_imports_its_module_which_imports_the_package_is_a_cycle(tmp_path):
    write_tree(tmp_path, {
        "tengine_min/__init__.py": "",
        "tengine_min/bus/__init__.py": "from tengine_min.bus.consumer import Consumer\n",
        "tengine_min/bus/consumer.py": "import json\n\nfrom tengine_min.bus import topology\n",
        "tengine_min/bus/topology.py": "",
        "tengine_min/cli.py": "def main():\n    from .demo import run\n",
        "tengine_min/demo.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from tengine_min import cli\n",
        "tengine_min/core/__init__.py": "",
        "tengine_min/core/kernel.py": "from . import phases\nfrom ..bus import topology\n",
        "tengine_min/core/phases.py": "",
        "harness/__init__.py": "",
    })
    found = cycles(import_graph(tmp_path), "tengine_min")
    # `from . import phases` in core/ is no cycle: core's __init__ imports nothing.
    assert sorted([(e.importer, e.imported, e.line) for e in cycle] for cycle in found) == [
        [("tengine_min.bus", "tengine_min.bus.consumer", 1),
         ("tengine_min.bus.consumer", "tengine_min.bus", 3)],
        [("tengine_min.cli", "tengine_min.demo", 2), ("tengine_min.demo", "tengine_min.cli", 3)]]
    text = describe(found)
    assert "tengine_min.cli imports tengine_min.demo (tengine_min/cli.py:2)" in text
    assert ("tengine_min.bus.consumer imports tengine_min.bus (tengine_min/bus/consumer.py:3)"
            in text)


def test_an_import_across_the_layers_is_named_with_its_file_and_line(tmp_path):
    write_tree(tmp_path, {
        "tengine_min/__init__.py": "",
        "tengine_min/store/__init__.py": "",
        "tengine_min/store/repo.py": "import os\n\nfrom ..core.phases import READY\n",
        "tengine_min/core/__init__.py": "",
        "tengine_min/core/phases.py": "",
        "harness/__init__.py": "",
    })
    found = crossings(import_graph(tmp_path), "tengine_min.store", ["tengine_min.core"])
    assert [str(e) for e in found] == [
        "tengine_min.store.repo imports tengine_min.core.phases (tengine_min/store/repo.py:3)"]
    assert crossings(import_graph(tmp_path), "tengine_min.core", ["tengine_min.store"]) == []
