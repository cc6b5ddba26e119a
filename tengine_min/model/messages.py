"""How problem messages name things: nodes, places in files, lists of names, loops, options.

Shared by the checks so that every problem says these the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .nodes import OPTION_ALIASES, Node

__all__ = ["arrow_chain", "display_name", "join_and", "lines_of", "options_taken", "place",
           "place_from", "quoted_names"]

# Loops longer than this are shown shortened; nobody reads 100,000 names in one message.
_LONGEST_SHOWN_LOOP = 30


def display_name(node: Node) -> str:
    """A node's name as a path shows it; a missing or non-string name is shown as such."""
    name = node.name
    if isinstance(name, str) and name:
        return name
    return f"<unnamed {node.kind}>" if name in (None, "") else f"<{name!r}>"


def place(where: Any) -> str:
    return str(where) if where is not None else "?"


def lines_of(wheres: Iterable[Any]) -> str:
    """'lines 3 and 7' when all are in one file (the problem names it), else 'a.rb:3 and b.rb:7'."""
    wheres = list(wheres)
    files = {getattr(w, "file", None) for w in wheres}
    if len(files) == 1 and all(getattr(w, "line", 0) for w in wheres):
        return "lines " + join_and(str(w.line) for w in wheres)
    return "at " + join_and(place(w) for w in wheres)


def place_from(where: Any, seen_from: Any) -> str:
    """'line 7' when `where` is in the file of `seen_from` (which the problem names)."""
    if getattr(where, "file", None) == getattr(seen_from, "file", None) and getattr(
            where, "line", 0):
        return f"line {where.line}"
    return place(where)


def join_and(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def quoted_names(names: Iterable[Any]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def arrow_chain(loop: list[Any]) -> str:
    """`a -> b -> a`, shortened in the middle when very long."""
    shown = [str(v) for v in loop]
    if len(shown) > _LONGEST_SHOWN_LOOP:
        hidden = len(shown) - 25
        shown = [*shown[:20], f"... ({hidden} more) ...", *shown[-5:]]
    return " -> ".join(shown)


def options_taken(kind: str, allowed: frozenset[str]) -> str:
    if not allowed:
        return f"{kind} takes no options"
    aliases = sorted(alias for alias, canonical in OPTION_ALIASES.items() if canonical in allowed)
    text = f"{kind} takes {', '.join(sorted(allowed))}"
    return text + (f" (or the aliases {', '.join(aliases)})" if aliases else "")

