"""Definitions benchmark (SCENARIOS.md D2, DESIGN.md "Performance goals").

For a generated 100,000-job definition and the Asakusa-like set (benchmarks/generate.py) it times
load (Tengine Ruby DSL text -> Definitions, through the real reader), validate, and instantiate;
and two baselines over the same graph (every boot_jobs jobnet's `to` edges plus the expansion
graph between roots): a bare iterative three-colour DFS cycle check written here, and networkx's
`find_cycle`. Building each baseline's graph from the Definitions is timed apart: the DFS goal
compares validate with build + DFS (both start from the same Definitions), the networkx goal
with find_cycle alone; every ratio is printed. Times are CPU seconds of this process, the best of
--repeat rounds (each round runs every step once, each step after a full garbage collection,
with the collector left on); the store figure is wall time, since it waits on the disk.

Run: `.venv/bin/python benchmarks/bench_definitions.py` (or `make bench`). Exits 1, naming
them, when a goal is missed; `--quick` runs tiny sizes once (timing goals are then shown but not
judged: at that size they measure noise) so a test can run the script end to end.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import math
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tengine_min` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import networkx as nx
from rich.console import Console
from rich.table import Table

from benchmarks import generate
from tengine_min.model import nodes
from tengine_min.model.instantiate import instantiate
from tengine_min.model.loader import load_text
from tengine_min.model.nodes import Definitions, Node
from tengine_min.model.validator import validate
from tengine_min.store.db import engine_for, write_transaction
from tengine_min.store.repo import create_execution

T = TypeVar("T")

# The goals (DESIGN.md "Performance goals", SCENARIOS.md D2).
VALIDATE_VS_DFS_MAX = 2.0  # validate within 2x of building the same graph + a bare DFS on it
VALIDATE_VS_NETWORKX_MAX = 1.0  # faster than networkx's cycle finder
LINEAR_SLOPE_MAX = 1.25  # log-log slope of validate time over size (1.0 = linear)
ASAKUSA_TOTAL_MAX = 0.5  # s: load + validate + instantiate "well under a second"
STORE_10K_MAX = 1.0  # s: a 10,000-job execution into the store on SQLite

FULL_JOBS = 100_000
QUICK_JOBS = 2_000
STORE_JOBS = 10_000


# -- the baseline graph and its two cycle finders ------------------------------------------------


@dataclass
class CycleGraph:
    """The graph a cycle check looks at, vertices numbered 0..n-1: every named node of every
    root (vertex i is nodes[i]); within each jobnet in boot_jobs mode, child -> sibling for
    each `to`; and root -> root for each expansion."""

    nodes: list[Node]
    adjacency: list[list[int]]

    @property
    def edge_count(self) -> int:
        return sum(len(targets) for targets in self.adjacency)

    def edges(self) -> list[tuple[int, int]]:
        return [(a, b) for a, targets in enumerate(self.adjacency) for b in targets]

    def describe(self, cycle: list[int]) -> str:
        return " -> ".join(self.nodes[i].path for i in cycle)


def build_cycle_graph(defs: Definitions) -> CycleGraph:
    everything: list[Node] = []
    for root in defs.roots:
        everything.extend(root.walk())
    index = {node: i for i, node in enumerate(everything)}
    adjacency: list[list[int]] = [[] for _ in everything]
    root_index: dict[str, int] = {}
    for root in defs.roots:
        root_index.setdefault(root.name, index[root])
    for node in everything:
        if node.kind in nodes.CONTAINERS:
            if node.auto_sequence:  # plan_edges' "sequence" mode: `to` is not used
                continue
            children = node.vertices
            sibling = {child.name: index[child] for child in children}
            for child in children:
                if child.to:
                    adjacency[index[child]] = [sibling[t] for t in child.to if t in sibling]
        elif node.kind == nodes.EXPANSION and node.name in root_index:
            adjacency[index[node.root]].append(root_index[node.name])
    return CycleGraph(everything, adjacency)


def dfs_find_cycle(adjacency: list[list[int]]) -> list[int] | None:
    """A cycle `a -> ... -> a` as a vertex list, or None: iterative three-colour DFS (white
    unvisited, grey on the current path, black finished); an edge to a grey vertex closes a
    cycle. O(V + E), no recursion."""
    white, grey, black = 0, 1, 2
    colour = [white] * len(adjacency)
    for start in range(len(adjacency)):
        if colour[start] != white:
            continue
        colour[start] = grey
        path = [start]
        pending = [iter(adjacency[start])]
        while pending:
            for target in pending[-1]:
                state = colour[target]
                if state == white:
                    colour[target] = grey
                    path.append(target)
                    pending.append(iter(adjacency[target]))
                    break
                if state == grey:
                    return [*path[path.index(target):], target]
            else:
                colour[path.pop()] = black
                pending.pop()
    return None


def networkx_graph(graph: CycleGraph) -> nx.DiGraph:
    digraph = nx.DiGraph()
    digraph.add_nodes_from(range(len(graph.adjacency)))
    digraph.add_edges_from(graph.edges())
    return digraph


def networkx_find_cycle(digraph: nx.DiGraph) -> list[int] | None:
    """networkx's answer to the same question: a cycle as a vertex list, or None."""
    try:
        edges = nx.find_cycle(digraph)
    except nx.NetworkXNoCycle:
        return None
    return [a for a, _ in edges] + [edges[0][0]]


