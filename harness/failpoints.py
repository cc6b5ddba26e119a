"""Arming failpoints of a running system from the harness: on a server (its watcher) or in the
core, through the arming files of `tengine_min.failpoints` in that process's state dir.

    with cluster.failpoint(cluster.core, "driver.after_connect") as fp:
        run = cluster.run("long_job", server=s1)
        fp.wait_hit()          # the core is paused exactly there
        cluster.link(s1, "ssh").cut()
        fp.release()           # and goes on, into the cut

Leaving the block disarms the point and releases anything still paused there, so a failing
test never leaves a process hanging. Every step is a line in the timeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Self

from tengine_min import failpoints as fp

from .report import Timeline


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
                 timeline: Timeline | None = None) -> None:
        self.target = target
        self.name = name
        self.action = action
        self.timeline = timeline
        self.state_dir = target.failpoint_state_dir
        self.armed = False

    def __repr__(self) -> str:
        return f"Failpoint({self.name!r} on {self.target.name}, {self.action})"

    def arm(self) -> Self:
        fp.arm(self.state_dir, self.name, self.action)
        self._give_to_owner()
        self.armed = True
        self._note(f"armed {self.name} action={self.action}")
        return self

    def wait_hit(self, timeout: float = 30.0, count: int = 1) -> list[dict[str, str]]:
        """Wait until the point was reached ``count`` times (a paused process is now there)."""
        try:
            hits = fp.wait_hit(self.state_dir, self.name, timeout, count)
        except TimeoutError as exc:
            tail = f"\ntimeline:\n{self.timeline.as_text(last=30)}" if self.timeline else ""
            raise AssertionError(f"failpoint {self.name} on {self.target.name}: {exc}{tail}") \
                from None
        self._note(f"hit {self.name} (pid {hits[count - 1].get('pid')})")
        return hits

    def hits(self) -> list[dict[str, str]]:
        return fp.hits(self.state_dir, self.name)

    def release(self) -> None:
        """Let the paused process go on. The release stays until the next `arm`, so a later
        hit is recorded but passes at once."""
        fp.release(self.state_dir, self.name)
        self._give_to_owner()
        self._note(f"released {self.name}")

    def disarm(self) -> None:
        fp.disarm(self.state_dir, self.name)
        if self.armed:
            self._note(f"disarmed {self.name}")
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

    def _note(self, text: str) -> None:
        if self.timeline is not None:
            self.timeline.add("failpoint", text, source=self.target.name)
