"""The benchmark's generators make valid definitions of the promised shape, its baselines find
cycles, its goal judging is right, and the script runs end to end at a tiny size."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

# `benchmarks` lives beside `tengine_min`, outside the package: pytest's pythonpath has the root.
from benchmarks import bench_definitions as bench
from benchmarks import generate
from tengine_min.model import nodes
from tengine_min.model.instantiate import instantiate
from tengine_min.model.nodes import Definitions, Node, Where
from tengine_min.model.ruby import read_ruby
from tengine_min.model.validator import validate

ROOT = Path(__file__).resolve().parents[1]


def small_big_jobnet(seed: int = 2011) -> Definitions:
    return generate.big_jobnet(1_000, per_jobnet=50, jobnets_per_group=4, seed=seed)


def containers(defs: Definitions) -> list[Node]:
    return [n for root in defs.roots for n in root.walk() if n.kind in nodes.CONTAINERS]


def canonical(node: Node) -> tuple:
    """Everything a definition says about a node and below, ids and lines left out."""
    return (node.kind, node.name, node.description, node.script, tuple(node.to),
            sorted(node.options.items(), key=lambda item: item[0]),
            [(s.kind, tuple(s.names)) for s in node.sequencing],
            [canonical(child) for child in node.children])


# -- the big jobnet --------------------------------------------------------------------------------


def test_big_jobnet_has_the_promised_shape():
    defs = small_big_jobnet()
    assert [r.name for r in defs.roots] == [generate.BIG_ROOT]
    root = defs.roots[0]
    counts = generate.kind_counts(root)
    assert counts[nodes.JOB] == 1_000
    groups = [c for c in root.children if c.kind == nodes.JOBNET]
    subs = [s for g in groups for s in g.children if s.kind == nodes.JOBNET]
    assert len(subs) == 20 and len(groups) == 5  # ceil(998 / 50) sub-jobnets, 4 to a group
    assert counts[nodes.JOBNET] == len(subs) + len(groups)
    # a finally on the root and on every fifth sub-jobnet
    assert [c.kind for c in root.children].count(nodes.FINALLY) == 1
    assert [i for i, s in enumerate(subs, 1) if s.finally_blocks] == [5, 10, 15, 20]
    # boot_jobs DAGs with fan-out and fan-in, not chains
    for jobnet in [root, *groups, *subs]:
        assert jobnet.boot_job_names and not jobnet.auto_sequence
    sub_jobs = [j for s in subs for j in s.vertices]
    assert any(len(j.to) > 1 for j in sub_jobs)
    fan_in = Counter(t for s in subs for j in s.vertices for t in j.to)
    assert max(fan_in.values()) > 1
    assert any(len(g.to) > 1 for g in groups) or any(len(s.to) > 1 for s in subs)


def test_big_jobnet_validates_clean_and_instantiates_every_job():
    defs = small_big_jobnet()
    assert validate(defs) == []
    execution = instantiate(defs, generate.BIG_ROOT)
    assert len(execution.jobs()) == 1_000


def test_big_jobnet_is_deterministic_by_seed():
    assert generate.to_ruby(small_big_jobnet(7)) == generate.to_ruby(small_big_jobnet(7))
    assert generate.to_ruby(small_big_jobnet(7)) != generate.to_ruby(small_big_jobnet(8))


def test_big_jobnet_refuses_sizes_it_cannot_make():
    with pytest.raises(ValueError, match="at least 3 jobs, got 2"):
        generate.big_jobnet(2)
    with pytest.raises(ValueError, match="per_jobnet must be >= 4"):
        generate.big_jobnet(100, per_jobnet=3)


def test_layered_dag_is_acyclic_and_reaches_every_name():
    names = [f"n{i}" for i in range(300)]
    boot, to = generate.layered_dag(names, random.Random(3), max_width=5)
    position = {name: i for i, name in enumerate(names)}
    assert all(position[a] < position[b] for a in names for b in to[a])  # forward only: a DAG
    reached, stack = set(boot), list(boot)
    while stack:
        for target in to[stack.pop()]:
            if target not in reached:
                reached.add(target)
                stack.append(target)
    assert reached == set(names)


# -- the Asakusa-like set --------------------------------------------------------------------------


def test_asakusa_has_the_shape_of_tengines_test_definition():
    defs = generate.asakusa()
    assert [r.name for r in defs.roots] == [generate.ASAKUSA_ROOT, *generate.ASAKUSA_PARTS]
    for part in defs.roots[1:]:
        assert generate.kind_counts(part) == Counter({
            nodes.JOB: 26, nodes.HADOOP_JOB_RUN: 32, nodes.HADOOP_JOB: 32, nodes.JOBNET: 38,
            nodes.FINALLY: 5})
        assert all(len(run.children) == 1 for run in part.walk()
                   if run.kind == nodes.HADOOP_JOB_RUN)
    expand = defs.roots[0]
    assert generate.kind_counts(expand) == Counter({
        nodes.JOBNET: 1, nodes.HADOOP_JOB_RUN: 2, nodes.HADOOP_JOB: 2, nodes.EXPANSION: 5})
    graph = expand.children[0]
    first, second, third, fourth, fifth = generate.ASAKUSA_PARTS
    edges = {v.name: v.to for v in graph.vertices}
    assert edges == {"stage0001": [first], "stage0002": [first], first: [second, third],
                     second: [fourth], third: [fourth], fourth: [fifth], fifth: []}


def test_asakusa_validates_clean_and_instantiates_292_scripts():
    defs = generate.asakusa()
    assert validate(defs) == []
    execution = instantiate(defs, generate.ASAKUSA_ROOT)
    assert len(execution.jobs()) == 5 * 58 + 2
    assert len(execution.vertices) == 1_000


# -- Ruby DSL text through the real reader ---------------------------------------------------------


@pytest.mark.parametrize("make", [small_big_jobnet, generate.asakusa], ids=["big", "asakusa"])
def test_ruby_text_reads_back_into_the_same_definitions(make):
    model = make()
    texts = generate.to_ruby(model)
    assert list(texts) == list(dict.fromkeys(r.where.file for r in model.roots))
    loaded = Definitions()
    for path, text in texts.items():
        assert text.startswith("# -*- coding: utf-8 -*-\nrequire 'tengine_job'\n")
        loaded.extend(read_ruby(path, text))
    assert loaded.problems == []
    assert [canonical(r) for r in loaded.roots] == [canonical(r) for r in model.roots]
    assert validate(loaded) == []


def test_ruby_writer_escapes_strings_and_refuses_what_it_cannot_write():
    root = Node(nodes.JOBNET, "r", Where("w.rb"))
    root.add(Node(nodes.JOB, "j", Where("w.rb"), script='echo "a\\b" #{x}'))
    text = generate.to_ruby(Definitions(roots=[root]))["w.rb"]
    assert 'job("j", "echo \\"a\\\\b\\" \\#{x}")' in text
    loaded = read_ruby("w.rb", text)
    assert loaded.problems == []
    assert loaded.roots[0].children[0].script == 'echo "a\\b" #{x}'

    nodes.set_options(root, {"bogus": 1}, root.where)
    with pytest.raises(generate.RubyWriteError, match="unknown options \\(bogus\\)"):
        generate.to_ruby(Definitions(roots=[root]))


# -- the baselines find what they must -------------------------------------------------------------


def test_baselines_agree_there_is_no_cycle_in_generated_definitions():
    for defs in (small_big_jobnet(), generate.asakusa()):
        graph = bench.build_cycle_graph(defs)
        assert len(graph.nodes) == sum(1 for r in defs.roots for _ in r.walk())
        assert bench.dfs_find_cycle(graph.adjacency) is None
        assert bench.networkx_find_cycle(bench.networkx_graph(graph)) is None


def test_baselines_and_validator_find_an_injected_to_cycle():
    defs = small_big_jobnet()
    sub = next(c for c in containers(defs) if c.name == "jobnet_00003")
    origin = next(j for j in sub.vertices if j.to)
    target = next(j for j in sub.vertices if j.name == origin.to[0])
    target.to.append(origin.name)  # origin -> target -> origin

    graph = bench.build_cycle_graph(defs)
    expected = {origin.path, target.path}
    for cycle in (bench.dfs_find_cycle(graph.adjacency),
                  bench.networkx_find_cycle(bench.networkx_graph(graph))):
        assert cycle is not None and cycle[0] == cycle[-1]
        assert {graph.nodes[i].path for i in cycle} == expected
    assert [p.code for p in validate(defs)] == ["cycle"]


def test_baselines_follow_expansions_between_roots():
    defs = generate.asakusa()
    last = defs.roots[-1]
    back = Node(nodes.EXPANSION, generate.ASAKUSA_ROOT, Where("loop.rb"))
    last.children[0].add(back)  # 005 expands the root that expands 005
    graph = bench.build_cycle_graph(defs)
    cycle = bench.dfs_find_cycle(graph.adjacency)
    assert cycle is not None
    assert {graph.nodes[i].name for i in cycle} == {generate.ASAKUSA_ROOT, last.name}
    assert bench.networkx_find_cycle(bench.networkx_graph(graph)) is not None
    assert "expansion_cycle" in {p.code for p in validate(defs)}


# -- judging the goals (pure logic on made-up figures) ---------------------------------------------


def figures(label: str, **times: float) -> bench.DefinitionFigures:
    made = bench.DefinitionFigures(label, jobs=10, expected_jobs=10, load=0.01, validate=0.1,
                                   instantiate=0.01, graph_build=0.04, dfs=0.01,
                                   networkx_build=0.05, networkx=0.3)
    for name, value in times.items():
        setattr(made, name, value)
    return made


SCALING_LINEAR = bench.Scaling([100, 200, 400], [0.01, 0.02, 0.04])
STORE_FAST = bench.StoreFigures(10_000, 0.05, 0.4, 0.45, 0.3)


def verdicts(goals: list[bench.Goal]) -> dict[str, bool | None]:
    return {goal.name: goal.met for goal in goals}


def test_judge_meets_every_goal_on_good_figures():
    goals = bench.judge(figures("big"), figures("asakusa"), SCALING_LINEAR, STORE_FAST,
                        timing=True)
    assert len(goals) == 13
    assert all(goal.met is True for goal in goals), [g for g in goals if not g.met]


def test_judge_names_each_missed_goal():
    big = figures("big", validate=0.2)  # 0.2 / (0.04 + 0.01) = 4x the bare DFS
    asakusa = figures("asakusa", load=0.6)
    asakusa.problems = ["x.rb:1: error cycle: ..."]
    slow_store = bench.StoreFigures(10_000, 0.1, 1.2, 1.3, 0.9)
    quadratic = bench.Scaling([100, 200, 400], [0.01, 0.04, 0.16])
    result = verdicts(bench.judge(big, asakusa, quadratic, slow_store, timing=True))
    missed = {name for name, met in result.items() if met is False}
    assert missed == {
        "big: validate / (graph build + bare DFS)",
        "asakusa: validate finds no problem",
        "validate scaling 100 -> 400 jobs (log-log slope)",
        "asakusa: load + validate + instantiate",
        "instantiate + store a 10,000-job execution (SQLite, wall)",
    }


def test_judge_without_timing_judges_only_correctness():
    big = figures("big", validate=10.0)
    big.jobs = 9
    result = verdicts(bench.judge(big, figures("asakusa"), SCALING_LINEAR, STORE_FAST,
                                  timing=False))
    assert result["big: jobs in the execution"] is False
    assert result["big: validate / (graph build + bare DFS)"] is None
    assert result["big: validate / networkx find_cycle"] is None


# -- the script, end to end ------------------------------------------------------------------------


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "benchmarks/bench_definitions.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=240, check=False)


def test_script_runs_end_to_end_quickly():
    done = run_script("--quick", "--jobs", "400")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "big (400 jobs)" in out and "asakusa (6 roots)" in out
    assert "validate scaling" in out and "store: a 400-job execution" in out
    assert "not judged (--quick)" in out
    assert "MISSED" not in out


def test_script_refuses_bad_arguments_with_a_clear_message():
    done = run_script("--repeat", "0")
    assert done.returncode == 2
    assert "--repeat must be at least 1, got 0" in done.stderr