# -- timing ----------------------------------------------------------------------------------------


class BestTimes:
    """The fastest time seen per step, in CPU seconds of this process (time.process_time): the
    steps are single-threaded and CPU-bound, and CPU time is what other processes on a shared
    machine disturb least. Each run starts after a full collection, so garbage of an earlier run
    is not billed to a later one; the collector stays on during the run (it is part of the cost)."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}

    def run(self, step: str, work: Callable[[], T]) -> T:
        gc.collect()
        started = time.process_time()
        result = work()
        elapsed = time.process_time() - started
        self.best[step] = min(self.best.get(step, math.inf), elapsed)
        return result


def load_texts(texts: dict[str, str]) -> Definitions:
    """Ruby DSL texts -> one Definitions, through the real reader (chosen by extension)."""
    defs = Definitions()
    for path, text in texts.items():
        defs.extend(load_text(path, text))
    return defs


@dataclass
class DefinitionFigures:
    """What was measured for one definition set; times in seconds."""

    label: str
    vertices: int = 0
    edges: int = 0
    execution_vertices: int = 0
    jobs: int = 0
    expected_jobs: int = 0
    load: float = 0.0
    validate: float = 0.0
    instantiate: float = 0.0
    graph_build: float = 0.0
    dfs: float = 0.0
    networkx_build: float = 0.0
    networkx: float = 0.0
    problems: list[str] = field(default_factory=list)  # validate's findings (expected: none)
    same_as_generated: bool = True  # the loaded model has the generated shape
    dfs_cycle: str | None = None
    networkx_cycle: str | None = None

    @property
    def total(self) -> float:
        return self.load + self.validate + self.instantiate

    @property
    def validate_vs_dfs(self) -> float:
        """validate against the cheapest cycle check from the same Definitions: build the
        adjacency, then DFS. (The DFS alone is shown too; see docs/performance.md.)"""
        return _ratio(self.validate, self.graph_build + self.dfs)

    @property
    def validate_vs_networkx(self) -> float:
        return _ratio(self.validate, self.networkx)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; a step too quick for the clock counts as 1 ns."""
    return numerator / max(denominator, 1e-9)


def shape(defs: Definitions) -> list[tuple[str, list[tuple[str, int]]]]:
    """Per root: name and kind counts, to compare a loaded model with the generated one."""
    return [(root.name, sorted(generate.kind_counts(root).items())) for root in defs.roots]


