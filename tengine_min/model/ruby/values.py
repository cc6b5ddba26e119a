"""The values the Ruby reader evaluates, and how it shows them in messages.

Literals become plain Python values (str, int, float, bool, None, list, dict); what Ruby tells
apart and the reader must too gets a type of its own: a symbol key (`:to`) is not the string key
"to", a hash remembers the line of each key, a variable whose assignment could not be read is
Unreadable. `show`, `ruby_float` and `ruby_dirname` follow Ruby's own `inspect`, `Float#to_s`
and `File.dirname`.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RubyHash", "Sym", "Unreadable", "plain", "ruby_dirname", "ruby_float", "shorten",
           "show"]


@dataclass(frozen=True)
class Sym:
    """A symbol used as a hash key (`:to =>`, `to:`): told apart from the string key "to",
    which Tengine's loader does not recognise."""

    name: str


class RubyHash(dict[Any, Any]):
    """A Ruby hash read from the file, remembering the line of each key."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}

    def put(self, key: Any, value: Any, line: int) -> None:
        self[key] = value
        self.lines[key] = line


@dataclass
class Unreadable:
    """The value of a variable whose assignment could not be read."""

    line: int


def plain(value: Any) -> Any:
    """A value as the model stores it: symbols as their names, fresh lists and dicts."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Sym):
        return value.name
    return value


def show(value: Any) -> str:
    """A value as Ruby's `inspect` would write it, shortened for messages."""
    if value is None:
        text = "nil"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, Sym):
        text = f":{value.name}"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{show(k)} => {show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def ruby_float(value: float) -> str:
    """Float#to_s: fixed notation for 1e-4 <= |x| < 1e16, else `1.0e+16`."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # NaN and the infinities are handled above
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if value == 0:
        return prefix + "0.0"
    if -4 < point <= 0:
        return prefix + "0." + "0" * -point + text
    if 0 < point < 16:
        whole, frac = text[:point].ljust(point, "0"), text[point:]
        return prefix + whole + "." + (frac or "0")
    return f"{prefix}{text[0]}.{text[1:] or '0'}e{point - 1:+03d}"


def ruby_dirname(path: str) -> str:
    """File.dirname: trailing slashes ignored, "." for a bare name, "/" for the root."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    cut = stripped.rfind("/")
    if cut < 0:
        return "."
    return stripped[:cut].rstrip("/") or "/"

