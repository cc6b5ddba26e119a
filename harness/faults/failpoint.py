"""Failpoints of a running system, armed from the harness: in the core or on a server (its
watcher), through the arming files of `tengine_min.failpoints` in that process's state dir.

    with cluster.faults.failpoint(cluster.core, "driver.after_connect") as point:
        run = cluster.run("long_job", server=s1)
        point.wait_hit()          # the core is paused exactly there
        cluster.faults.cut(s1.ssh)
        point.release()           # and goes on, into the cut

A point may be armed for some of the messages that pass it only (`when`: one event type,
`job`: one job id, `nth`: from the nth hit on, `count`: that many hits); the rest pass
untouched. Leaving the block disarms the point and releases anything still paused there, so a
failing test never leaves a process hanging. Every step is a `FailpointStep` in the history;
while a process is held at a point, a fault started then records that point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Self

from harness.history import FailpointStep, History, PointStep
from tengine_min import failpoints as fp


class FailpointTarget(Protocol):
    """A process (or every process of a server) whose failpoints the harness can arm."""

    name: str

    @property
    def failpoint_state_dir(self) -> Path:
        """The state dir the process passes to ``failpoint()``, as a path of the harness."""

    @property
    def failpoint_owner(self) -> tuple[int, int] | None:
        """(uid, gid) that must own the failpoints dir (the process writes hit markers)."""


class Failpoint:
    """One armed point in one target."""

    def __init__(self, target: FailpointTarget, name: str, action: str = "pause", *,
                 history: History, when: str | None = None, job: str | None = None,
                 nth: int = 1, count: int | None = None) -> None:
        self.target = target
        self.name = name
        self.action = action
        self.history = history
        self.filters: dict[str, Any] = {key: value for key, value in
                                        (("when", when), ("job", job), ("count", count))
                                        if value is not None}
        if nth != 1:
            self.filters["nth"] = nth
        self.state_dir = target.failpoint_state_dir
        self.armed = False

    def __repr__(self) -> str:
        return f"Failpoint({self.name!r} on {self.target.name}, {self.action})"

    def arm(self) -> Self:
        fp.arm(self.state_dir, self.name, self.action, **self.filters)
        self._give_to_owner()
        self.armed = True
        self._record("armed", action=self.action, filters=dict(self.filters))
        return self

    def wait_hit(self, timeout: float = 30.0, count: int = 1) -> list[dict[str, str]]:
        """Wait until the point was reached ``count`` times (a paused process is now there)."""
        try:
            hits = fp.wait_hit(self.state_dir, self.name, timeout, count)
        except TimeoutError as exc:
            raise AssertionError(f"failpoint {self.name} on {self.target.name}: {exc}\n"
                                 f"history:\n{self.history.as_text(last=30)}") from None
        hit = hits[count - 1]
        self._record("hit", pid=int(hit["pid"]), n=int(hit.get("n", count)),
                     event=hit.get("event", ""), job=hit.get("job", ""))
        return hits

    def hits(self) -> list[dict[str, str]]:
        return fp.hits(self.state_dir, self.name)

    def release(self) -> None:
        """Let the paused process go on. The release stays until the next `arm`, so a later
        hit is recorded but passes at once."""
        fp.release(self.state_dir, self.name)
        self._give_to_owner()
        self._record("released")

    def disarm(self) -> None:
        fp.disarm(self.state_dir, self.name)
        if self.armed:
            self._record("disarmed")
        self.armed = False

    def __enter__(self) -> Self:
        return self.arm()

    def __exit__(self, *exc_info: object) -> None:
        # Disarm first so that a process reaching the point from now on passes; then release
        # whoever is paused there.
        self.disarm()
        fp.release(self.state_dir, self.name)

    def _give_to_owner(self) -> None:
        owner = self.target.failpoint_owner
        if owner is None:
            return
        # The process runs as another user: it must be able to write hit markers and, for
        # a state dir the harness made first, its own files beside them.
        directory = fp.failpoints_dir(self.state_dir)
        for path in (self.state_dir, directory, *directory.iterdir()):
            os.chown(path, *owner)

    def _record(self, step: PointStep, **facts: Any) -> None:
        self.history.add(FailpointStep(point=self.name, target=self.target.name, step=step,
                                       source=self.target.name, **facts))
