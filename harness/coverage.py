"""The coverage matrix of the acceptance report: which fault hit which point of the protocol, and
which job states the jobs went through after it.

Everything is read from the fields of a test's history entries (`harness.history`), that is from
what the harness really did and saw, never from their display text: the `Fault` starts (each
names its fault and the failpoint a process was held at), the force stops pressed on the console
(`Operation`s: to the protocol an interruption like a fault) and the job phases the console
showed (`PhaseChange`). A test declares nothing here, so a scenario that stops injecting its
fault drops out of the matrix; a new fault kind shows up with the name its entries carry.

- fault: what was broken, by name ("ssh link cut (refused/reset)", "queue stopped", "force stop
  of a job", ...);
- point: where the protocol was when it broke: the failpoint a process was held at (by its label
  in the catalogue, `tengine_min.failpoints.POINTS`), else the phase of the jobs at that moment
  ("job running"), else "before the run";
- states: per job, the phases seen from the fault to the end ("running -> dying -> error").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tengine_min.failpoints import POINTS

from .history import Entry, Fault, History, Operation, PhaseChange

BEFORE_THE_RUN = "before the run"
SCRIPT_KINDS = ("job", "hadoop_job_run")  # the vertices that run a script: their phases count
_NOT_STARTED = {"initialized", "ready"}
ARROW = " -> "


@dataclass(frozen=True)
class Hit:
    """One fault of one test, where it hit and what followed."""

    scenario: str | None
    nodeid: str
    outcome: str
    fault: str
    point: str
    states: tuple[tuple[str, tuple[str, ...]], ...]  # per job path: its phases from the fault on

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["states"] = {path: list(phases) for path, phases in self.states}
        return out

    def states_text(self) -> str:
        """``running -> error`` for one job; ``j1: running -> success; j2: ...`` for more,
        leaving out the jobs that never left initialized/ready (nothing happened to them)."""
        moved = [(path, phases) for path, phases in self.states
                 if not set(phases) <= _NOT_STARTED] or list(self.states)
        if len(moved) == 1:
            return ARROW.join(moved[0][1])
        return "; ".join(f"{path.rsplit('/', 1)[-1]}: {ARROW.join(phases)}"
                         for path, phases in moved)

    @property
    def label(self) -> str:
        """The scenario id, with the test's parameters when it has some: ``S17[blackhole]``."""
        params = self.nodeid[self.nodeid.index("["):] if self.nodeid.endswith("]") else ""
        return f"{self.scenario or '?'}{params}"


def hits_of(scenario: str | None, nodeid: str, outcome: str, history: History) -> list[Hit]:
    """Every fault (and force stop) of one test's history, in order."""
    entries = history.entries()
    started = {e.id for e in entries if isinstance(e, Fault) and e.step == "start"
               and e.stage == "ok"}  # a fault whose start failed did not happen
    found: list[Hit] = []
    phases: dict[str, str] = {}  # job path -> its latest phase
    for index, entry in enumerate(entries):
        if isinstance(entry, PhaseChange):
            if entry.kind in SCRIPT_KINDS:
                phases[entry.path] = entry.phase
        elif (interruption := _interruption(entry, started)) is not None:
            fault, point = interruption
            found.append(Hit(scenario, nodeid, outcome, fault, _point(point, phases),
                             _states_from(entries, index, phases)))
    return found


def _interruption(entry: Entry, started: set[int]) -> tuple[str, str] | None:
    """(the fault's name, the failpoint held) when `entry` starts a fault or is a force stop."""
    if isinstance(entry, Fault) and entry.step == "start" and entry.stage == "invoked" \
            and entry.id in started:
        return entry.name, entry.point
    if isinstance(entry, Operation) and entry.action == "force_stop":
        return f"force stop of a {entry.value}", entry.point
    return None


def point_label(failpoint: str) -> str:
    """The protocol point a process held at `failpoint` stands at (its catalogue label)."""
    known = POINTS.get(failpoint)
    return known.label if known is not None else failpoint


def _point(held: str, phases: dict[str, str]) -> str:
    if held:
        return point_label(held)
    if phases:
        # The jobs under way say where the run is; those not started yet only wait.
        started = {phase for phase in phases.values() if phase not in _NOT_STARTED}
        return "job " + "/".join(sorted(started or set(phases.values())))
    return BEFORE_THE_RUN


def _states_from(entries: list[Entry], index: int,
                 phases: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per job, its phase at entry `index` (if it had one yet), then each change after it."""
    seen: dict[str, list[str]] = {path: [phase] for path, phase in phases.items()}
    for entry in entries[index + 1:]:
        if isinstance(entry, PhaseChange) and entry.kind in SCRIPT_KINDS:
            path_phases = seen.setdefault(entry.path, [])
            if not path_phases or path_phases[-1] != entry.phase:
                path_phases.append(entry.phase)
    return tuple((path, tuple(seen[path])) for path in sorted(seen))


def matrix(hits: list[Hit]) -> dict[str, Any]:
    """Faults (rows) x points (columns); a cell lists the tests with the states they reached."""
    faults = sorted({h.fault for h in hits})
    points = sorted({h.point for h in hits}, key=_point_order)
    cells: dict[str, dict[str, list[dict[str, Any]]]] = {f: {} for f in faults}
    for hit in hits:
        cells[hit.fault].setdefault(hit.point, []).append(
            {"scenario": hit.scenario, "label": hit.label, "nodeid": hit.nodeid,
             "outcome": hit.outcome, "states": hit.states_text()})
    return {"faults": faults, "points": points, "cells": cells}


_PHASE_ORDER = ("initialized", "ready", "starting", "running", "dying", "success", "error",
                "stuck")
# Where the columns go: before the run, a job's start, its phases ("job ..."), its end, its stop,
# then the core's own points.
_POINT_ORDER = (
    BEFORE_THE_RUN,
    *(point_label(name) for name in ("driver.after_connect", "watcher.before_record_started",
                                     "watcher.before_pid_report")),
    "job ",
    *(point_label(name) for name in ("watcher.before_publish_finished", "driver.before_kill",
                                     "watcher.after_kill", "core.after_commit_before_ack")))


def _point_order(point: str) -> tuple[int, int, str]:
    """Columns in the order a job lives: before the run, its start, its phases, its end, its
    stop, then the core's own points; anything else last."""
    if point.startswith("job "):
        first = point[4:].split("/")[0]
        phase_rank = _PHASE_ORDER.index(first) if first in _PHASE_ORDER else len(_PHASE_ORDER)
        return _POINT_ORDER.index("job "), phase_rank, point
    if point in _POINT_ORDER:
        return _POINT_ORDER.index(point), 0, point
    return len(_POINT_ORDER), 0, point
