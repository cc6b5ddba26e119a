"""Waiting with a deadline, for the harness and the tests: never sleep and hope.

    job = wait_for(lambda: find_job(), timeout=30, what="job j1 to start")

`wait_for` returns the first truthy value of the condition. When the deadline passes it raises
(AssertionError, or the `error` given) naming what was awaited, and, when given, the last state
seen and the end of the test's history (harness.history).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar

T = TypeVar("T")
NotYet = None | Literal[False]  # what a condition answers until it holds (or any falsy T)
POLL = 0.1  # s between looks


class Tail(Protocol):
    """What a timeout message needs of a history: its last entries as text."""

    def as_text(self, last: int) -> str: ...


def wait_for(condition: Callable[[], T | NotYet], *, timeout: float, what: str,
             last_seen: Callable[[], str] | None = None, history: Tail | None = None,
             interval: float = POLL, error: type[Exception] = AssertionError) -> T:
    """The first truthy value of ``condition()``, looked at every ``interval`` s. After
    ``timeout`` s: ``error`` naming ``what``, the last state seen and the history so far."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:g} s waiting for {what}"
            if last_seen is not None:
                message += f"\nlast seen: {last_seen()}"
            if history is not None:
                message += f"\nhistory (last 40 entries):\n{history.as_text(last=40)}"
            raise error(message)
        time.sleep(interval)