def measure_definitions(label: str, model: Definitions, root_name: str, expected_jobs: int,
                        repeat: int) -> DefinitionFigures:
    """`repeat` rounds, each running every step once in turn (so a disturbance of the machine
    hits all steps alike, not one figure); each figure is its step's best round."""
    figures = DefinitionFigures(label, expected_jobs=expected_jobs)
    texts = generate.to_ruby(model)
    expected_shape = shape(model)
    del model  # the caller holds no other reference: not one more tree for the collector to walk
    times = BestTimes()
    for _ in range(repeat):
        _measure_round(figures, texts, expected_shape, root_name, times)
    for step, seconds in times.best.items():
        setattr(figures, step, seconds)
    return figures


def _measure_round(figures: DefinitionFigures, texts: dict[str, str], expected_shape: list,
                   root_name: str, times: BestTimes) -> None:
    """One round; what it builds is dropped on return, before the next round starts."""
    defs = times.run("load", lambda: load_texts(texts))
    figures.same_as_generated = shape(defs) == expected_shape
    figures.problems = [str(p) for p in times.run("validate", lambda: validate(defs))]
    execution = times.run("instantiate", lambda: instantiate(defs, root_name))
    figures.execution_vertices = len(execution.vertices)
    figures.jobs = len(execution.jobs())
    del execution

    graph = times.run("graph_build", lambda: build_cycle_graph(defs))
    figures.vertices, figures.edges = len(graph.nodes), graph.edge_count
    cycle = times.run("dfs", lambda: dfs_find_cycle(graph.adjacency))
    figures.dfs_cycle = graph.describe(cycle) if cycle else None
    digraph = times.run("networkx_build", lambda: networkx_graph(graph))
    cycle = times.run("networkx", lambda: networkx_find_cycle(digraph))
    figures.networkx_cycle = graph.describe(cycle) if cycle else None


@dataclass
class Scaling:
    """Validate time at growing sizes of the big jobnet (directly built models)."""

    sizes: list[int]
    seconds: list[float]

    @property
    def slope(self) -> float:
        """log-log slope between the smallest and the largest size: 1.0 is linear."""
        return (math.log(_ratio(self.seconds[-1], self.seconds[0]))
                / math.log(self.sizes[-1] / self.sizes[0]))


def measure_scaling(jobs: int, repeat: int) -> Scaling:
    sizes = [jobs // 4, jobs // 2, jobs]
    return Scaling(sizes, [_best_validate(generate.big_jobnet(size), repeat) for size in sizes])


def _best_validate(defs: Definitions, repeat: int) -> float:
    times = BestTimes()
    for _ in range(repeat):
        times.run("validate", lambda: validate(defs))
    return times.best["validate"]


@dataclass
class StoreFigures:
    """A job-sized execution instantiated and stored in a fresh SQLite file, in wall seconds
    (storing waits on the disk, so CPU time would hide a commit-per-row regression); the CPU
    seconds of the same run are kept beside them. Each run is timed as a whole (instantiate,
    then create_execution and commit), so `total` is one run's time, not a sum of two bests."""

    jobs: int
    instantiate: float
    store: float
    total: float
    total_cpu: float


def measure_store(jobs: int, repeat: int) -> StoreFigures:
    defs = generate.big_jobnet(jobs)
    best: StoreFigures | None = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="tengine-bench-") as directory:
            engine = engine_for(f"sqlite:///{directory}/bench.db")  # schema made here, untimed
            try:
                gc.collect()
                cpu_started, started = time.process_time(), time.perf_counter()
                execution = instantiate(defs, generate.BIG_ROOT)
                instantiated = time.perf_counter()
                with write_transaction(engine) as conn:
                    create_execution(conn, execution)
                stored, cpu_stored = time.perf_counter(), time.process_time()
            finally:
                engine.dispose()
        run = StoreFigures(jobs, instantiated - started, stored - instantiated, stored - started,
                           cpu_stored - cpu_started)
        if best is None or run.total < best.total:
            best = run
    assert best is not None
    return best


