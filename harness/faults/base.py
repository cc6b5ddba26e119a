"""The shape of every fault (Jepsen's nemesis), and how each step of one is recorded.

A fault kind is a subclass of `Nemesis` in a module of its own. An instance is one fault on one
target: it says what it breaks (`name`, `target`, `how`, `params`), checks that it can
(`setup`), breaks it (`invoke`) and, for a fault with an end, repairs it (`teardown`).
`start()` and `end()` run those steps and record each in the history twice, when invoked and
when done (or failed), under the fault's id; the start also records the failpoint a process
was held at then (the protocol point the fault hit)::

    cut = LinkCut(link, "ssh", source="s1").start(history, in_effect)   # cluster.faults.cut()
    ...
    cut.end()                                    # or: with cluster.faults.cut(link): ...

`in_effect` is the list of faults started and not yet ended, so a cluster can end them all
when it goes down (Jepsen's teardown).
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, Self

from harness.history import Fault, FaultStep, History, Stage


class FaultError(RuntimeError):
    """A fault that cannot be injected or ended as asked; the message says which and why."""


class Process(Protocol):
    """A process a fault can signal: the core, the console, a job's watchdog."""

    name: str

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...

    def signal(self, sig: signal.Signals) -> None: ...

    def wait(self, timeout: float) -> object: ...


class Nemesis(ABC):
    """One fault of one kind on one target (see the module docstring)."""

    kind: ClassVar[str]  # the key in harness.faults.KINDS and the `kind` of its entries
    has_end: bool = True  # False: nothing repairs it (a killed watchdog, a bad target)

    def __init__(self, *, name: str, target: str, subject: object, source: str,
                 how: str = "", params: dict[str, Any] | None = None) -> None:
        self.name = name  # the fault as the coverage matrix names it
        self.target = target  # what it hits, by name
        self.subject = subject  # what it hits, as an object (to find it again: heal(link))
        self.source = source  # where it happens: the server, "core", "broker", ...
        self.how = how
        self.params = params or {}
        self.id = 0
        self.state = "new"  # new -> in effect -> over (or new -> over when it has no end)
        self._history: History | None = None
        self._in_effect: list[Nemesis] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(#{self.id} {self.name} on {self.target}, {self.state})"

    # -- what a kind implements --

    def setup(self) -> None:  # noqa: B027 - optional: most kinds have nothing to check
        """Check that the fault can be injected now, before anything is recorded."""

    @abstractmethod
    def invoke(self) -> None:
        """Break it."""

    def teardown(self) -> None:
        """Repair it (for a fault with an end)."""
        raise FaultError(f"{self.name} on {self.target} has no end")

    # -- what the harness calls --

    def start(self, history: History, in_effect: list[Nemesis]) -> Self:
        if self.state != "new":
            raise FaultError(f"{self!r} was started already")
        self.setup()
        self._history, self._in_effect = history, in_effect
        self.id = history.new_fault_id()
        self._step("start", self.invoke, point=history.held_point())
        if self.has_end:
            self.state = "in effect"
            in_effect.append(self)
        else:
            self.state = "over"
        return self

    def end(self) -> None:
        if self.state != "in effect":
            raise FaultError(f"cannot end {self!r}: "
                             + ("it has no end" if not self.has_end else f"it is {self.state}"))
        self._step("end", self.teardown)
        self.state = "over"
        self._in_effect.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.state == "in effect":
            self.end()

    def _step(self, step: FaultStep, action: Callable[[], None], point: str = "") -> None:
        self._record(step, "invoked", point=point)
        try:
            action()
        except BaseException as exc:
            self._record(step, "failed", point=point, error=f"{type(exc).__name__}: {exc}")
            raise
        self._record(step, "ok", point=point)

    def _record(self, step: FaultStep, stage: Stage, *, point: str = "", error: str = "") -> None:
        assert self._history is not None
        self._history.add(Fault(id=self.id, kind=self.kind, name=self.name, target=self.target,
                                how=self.how, params=self.params, step=step, stage=stage,
                                error=error, point=point, source=self.source))
