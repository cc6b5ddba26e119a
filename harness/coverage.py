"""The coverage matrix of the acceptance report: which fault hit which point of the protocol, and
which job states the jobs went through after it.

Everything is read from a test's timeline, that is from what the harness really did and saw:
the fault entries (written when a fault is injected), the action entries (a force stop pressed
on the console: to the protocol an interruption like a fault), the failpoint entries (a process
held at a named point of the protocol) and the phase entries (the job phases the console
showed). A test declares nothing here, so a scenario that stops injecting its fault drops out of
the matrix.

- fault: what was broken, by kind ("ssh link cut (refused/reset)", "queue stopped", "force stop
  of a job", ...);
- point: where the protocol was when it broke: the failpoint a process was held at, else the
  phase of the jobs at that moment ("job running"), else "before the run";
- states: per job, the phases seen from the fault to the end ("running -> dying -> error").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # report.py imports this module
    from .report import Entry, Timeline

# Failpoint -> the point of the protocol a process held there stands at.
POINTS = {
    "driver.after_connect": "start: ssh connected, watcher not started",
    "watcher.before_pid_report": "start: job spawned, pid not reported",
    "watcher.before_publish_finished": "end: job ended, result not published",
    "driver.before_kill": "stop: kill decided, not sent",
    "watcher.after_kill": "stop: kill sent, not reported",
    "core.after_commit_before_ack": "core: event committed, not acked",
}
BEFORE_THE_RUN = "before the run"
_NOT_STARTED = {"initialized", "ready"}
ARROW = " -> "

_LINK = re.compile(r"^link (?P<kind>ssh|amqp)-\S+ (?P<what>cut|blackholed|latency|bandwidth)\b")
_SIGNAL = re.compile(r"^(?P<who>\S+) pid \d+ sent SIG(?P<sig>\w+)$")
_WATCHDOG = re.compile(r"^watchdog pid \d+ of job \S+ sent SIG(?P<sig>\w+)$")
_HOST = re.compile(r"^host \S+ (?P<what>powered off|partitioned)$")
_FORCE_STOP = re.compile(r"^force stop of (?P<what>job|jobnet|root jobnet)\b")
_HELD = re.compile(r"^hit (?P<name>\S+)")
_LET_GO = re.compile(r"^(released|disarmed) (?P<name>\S+)$")
# A script job's phase line (PhasePoller writes "<kind> <path> <phase> (<label>)...").
_JOB_PHASE = re.compile(r"^(?:job|hadoop_job_run) (?P<path>/\S*) (?P<phase>\w+) \(")

_LINK_FAULTS = {"cut": "link cut (refused/reset)", "blackholed": "link black hole",
                "latency": "link slow (latency)", "bandwidth": "link slow (bandwidth)"}
_SIGNAL_FAULTS = {"KILL": "killed", "STOP": "paused", "TERM": "stopped"}


def fault_kind(text: str) -> str | None:
    """The kind of fault a timeline "fault" entry injects; None for a repair (heal, broker
    started, core restarted, SIGCONT) or the second line of a fault already counted."""
    if text.startswith("bad target: "):
        return text
    if match := _FORCE_STOP.match(text):
        return f"force stop of a {match['what']}"
    if match := _LINK.match(text):
        return f"{match['kind']} {_LINK_FAULTS[match['what']]}"
    if text == "stopping the broker":
        return "queue stopped"
    if text.startswith("broker killed"):
        return "queue killed"
    if match := _WATCHDOG.match(text):
        what = _SIGNAL_FAULTS.get(match["sig"])
        return f"watcher {what}" if what else None
    if match := _SIGNAL.match(text):
        what = _SIGNAL_FAULTS.get(match["sig"])
        return f"{match['who']} {what}" if what else None
    if match := _HOST.match(text):
        return f"server {match['what']}"
    return None


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


def hits_of(scenario: str | None, nodeid: str, outcome: str, timeline: Timeline) -> list[Hit]:
    """Every fault of one test's timeline, in order."""
    entries = timeline.entries()
    found: list[Hit] = []
    held: list[str] = []  # failpoints a process is held at now, newest last
    phases: dict[str, str] = {}  # job path -> its latest phase
    for index, entry in enumerate(entries):
        if entry.kind == "failpoint":
            if match := _HELD.match(entry.text):
                held.append(match["name"])
            elif match := _LET_GO.match(entry.text):
                held = [name for name in held if name != match["name"]]
        elif entry.kind == "phase":
            if match := _JOB_PHASE.match(entry.text):
                phases[match["path"]] = match["phase"]
        elif entry.kind in ("fault", "action") and (kind := fault_kind(entry.text)):
            found.append(Hit(scenario, nodeid, outcome, kind, _point(held, phases),
                             _states_from(entries, index, phases)))
    return found


def _point(held: list[str], phases: dict[str, str]) -> str:
    if held:
        return POINTS.get(held[-1], held[-1])
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
        if entry.kind == "phase" and (match := _JOB_PHASE.match(entry.text)):
            path_phases = seen.setdefault(match["path"], [])
            if not path_phases or path_phases[-1] != match["phase"]:
                path_phases.append(match["phase"])
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
_POINT_ORDER = (BEFORE_THE_RUN, POINTS["driver.after_connect"], POINTS["watcher.before_pid_report"],
                "job ", POINTS["watcher.before_publish_finished"], POINTS["driver.before_kill"],
                POINTS["watcher.after_kill"], POINTS["core.after_commit_before_ack"])


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
