"""Generators of big jobnet definitions, for the definitions benchmark (D2) and its tests.

Each generator builds the template model straight on nodes.py; `to_ruby` writes any such model as
Tengine Ruby DSL text, so the benchmark can also measure loading the way a Tengine user's files
arrive (through the real reader). Everything is deterministic: the same arguments give the same
model and byte-identical text (node ids aside, which are never written).

- `big_jobnet`: one root jobnet holding groups of sub-jobnets of a few hundred jobs each; every
  level is a boot_jobs DAG with fan-out and fan-in `to` edges; some sub-jobnets and the root have
  a finally block. The job count is exact.
- `asakusa`: the shape of Tengine's acceptance definition `01_01_19_large_and_complicated_jobnet_
  asakusa` (tengine-facts.md section 10): `expand_root_jobnet.001` expanding five
  `large_and_complicated_root_jobnet.00N` roots in a diamond, each root with 26 job,
  32 hadoop_job_run (one hadoop_job each), 38 sub-jobnets and 5 finally.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tengine_min.model import nodes
from tengine_min.model.nodes import Definitions, Node, Sequencing, Where, set_options

SERVER = "test_server1"
CREDENTIAL = "test_credential1"
# The test script of Tengine's acceptance suite: sleep N seconds, log the name.
SCRIPT = "$HOME/tengine_job_test.sh {sleep} {name}"

BIG_ROOT = "big_root_jobnet.001"
BIG_FILE = "big_root_jobnet.rb"
ASAKUSA_ROOT = "expand_root_jobnet.001"
ASAKUSA_PARTS = tuple(f"large_and_complicated_root_jobnet.{i:03d}" for i in range(1, 6))
# Jobs in the root finally of the big jobnet, and in the finally of every fifth sub-jobnet.
FINALLY_JOBS = 2
FINALLY_EVERY = 5


# -- building nodes ------------------------------------------------------------------------------


def _node(kind: str, name: str, file: str, *, script: str | None = None,
          options: dict[str, Any] | None = None) -> Node:
    where = Where(file)
    node = Node(kind, name, where, script=script)
    set_options(node, options or {}, where)
    return node


def _boot(node: Node, names: list[str]) -> None:
    node.sequencing.append(Sequencing("boot_jobs", node.where, list(names)))


def _auto(node: Node) -> None:
    node.sequencing.append(Sequencing("auto_sequence", node.where))


def _job(name: str, file: str, sleep: int = 0, **options: Any) -> Node:
    return _node(nodes.JOB, name, file, script=SCRIPT.format(sleep=sleep, name=name),
                 options=options)


def _finally(file: str, job_names: Iterable[str]) -> Node:
    """A finally block running its jobs in the order written."""
    block = _node(nodes.FINALLY, nodes.FINALLY, file)
    _auto(block)
    for name in job_names:
        block.add(_job(name, file))
    return block


def layered_dag(names: list[str], rng: random.Random,
                max_width: int = 6) -> tuple[list[str], dict[str, list[str]]]:
    """(boot names, `to` lists) forming a DAG over `names`: the names are cut, in order, into
    layers of 1..max_width; the first layer is booted; every later name gets one predecessor in
    the layer before (so every name runs), about half the names of a layer fan out to one more
    name of the next layer (fan-in there), and about one name in ten gets a skip edge from two
    layers up. Edges only go to later layers, so there is no cycle."""
    layers: list[list[str]] = []
    at = 0
    while at < len(names):
        width = rng.randint(1, max_width)
        layers.append(names[at:at + width])
        at += width
    to: dict[str, list[str]] = {name: [] for name in names}

    def link(origin: str, target: str) -> None:
        if target not in to[origin]:
            to[origin].append(target)

    for i in range(1, len(layers)):
        previous, layer = layers[i - 1], layers[i]
        for name in layer:
            link(rng.choice(previous), name)
            if i >= 2 and rng.random() < 0.1:
                link(rng.choice(layers[i - 2]), name)
        for name in previous:
            if rng.random() < 0.5:
                link(name, rng.choice(layer))
    return (layers[0] if layers else []), to


def _sequence_by_dag(container: Node, children: list[Node], rng: random.Random,
                     max_width: int) -> None:
    """Add `children` to `container` with boot_jobs and `to` edges from layered_dag."""
    boot, to = layered_dag([c.name for c in children], rng, max_width)
    _boot(container, boot)
    for child in children:
        if to[child.name]:
            set_options(child, {"to": to[child.name]}, child.where)
        container.add(child)


def _split(total: int, parts: int) -> list[int]:
    """`total` cut into `parts` sizes that differ by at most one."""
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def big_jobnet(jobs: int = 100_000, *, per_jobnet: int = 250, jobnets_per_group: int = 20,
               seed: int = 2011, name: str = BIG_ROOT, file: str = BIG_FILE) -> Definitions:
    """One root jobnet with exactly `jobs` jobs: a root finally of 2 jobs, and sub-jobnets of
    about `per_jobnet` jobs each (every fifth with a finally of 2 of its jobs, every tenth with
    its own killing signals), grouped `jobnets_per_group` to a group jobnet. Root, groups and
    sub-jobnets each order their children with boot_jobs and a layered `to` DAG."""
    if jobs < FINALLY_JOBS + 1:
        raise ValueError(f"big_jobnet needs at least {FINALLY_JOBS + 1} jobs, got {jobs}")
    if per_jobnet < FINALLY_JOBS + 2 or jobnets_per_group < 1:
        raise ValueError(f"per_jobnet must be >= {FINALLY_JOBS + 2} and jobnets_per_group >= 1, "
                         f"got {per_jobnet} and {jobnets_per_group}")
    rng = random.Random(seed)
    job_numbers = iter(range(1, jobs + 1))

    def next_job_name() -> str:
        return f"job_{next(job_numbers):06d}"

    sub_jobs = jobs - FINALLY_JOBS
    sub_count = -(-sub_jobs // per_jobnet)
    subs: list[Node] = []
    for index, size in enumerate(_split(sub_jobs, sub_count), start=1):
        options: dict[str, Any] = {}
        if index % 10 == 0:
            options = {"killing_signals": ["TERM", "KILL"], "killing_signal_interval": 10}
        sub = _node(nodes.JOBNET, f"jobnet_{index:05d}", file, options=options)
        with_finally = index % FINALLY_EVERY == 0 and size >= FINALLY_JOBS + 1
        body = size - FINALLY_JOBS if with_finally else size
        _sequence_by_dag(sub, [_job(next_job_name(), file) for _ in range(body)], rng, 6)
        if with_finally:
            sub.add(_finally(file, [next_job_name() for _ in range(FINALLY_JOBS)]))
        subs.append(sub)

    groups: list[Node] = []
    for start in range(0, len(subs), jobnets_per_group):
        group = _node(nodes.JOBNET, f"group_{len(groups) + 1:04d}", file)
        _sequence_by_dag(group, subs[start:start + jobnets_per_group], rng, 4)
        groups.append(group)

    root = _node(nodes.JOBNET, name, file,
                 options={"server_name": SERVER, "credential_name": CREDENTIAL})
    _sequence_by_dag(root, groups, rng, 3)
    root.add(_finally(file, [next_job_name() for _ in range(FINALLY_JOBS)]))
    return Definitions(roots=[root], files=[file])


# -- the Asakusa-like set ------------------------------------------------------------------------


class _Scripts:
    """Scripts numbered in writing order, as the generated Asakusa files number them."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return SCRIPT.format(sleep=2, name=f"job_function_test_{self.count:03d}")