# -- goals -----------------------------------------------------------------------------------------


@dataclass
class Goal:
    name: str
    measured: str
    target: str
    met: bool | None  # None: shown, not judged (--quick)


def judge(big: DefinitionFigures, asakusa: DefinitionFigures, scaling: Scaling,
          store: StoreFigures, *, timing: bool) -> list[Goal]:
    """Every goal with its measured value. Correctness goals are always judged; timing goals
    only when `timing` (full sizes)."""
    goals: list[Goal] = []
    for figures in (big, asakusa):
        name = figures.label
        goals.append(Goal(f"{name}: loaded model has the generated shape",
                          "yes" if figures.same_as_generated else "no", "yes",
                          figures.same_as_generated))
        goals.append(Goal(f"{name}: validate finds no problem", str(len(figures.problems)), "0",
                          not figures.problems))
        goals.append(Goal(f"{name}: no cycle for DFS nor networkx",
                          figures.dfs_cycle or figures.networkx_cycle or "none", "none",
                          figures.dfs_cycle is None and figures.networkx_cycle is None))
        goals.append(Goal(f"{name}: jobs in the execution", str(figures.jobs),
                          str(figures.expected_jobs), figures.jobs == figures.expected_jobs))

    def timed(name: str, measured: float, limit: float, fmt: str) -> None:
        goals.append(Goal(name, fmt.format(measured), "<= " + fmt.format(limit),
                          measured <= limit if timing else None))

    timed(f"{big.label}: validate / (graph build + bare DFS)", big.validate_vs_dfs,
          VALIDATE_VS_DFS_MAX, "{:.2f}x")
    timed(f"{big.label}: validate / networkx find_cycle", big.validate_vs_networkx,
          VALIDATE_VS_NETWORKX_MAX, "{:.2f}x")
    timed(f"validate scaling {scaling.sizes[0]:,} -> {scaling.sizes[-1]:,} jobs (log-log slope)",
          scaling.slope, LINEAR_SLOPE_MAX, "{:.2f}")
    timed(f"{asakusa.label}: load + validate + instantiate", asakusa.total, ASAKUSA_TOTAL_MAX,
          "{:.3f} s")
    timed(f"instantiate + store a {store.jobs:,}-job execution (SQLite, wall)", store.total,
          STORE_10K_MAX, "{:.3f} s")
    return goals


# -- output ----------------------------------------------------------------------------------------


def _load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def pipeline_table(rows: list[DefinitionFigures], repeat: int) -> Table:
    table = Table(title=f"Load, validate, instantiate: best of {repeat} round(s), CPU ms")
    for column in ("definition", "template vertices", "to/expansion edges", "execution vertices",
                   "load (Ruby text)", "validate", "instantiate", "sum"):
        table.add_column(column, justify="left" if column == "definition" else "right")
    for f in rows:
        table.add_row(f.label, f"{f.vertices:,}", f"{f.edges:,}", f"{f.execution_vertices:,}",
                      _ms(f.load), _ms(f.validate), _ms(f.instantiate), _ms(f.total))
    return table


def baseline_table(rows: list[DefinitionFigures], repeat: int) -> Table:
    table = Table(title=f"validate against cycle checks over the same graph: best of {repeat} "
                        f"round(s), CPU ms; each baseline's graph building shown apart")
    for column in ("definition", "validate", "graph build", "DFS", "validate / (build+DFS)",
                   "validate / DFS", "nx build", "nx find_cycle", "validate / find_cycle"):
        table.add_column(column, justify="left" if column == "definition" else "right")
    for f in rows:
        table.add_row(f.label, _ms(f.validate), _ms(f.graph_build), _ms(f.dfs),
                      f"{f.validate_vs_dfs:.2f}x", f"{_ratio(f.validate, f.dfs):.2f}x",
                      _ms(f.networkx_build), _ms(f.networkx), f"{f.validate_vs_networkx:.2f}x")
    return table


