"""Small builders for template trees in tests, straight on nodes.py (no reader involved)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tengine_min.model import nodes
from tengine_min.model.nodes import Definitions, Node, Sequencing, Where, set_options

WHERE = Where("test_defs.py", 1)


def _node(kind: str, name: str, children: tuple[Node, ...], options: dict,
          script: str | None = None, boot: list[str] | None = None) -> Node:
    node = Node(kind, name, WHERE, script=script)
    set_options(node, options, WHERE)
    for child in children:
        node.add(child)
    if boot is not None:
        node.sequencing.append(Sequencing("boot_jobs", WHERE, list(boot)))
    return node


def jobnet(name: str, *children: Node, boot: list[str] | None = None, **options) -> Node:
    return _node(nodes.JOBNET, name, children, options, boot=boot)


def job(name: str, script: str, **options) -> Node:
    return _node(nodes.JOB, name, (), options, script=script)


def expansion(name: str, **options) -> Node:
    return _node(nodes.EXPANSION, name, (), options)


def finally_(*children: Node, boot: list[str] | None = None) -> Node:
    return _node(nodes.FINALLY, "finally", children, {}, boot=boot)


def hadoop_job_run(name: str, script: str, *children: Node, boot: list[str] | None = None,
                   **options) -> Node:
    return _node(nodes.HADOOP_JOB_RUN, name, children, options, script=script, boot=boot)


def hadoop_job(name: str, **options) -> Node:
    return _node(nodes.HADOOP_JOB, name, (), options)


def definitions(*roots: Node) -> Definitions:
    return Definitions(roots=list(roots))


def counter_ids() -> Callable[[], str]:
    """Deterministic 24-hex ids: 000...001, 000...002, ..."""
    counter = itertools.count(1)
    return lambda: f"{next(counter):024x}"