# The STAGE_GRAPH of every Asakusa batch: hadoop stages in writing order with their `to` edges.
_STAGES = (("stage0001", ["stage0003", "stage0004", "stage0006", "stage0007"]),
           ("stage0002", ["stage0003", "stage0004"]),
           ("stage0003", ["stage0004"]),
           ("stage0004", ["stage0005", "stage0007"]),
           ("stage0007", []), ("stage0006", []), ("stage0005", []))


def _hadoop_run(name: str, script: str, file: str, hadoop_name: str,
                to: list[str] | None = None) -> Node:
    run = _node(nodes.HADOOP_JOB_RUN, name, file, script=script,
                options={"to": to} if to else None)
    run.add(_node(nodes.HADOOP_JOB, hadoop_name, file))
    return run


def _jobnet(name: str, file: str, children: list[Node], *, boot: list[str] | None = None,
            **options: Any) -> Node:
    """A jobnet in auto_sequence, or with boot_jobs when `boot` is given."""
    jobnet = _node(nodes.JOBNET, name, file, options=options)
    if boot is None:
        _auto(jobnet)
    else:
        _boot(jobnet, boot)
    for child in children:
        jobnet.add(child)
    return jobnet


def _bulkloader(file: str, scripts: _Scripts, count: int) -> Node:
    jobs = [_job_with_script(f"bulkloader.{suffix}", scripts.next(), file)
            for suffix in ("nacssply", "nacscommon")[:count]]
    return _jobnet("bulkloader", file, jobs)


