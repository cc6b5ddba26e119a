"""Bad target: a job's target made wrong on purpose (a missing script, a wrong address, a wrong
credential; S09-S11). The fault is in what the test defined, so invoking it changes nothing and
it has no end; it is recorded so the history and the coverage matrix show it."""

from __future__ import annotations

from .base import Nemesis


class BadTarget(Nemesis):
    kind = "bad-target"
    has_end = False

    def __init__(self, what: str, *, source: str) -> None:
        super().__init__(name=f"bad target: {what}", target="job definition", subject=None,
                         source=source, how=what, params={"what": what})

    def invoke(self) -> None:
        """Nothing: the test made the target wrong."""
