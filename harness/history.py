"""The history of one test: what the harness did and what it saw, as typed entries.

In the spirit of Jepsen's history: every entry is a frozen dataclass with the wall time it
happened (`at`) and where (`source`: a server, ``core``, ``console``, ``broker``, ``bus``,
``harness``); its fields are the facts. Its display text, `text()`, is derived from those
fields by one method per entry type, for people reading the report: nothing ever reads the text
back (the coverage matrix and any checker read the fields).

What the test did:

- `Operation`: a workload operation, done as a person would on the console (run, force stop,
  status change, rerun) or on the cluster to arrange the test (install a script, let a gated
  script end, reload the resources);
- `Fault`: one step of a fault that `harness.faults` injected: its start or its end (a fault
  with an end records both, under one id), each when invoked and when done or failed (Jepsen's
  ``:invoke`` and ``:info``), with the failpoint a process was held at when it started;
- `FailpointStep`: a failpoint armed, hit (the process is held there), released, disarmed.

What it saw:

- `PhaseChange`: a phase or reason change of a job, jobnet or execution on the console's API;
- `BusEvent`: an event seen on the bus;
- `LogFact`: a line of a log (the watcher's, on a server) about a job, with its fact;
- `ClusterStep`: the cluster's own steps (up, servers ready, core ready, down ...);
- `Note`: anything else the harness or the test wants on the record.

`History` is the thread-safe list of them (the phase poller, the bus recorder and the test add
entries from their own threads); entries are sorted by time, shown relative to its start.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar, overload

E = TypeVar("E", bound="Entry")

FaultStep = Literal["start", "end"]
Stage = Literal["invoked", "ok", "failed"]
PointStep = Literal["armed", "hit", "released", "disarmed"]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """What every entry has: when and where. Subclasses add the facts."""

    type: ClassVar[str] = "entry"  # the entry's type in the JSON report
    at: float = field(default_factory=time.time)  # wall time, seconds since the epoch
    source: str = ""  # where it happened

    def text(self) -> str:
        raise NotImplementedError

    def as_dict(self, start: float) -> dict[str, Any]:
        """The JSON form: ``type``, ``t`` (s since the test's start), ``at`` (ISO), every field,
        and the display text (for people; nothing reads it back)."""
        out: dict[str, Any] = {"type": self.type, "t": round(self.at - start, 3),
                               "at": iso(self.at)}
        out.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "at")
        out["text"] = self.text()
        return out


# --- what the test did ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Operation(Entry):
    """A workload operation: what the test did, as a person would.

    `action` is one of: ``run`` (a jobnet run from the console), ``force_stop`` (強制停止 of a
    job, a jobnet or the root jobnet), ``status_change`` (ステータス変更), ``rerun`` (再実行),
    ``install`` (a script put on a server), ``end_script`` (a gated script told to end),
    ``reload`` (the core restarted to read changed resources)."""

    type: ClassVar[str] = "operation"
    action: str
    execution: str = ""
    path: str = ""  # the jobnet run, the job or jobnet acted on, the script installed
    value: str = ""  # force_stop: job, jobnet or root jobnet; status_change: the status; ...
    point: str = ""  # the failpoint a process was held at when it was done ("" none)

    def text(self) -> str:
        if self.action == "run":
            return f"ran {self.path}: execution {self.execution}"
        if self.action == "force_stop":
            return f"force stop of {self.value} {self.path} (強制停止)".replace("  ", " ")
        if self.action == "status_change":
            return f"status of {self.path} changed to {self.value} (ステータス変更)"
        if self.action == "rerun":
            if not self.path:
                return "rerun of the whole execution (再実行)"
            return f"rerun of {self.path}, {self.value} (再実行)"
        if self.action == "install":
            return f"installed {self.path} (mode {self.value})"
        if self.action == "end_script":
            return f"{self.path} told to end"
        if self.action == "reload":
            return f"{self.value}: core restarted to read them"
        return f"{self.action} {self.path} {self.value}".rstrip()


@dataclass(frozen=True, kw_only=True)
class Fault(Entry):
    """One step of one fault (see harness/faults): its start or its end, when invoked and when
    done (``ok``) or ``failed``. Every entry of one fault has the same `id`."""

    type: ClassVar[str] = "fault"
    id: int
    kind: str  # the fault kind, a key of harness.faults.KINDS: "link-cut", "broker-stop", ...
    name: str  # the fault as the coverage matrix names it: "ssh link cut (refused/reset)"
    target: str  # what it hits: "ssh-s1", "s1", "core", "broker", ...
    how: str = ""  # its variant in words: "SIGKILL", "200 ms +/- 0 ms, both ways", ...
    params: dict[str, Any] = field(default_factory=dict)  # the same, as values
    step: FaultStep
    stage: Stage
    error: str = ""  # why the step failed
    point: str = ""  # the failpoint a process was held at when the fault started ("" none)

    def text(self) -> str:
        what = f"#{self.id} {self.name} on {self.target}"
        if self.stage == "failed":
            return f"{what}: {self.step} failed: {self.error}"
        if self.step == "start":
            if self.stage == "invoked":
                return f"{what}" + (f" ({self.how})" if self.how else "") + ": starting"
            return f"{what}: in effect"
        return f"{what}: ending" if self.stage == "invoked" else f"{what}: over"


@dataclass(frozen=True, kw_only=True)
class FailpointStep(Entry):
    """A failpoint of `target` (the core, or a server's watcher) armed, hit, released or
    disarmed."""

    type: ClassVar[str] = "failpoint"
    point: str  # the failpoint's name: "driver.before_kill"
    target: str  # "core", "s1"
    step: PointStep
    action: str = ""  # armed: pause, sleep(ms), exit(code)
    filters: dict[str, Any] = field(default_factory=dict)  # armed: when, job, nth, count
    pid: int | None = None  # hit: the process held there
    n: int | None = None  # hit: which hit of the point it was (1: the first)
    event: str = ""  # hit: the event being handled there, when the point knows it
    job: str = ""  # hit: the job, when the point knows it

    def text(self) -> str:
        if self.step == "armed":
            given = "".join(f" {key}={value}" for key, value in self.filters.items())
            return f"armed {self.point} action={self.action}{given}"
        if self.step == "hit":
            about = "".join(f" {key}={value}" for key, value in
                            (("n", self.n), ("event", self.event), ("job", self.job)) if value)
            return f"hit {self.point} (pid {self.pid}){about}"
        return f"{self.step} {self.point}"


# --- what it saw -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PhaseChange(Entry):
    """A phase or reason change seen on the console's API."""

    type: ClassVar[str] = "phase"
    execution: str
    path: str = ""  # the job's or jobnet's name path; "" for the execution itself
    kind: str  # "execution", "job", "jobnet", "hadoop_job_run", "finally", ...
    phase: str
    label: str = ""  # the Japanese label the console shows
    reason: str = ""

    def text(self) -> str:
        what = "execution" if self.kind == "execution" else f"{self.kind} {self.path}"
        return (f"{what} {self.phase} ({self.label})"
                + (f" reason={self.reason!r}" if self.reason else ""))


@dataclass(frozen=True, kw_only=True)
class BusEvent(Entry):
    """An event seen on the bus (a copy, on the harness's own queue). Heartbeats are recorded
    only as the first of their key and after a gap."""

    type: ClassVar[str] = "event"
    event_type: str
    level: str = ""
    key: str = ""
    job: str = ""  # the id of the job it is about, if any
    summary: str = ""  # what the event screen shows under it: target, exit status, message
    first: bool = False  # a heartbeat: the first of its key
    gap: float | None = None  # a heartbeat: after a silence of that many seconds

    def text(self) -> str:
        if self.first:
            return f"{self.event_type} (first of key {self.key[:8]})"
        if self.gap is not None:
            return f"{self.event_type} after a gap of {self.gap:.1f} s"
        return f"{self.event_type} level={self.level} {self.summary}".rstrip()


@dataclass(frozen=True, kw_only=True)
class LogFact(Entry):
    """A log line about a job, placed at the line's own time."""

    type: ClassVar[str] = "log"
    log: str = "watcher"  # which log
    host: str  # the server it was read on
    job: str = ""  # the job id the line names
    fact: str  # the line's words before its first key=value: "started", "kill sent", ...
    line: str  # the whole line

    def text(self) -> str:
        return self.line.split(f" tengine.{self.log} ", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class ClusterStep(Entry):
    """A step of the cluster itself: bringing it up, a part ready, taking it down."""

    type: ClassVar[str] = "cluster"
    step: str  # "bringing up", "broker ready", "servers ready", "server", "core ready", ...
    seconds: float | None = None  # how long it took
    pid: int | None = None  # the process it started
    detail: str = ""

    def text(self) -> str:
        return (self.step + (f" in {self.seconds:.2f} s" if self.seconds is not None else "")
                + (f", pid {self.pid}" if self.pid is not None else "")
                + (f": {self.detail}" if self.detail else ""))


@dataclass(frozen=True, kw_only=True)
class Note(Entry):
    """Something the harness or the test wants on the record, in words."""

    type: ClassVar[str] = "note"
    message: str

    def text(self) -> str:
        return self.message


ENTRY_TYPES: tuple[type[Entry], ...] = (Operation, Fault, FailpointStep, PhaseChange, BusEvent,
                                        LogFact, ClusterStep, Note)


class History:
    """A thread-safe list of entries; times are shown relative to `start`."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self._entries: list[Entry] = []
        self._fault_ids = 0
        self._lock = threading.Lock()

    def add(self, entry: E) -> E:
        with self._lock:
            self._entries.append(entry)
        return entry

    def note(self, message: str, *, source: str = "") -> Note:
        return self.add(Note(message=message, source=source))

    @overload
    def entries(self) -> list[Entry]: ...

    @overload
    def entries(self, of_type: type[E]) -> list[E]: ...

    def entries(self, of_type: type[Entry] = Entry) -> list[Any]:
        """The entries (of one type if given), oldest first."""
        with self._lock:
            found = [e for e in self._entries if isinstance(e, of_type)]
        return sorted(found, key=lambda e: e.at)

    def new_fault_id(self) -> int:
        with self._lock:
            self._fault_ids += 1
            return self._fault_ids

    def held_point(self) -> str:
        """The failpoint a process is held at now (the newest hit not yet released or
        disarmed), or ""."""
        held: list[str] = []
        for step in self.entries(FailpointStep):
            if step.step == "hit":
                held.append(step.point)
            elif step.step in ("released", "disarmed"):
                held = [point for point in held if point != step.point]
        return held[-1] if held else ""

    def as_dicts(self) -> list[dict[str, Any]]:
        return [e.as_dict(self.start) for e in self.entries()]

    def as_text(self, last: int | None = None) -> str:
        """``+1.234s fault     [s1] #1 ssh link cut ...`` lines, oldest first (the last N if
        asked)."""
        entries = self.entries()
        if last is not None:
            entries = entries[-last:]
        return "\n".join(f"{e.at - self.start:+8.3f}s {e.type:<9} "
                         f"{'[' + e.source + '] ' if e.source else ''}{e.text()}"
                         for e in entries)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