def _job_with_script(name: str, script: str, file: str) -> Node:
    return _node(nodes.JOB, name, file, script=script)


def _marge_and_separate(name: str, file: str, scripts: _Scripts) -> Node:
    """One SplyMargeAndSeparate batch: 9 jobnets, 6 jobs, 8 hadoop_job_runs, 1 finally."""
    stages = [_hadoop_run(stage, scripts.next(), file, f"SplyImp.SplyMargeAndSeparate.{stage}",
                          to)
              for stage, to in _STAGES]
    epilogue = _hadoop_run("epilogue.bulkloader", scripts.next(), file,
                           "SplyImp.SplyMargeAndSeparate.epilogue.bulkloader")
    final = _node(nodes.FINALLY, nodes.FINALLY, file)
    _auto(final)
    final.add(_jobnet("FINALIZE", file, [_bulkloader(file, scripts, 1)], boot=["bulkloader"]))
    return _jobnet(name, file, [
        _job_with_script("SETUP", scripts.next(), file),
        _jobnet("IMPORT", file, [_bulkloader(file, scripts, 2)], boot=["bulkloader"]),
        _jobnet("STAGE_GRAPH", file, stages, boot=["stage0001", "stage0002"]),
        _jobnet("EPILOGUE", file, [epilogue], boot=["epilogue.bulkloader"]),
        _jobnet("EXPORT", file, [_bulkloader(file, scripts, 1)], boot=["bulkloader"]),
        _job_with_script("CLEANUP", scripts.next(), file),
        final,
    ])


def _large_root(name: str, file: str) -> Node:
    """One large_and_complicated_root_jobnet: 26 job, 32 hadoop_job_run, 38 jobnets, 5 finally."""
    scripts = _Scripts()
    check = _jobnet("SplyDataFormatCheck", file,
                    [_job_with_script("nacs_ap_batch.sply", scripts.next(), file)],
                    boot=["nacs_ap_batch.sply"])
    final = _node(nodes.FINALLY, nodes.FINALLY, file)
    _boot(final, ["nacs_ap_batch"])
    final.add(_jobnet("nacs_ap_batch", file,
                      [_job_with_script("nacs_ap_batch.nacssply", scripts.next(), file)]))
    batches = [_marge_and_separate(f"SplyMargeAndSeparate{suffix}", file, scripts)
               for suffix in ("", "2", "3", "4")]
    return _jobnet(name, file, [check, final, *batches],
                   server_name=SERVER, credential_name=CREDENTIAL)


def _expand_root(file: str) -> Node:
    """expand_root_jobnet.001: 2 hadoop stages, then the five roots in a diamond
    001 -> (002, 003) -> 004 -> 005."""
    first, second, third, fourth, fifth = ASAKUSA_PARTS
    scripts = _Scripts()
    stages = [_hadoop_run(stage, scripts.next(), file, f"SplyImp.SplyMargeAndSeparate.{stage}",
                          [first])
              for stage in ("stage0001", "stage0002")]
    edges = {first: [second, third], second: [fourth], third: [fourth], fourth: [fifth],
             fifth: []}
    expansions = [_node(nodes.EXPANSION, part, file,
                        options={"to": edges[part]} if edges[part] else None)
                  for part in ASAKUSA_PARTS]
    graph = _jobnet("STAGE_GRAPH", file, [*stages, *expansions],
                    boot=["stage0001", "stage0002"])
    return _jobnet(ASAKUSA_ROOT, file, [graph], server_name=SERVER, credential_name=CREDENTIAL)


