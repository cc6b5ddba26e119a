"""Judge jobnet definitions: every reason a definition cannot run, found in one pass.

The readers record what the author wrote, defects included (nodes.py); this module is the one
place that judges it, so every format gets the same codes and messages. Each problem names the
jobnet it concerns by its name path and says what to change. The checks themselves are in
checks.py (with the loop search of loops.py and the wording of messages.py); here are the
entry points: `validate`, the resource-name check, and which roots may run given the problems.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .checks import Checker
from .messages import display_name
from .nodes import CONTAINERS, EXPANSION, Definitions, Node
from .problems import ERROR, Problem, problem

if TYPE_CHECKING:
    from ..resources import Resources

__all__ = ["check_resource_names", "errors", "runnable_roots", "validate"]

# A node and its parent's entry, up to the root's (None): a path not built until it is needed.
_Entry = tuple[Node, Any]


def validate(defs: Definitions, resources: Resources | None = None) -> list[Problem]:
    """The readers' problems plus everything wrong with `defs`, sorted by (file, line, code).
    Given `resources`, server and credential names they do not define are problems too."""
    found = Checker(defs).run()
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
    stack: list[tuple[Node, _Entry | None]] = [(root, None) for root in reversed(defs.roots)]
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


def _chain_path(node: Node, parent: _Entry | None) -> str:
    parts = [display_name(node)]
    while parent is not None:
        node, parent = parent
        parts.append(display_name(node))
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
        root_name: object = root.name  # a bad name is reported by check_name
        if not isinstance(root_name, str):
            continue
        for node in _descendants(root):
            if node.kind == EXPANSION and isinstance(node.name, str):
                expanded_by.setdefault(node.name, set()).add(root_name)
    queue = deque(tainted)
    while queue:
        for expander in expanded_by.get(queue.popleft(), ()):
            if expander not in tainted:
                tainted.add(expander)
                queue.append(expander)
    return set(names) - tainted


def _sort_key(p: Problem) -> tuple[str, int, str]:
    return (p.file or "", p.line or 0, p.code)


def _descendants(root: Node) -> Iterator[Node]:
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