def scaling_table(scaling: Scaling) -> Table:
    table = Table(title=f"validate scaling (log-log slope {scaling.slope:.2f}; 1.00 is linear)")
    for column in ("jobs", "validate CPU ms", "us per job"):
        table.add_column(column, justify="right")
    for size, seconds in zip(scaling.sizes, scaling.seconds, strict=True):
        table.add_row(f"{size:,}", _ms(seconds), f"{seconds / size * 1e6:.2f}")
    return table


def goals_table(goals: list[Goal]) -> Table:
    table = Table(title="Goals")
    for column in ("goal", "measured", "target", "result"):
        table.add_column(column)
    for goal in goals:
        result = {True: "[green]met[/]", False: "[red]MISSED[/]",
                  None: "[yellow]not judged (--quick)[/]"}[goal.met]
        table.add_row(goal.name, goal.measured, goal.target, result)
    return table


def profile_validate(defs: Definitions, console: Console, lines: int = 25) -> None:
    """cProfile of one validate run of loaded definitions: the functions that hold the time
    (own time first)."""
    profiler = cProfile.Profile()
    profiler.runcall(validate, defs)
    stats = pstats.Stats(profiler, stream=console.file)
    stats.sort_stats("tottime").print_stats(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per figure, the best is kept (default 5; 1 with --quick)")
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"jobs in the big definition (default {FULL_JOBS:,}; "
                             f"{QUICK_JOBS:,} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one run, timing goals not judged (for tests)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one validate of the big definition")
    args = parser.parse_args(argv)
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    args.jobs = args.jobs if args.jobs is not None else (QUICK_JOBS if args.quick else FULL_JOBS)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.jobs < 12:
        parser.error(f"--jobs must be at least 12 (the scaling series runs at a quarter of it), "
                     f"got {args.jobs}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
                  f"networkx {nx.__version__}; big definition: {args.jobs:,} jobs; "
                  f"repeat {args.repeat}; {_load_average()} at start")

    big = measure_definitions(f"big ({args.jobs:,} jobs)", generate.big_jobnet(args.jobs),
                              generate.BIG_ROOT, args.jobs, args.repeat)
    asakusa = measure_definitions("asakusa (6 roots)", generate.asakusa(),
                                  generate.ASAKUSA_ROOT, 5 * 58 + 2, args.repeat)
    scaling = measure_scaling(args.jobs, args.repeat)
    store = measure_store(min(STORE_JOBS, args.jobs), args.repeat)

    console.print(pipeline_table([big, asakusa], args.repeat))
    console.print(baseline_table([big, asakusa], args.repeat))
    console.print(scaling_table(scaling))
    console.print(f"store: a {store.jobs:,}-job execution, best of {args.repeat}, wall time: "
                  f"instantiate {_ms(store.instantiate)} ms + create_execution and commit "
                  f"{_ms(store.store)} ms = {_ms(store.total)} ms ({_ms(store.total_cpu)} CPU ms; "
                  f"fresh SQLite file, schema made beforehand)")
    goals = judge(big, asakusa, scaling, store, timing=not args.quick)
    console.print(goals_table(goals))
    console.print(f"{_load_average()} at the end (other processes running make the figures "
                  f"less reliable; CPU time is disturbed less than wall time)")
    for figures in (big, asakusa):
        for line in figures.problems[:10]:
            console.print(f"{figures.label}: unexpected problem: {line}", markup=False)
    if args.profile:
        profile_validate(load_texts(generate.to_ruby(generate.big_jobnet(args.jobs))), console)

    missed = [goal for goal in goals if goal.met is False]
    for goal in missed:
        console.print(f"MISSED: {goal.name}: measured {goal.measured}, target {goal.target}",
                      markup=False)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