def asakusa() -> Definitions:
    """The six roots of the Asakusa-like set, one file each, the expanding root first."""
    files = [f"{ASAKUSA_ROOT}.rb", *(f"{part}.rb" for part in ASAKUSA_PARTS)]
    parts = zip(ASAKUSA_PARTS, files[1:], strict=True)
    roots = [_expand_root(files[0]), *(_large_root(part, file) for part, file in parts)]
    return Definitions(roots=roots, files=files)


# -- shape -----------------------------------------------------------------------------------------


def kind_counts(node: Node) -> Counter[str]:
    """How many nodes of each kind are below `node` (the node itself not counted)."""
    counts: Counter[str] = Counter()
    for descendant in node.walk():
        if descendant is not node:
            counts[descendant.kind] += 1
    return counts


# -- writing Tengine Ruby DSL ----------------------------------------------------------------------

RUBY_HEADER = ("# -*- coding: utf-8 -*-", "require 'tengine_job'", "")
_INDENT = "  "


class RubyWriteError(ValueError):
    """The model holds something Ruby DSL text cannot say (or that this writer does not)."""


def to_ruby(defs: Definitions) -> dict[str, str]:
    """Tengine Ruby DSL text for `defs`, one text per file named by the roots' `where.file`, in
    the order the roots come. Raises RubyWriteError for what cannot be written."""
    files: dict[str, list[str]] = {}
    for root in defs.roots:
        lines = files.setdefault(root.where.file, list(RUBY_HEADER))
        _write_node(root, 0, lines)
        lines.append("")
    return {file: "\n".join(lines) for file, lines in files.items()}


def _write_node(node: Node, depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    if node.unknown_options:
        keys = ", ".join(u.key for u in node.unknown_options)
        raise RubyWriteError(f"{node.path}: unknown options ({keys}) keep no value to write")
    if node.kind == nodes.FINALLY:
        head = "finally"
    else:
        arguments = [_ruby_value(node.name)]
        if node.kind in (nodes.JOBNET, nodes.JOB, nodes.HADOOP_JOB_RUN):
            if node.description is not None:
                arguments.append(_ruby_value(node.description))
        elif node.description is not None:  # expansion: only as an option
            arguments.append(f":description => {_ruby_value(node.description)}")
        if node.kind in (nodes.JOB, nodes.HADOOP_JOB_RUN):
            arguments.append(_ruby_value(node.script or ""))
        if node.to:
            to = node.to[0] if len(node.to) == 1 else node.to
            arguments.append(f":to => {_ruby_value(to)}")
        arguments += [f":{key} => {_ruby_value(value)}" for key, value in node.options.items()]
        head = f"{node.kind}({', '.join(arguments)})"
    if not node.children and not node.sequencing and node.kind not in (nodes.JOBNET,
                                                                        nodes.FINALLY):
        lines.append(pad + head)
        return
    lines.append(f"{pad}{head} do")
    inner = pad + _INDENT
    for declaration in node.sequencing:
        if declaration.kind == "auto_sequence":
            lines.append(inner + "auto_sequence")
        else:
            names = ", ".join(_ruby_value(n) for n in declaration.names)
            lines.append(f"{inner}boot_jobs({names})")
    for child in node.children:
        _write_node(child, depth + 1, lines)
    lines.append(pad + "end")


def _ruby_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("#{", "\\#{")
        return f'"{escaped}"'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_ruby_value(v) for v in value) + "]"
    raise RubyWriteError(f"cannot write a {type(value).__name__} ({value!r}) as a Ruby value")
