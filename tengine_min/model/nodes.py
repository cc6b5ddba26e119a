"""The jobnet template model: what a definition says, before anything runs.

All three readers (Python DSL, YAML, Tengine's Ruby DSL) build these same nodes. A reader records
what the author wrote, faithfully, including what is wrong with it (a second `finally`, an unknown
option, a `hadoop_job` in the wrong place); the validator is the one place that judges it. That way
each rule is written once and every format gets the same messages.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Kinds of named vertex. A root jobnet and a nested one are both "jobnet"; a root is one with no
# parent. "finally" is the special sub-jobnet run when its parent reaches End.
JOBNET = "jobnet"
FINALLY = "finally"
JOB = "job"
EXPANSION = "expansion"
HADOOP_JOB_RUN = "hadoop_job_run"
HADOOP_JOB = "hadoop_job"
KINDS = (JOBNET, FINALLY, JOB, EXPANSION, HADOOP_JOB_RUN, HADOOP_JOB)
CONTAINERS = (JOBNET, FINALLY, HADOOP_JOB_RUN)

# Option names as Tengine spells them, with their aliases folded onto one canonical key.
OPTION_ALIASES = {
    "instance_name": "server_name",
    "vm_instance_name": "server_name",
    "user_group_credential_name": "credential_name",
    "caption": "description",
    "redirect_to": "to",
}

# Which (canonical) options each kind accepts. Anything else is `unknown_option`.
_COMMON = {"description", "server_name", "credential_name", "killing_signals",
           "killing_signal_interval", "to"}
ALLOWED_OPTIONS: dict[str, frozenset[str]] = {
    JOBNET: frozenset(_COMMON | {"auto_sequence"}),
    HADOOP_JOB_RUN: frozenset(_COMMON | {"auto_sequence"}),
    JOB: frozenset(_COMMON | {"preparation"}),
    EXPANSION: frozenset({"description", "to"}),
    HADOOP_JOB: frozenset({"to"}),
    FINALLY: frozenset(),
}

DEFAULT_KILLING_SIGNALS = ("KILL",)
DEFAULT_KILLING_SIGNAL_INTERVAL = 5


@dataclass(frozen=True)
class Where:
    """Where something was written: file and 1-based line (line 0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Sequencing:
    """One `boot_jobs(...)` or `auto_sequence` declaration inside a jobnet block."""

    kind: str  # "boot_jobs" | "auto_sequence"
    where: Where
    names: list[str] = field(default_factory=list)


@dataclass
class UnknownOption:
    key: str
    where: Where


_id_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_id_process = os.urandom(5).hex()


def new_id() -> str:
    """A 24-hex id shaped like Tengine's Mongo ObjectIds (time, process, counter): unique and
    roughly ordered, so ids in logs, the console and MM_* variables look as a Tengine user
    expects."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_id_process}{next(_id_counter) & 0xFFFFFF:06x}"


@dataclass(eq=False)
class Node:
    """A named vertex of a template: a jobnet (root or nested), finally, job, expansion,
    hadoop_job_run or hadoop_job. `children` keeps declaration order, finally blocks included."""

    kind: str
    name: str
    where: Where
    description: str | None = None
    script: str | None = None  # job and hadoop_job_run
    to: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # canonical keys, minus to/description
    unknown_options: list[UnknownOption] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    sequencing: list[Sequencing] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    id: str = field(default_factory=new_id)

    # -- structure ---------------------------------------------------------------------------

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def root(self) -> Node:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    @property
    def label(self) -> str:
        """What the description shows: the description, else the name (Tengine's default)."""
        return self.description if self.description is not None else self.name

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children.append(child)
        return child

    @property
    def finally_blocks(self) -> list[Node]:
        return [c for c in self.children if c.kind == FINALLY]

    @property
    def vertices(self) -> list[Node]:
        """The children that take part in the edge graph (everything but finally)."""
        return [c for c in self.children if c.kind != FINALLY]

    @property
    def path(self) -> str:
        """`/root/child/job`, the name path Tengine shows and exports."""
        parts = []
        node: Node | None = self
        while node is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def walk(self) -> Iterator[Node]:
        """This node and every descendant, depth first, in declaration order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    # -- options with inheritance ------------------------------------------------------------

    def inherited(self, key: str) -> Any:
        """An option from this node or the nearest ancestor that sets it (server, credential)."""
        node: Node | None = self
        while node is not None:
            if key in node.options:
                return node.options[key]
            node = node.parent
        return None

    @property
    def server_name(self) -> str | None:
        return self.inherited("server_name")

    @property
    def credential_name(self) -> str | None:
        return self.inherited("credential_name")

    @property
    def killing(self) -> tuple[tuple[str, ...], int | float]:
        """(signals, interval). Tengine honours an interval only on the vertex that also sets
        the signals; otherwise the nearest ancestor's pair applies."""
        node: Node | None = self
        while node is not None:
            if "killing_signals" in node.options:
                return (tuple(node.options["killing_signals"]),
                        node.options.get("killing_signal_interval",
                                         DEFAULT_KILLING_SIGNAL_INTERVAL))
            node = node.parent
        return DEFAULT_KILLING_SIGNALS, DEFAULT_KILLING_SIGNAL_INTERVAL

    # -- auto_sequence -----------------------------------------------------------------------

    @property
    def boot_job_names(self) -> list[str] | None:
        """The names given to boot_jobs (the last declaration wins, as in Tengine), or None."""
        boots = [s for s in self.sequencing if s.kind == "boot_jobs"]
        return boots[-1].names if boots else None

    @property
    def auto_sequence(self) -> bool:
        """True when the children run in declaration order. Tengine: boot_jobs turns it off;
        `auto_sequence` (call or option, here or inherited from an ancestor) or the absence of
        boot_jobs turns it on."""
        declared = any(s.kind == "auto_sequence" for s in self.sequencing)
        if declared or self.options.get("auto_sequence"):
            return True
        return not self.boot_job_names


def set_options(node: Node, raw: dict[str, Any], where: Where) -> None:
    """Fold a reader's raw option dict onto `node`: aliases to canonical keys, `to` to a list,
    description apart, unknown keys kept for the validator to report."""
    allowed = ALLOWED_OPTIONS[node.kind]
    for key, value in raw.items():
        key = OPTION_ALIASES.get(key, key)
        if key not in allowed:
            node.unknown_options.append(UnknownOption(key, where))
        elif key == "to":
            node.to.extend([value] if isinstance(value, str) else [str(v) for v in value])
        elif key == "description":
            node.description = None if value is None else str(value)
        elif key == "killing_signals":
            node.options[key] = [value] if isinstance(value, str) else [str(v) for v in value]
        else:
            node.options[key] = value


@dataclass
class Definitions:
    """Everything read from a set of files: the root jobnets in load order (duplicates kept, so
    the validator can name both places) and the problems the readers found on the way."""

    roots: list[Node] = field(default_factory=list)
    problems: list = field(default_factory=list)  # list[Problem]
    files: list[str] = field(default_factory=list)

    def extend(self, other: Definitions) -> None:
        self.roots.extend(other.roots)
        self.problems.extend(other.problems)
        self.files.extend(other.files)

    def root(self, name: str) -> Node | None:
        """The first root jobnet of that name."""
        for node in self.roots:
            if node.name == name:
                return node
        return None
