"""The jobnet state machine: one handler per event type, run inside the kernel's transaction.

A handler reads and writes the store through the connection it is given and returns what must
happen next: events to fire (they go to the outbox in the same transaction) and commands for the
driver (ssh start / kill, handed over only after the commit). It never does slow work itself.

The rules are Tengine's (tengine-facts sections 1, 3, 7); docs/states.md lists them with every
decision taken where Tengine was unclear. Bad input (an unknown id, an event for a job in a phase
where it means nothing) is logged and changes nothing; it never raises.
"""

from __future__ import annotations

import logging
import os
import re
import signal as signals
import socket
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from ..events import names as ev
from ..events.envelope import Event
from ..logfmt import kv
from ..model import phases as ph
from ..model.execution import FINALLY, HADOOP_JOB_RUN, SCRIPT_KINDS
from ..model.ids import split_job_id, watcher_job_id
from ..store import repo

# --- what a handler returns -------------------------------------------------------------------


@dataclass(frozen=True)
class CoreIdentity:
    """Who the core is, for Tengine's source names `job:<host>/<pid>/<root id>/<vertex id>`."""

    host: str
    pid: int

    @classmethod
    def of_this_process(cls) -> CoreIdentity:
        return cls(socket.gethostname(), os.getpid())


@dataclass(frozen=True)
class StartJob:
    """Ask the driver to start a job's script on its host (`tengine-watcher run`).

    `watcher_job_id` is the id to give the watcher: the vertex id for the first run, and
    `<vertex id>.<attempt>` for a rerun, because the watcher treats a second run of the same id
    as a duplicate. `properties` are to be copied into the outcome events (started.process /
    start_failed), which must also carry `driver_task_id`."""

    task_id: int
    vertex_id: str
    watcher_job_id: str
    attempt: int
    execution_id: str
    root_jobnet_id: str
    name_path: str
    server_name: str | None
    credential_name: str | None
    script: str
    preparation: str | None
    env: dict[str, str]
    properties: dict[str, Any]


@dataclass(frozen=True)
class KillJob:
    """Ask the driver to kill a job's process group (`tengine-watcher kill`) with the vertex's
    killing signals and interval. Outcome events: kill_sent / stop_failed (+ driver_task_id)."""

    task_id: int
    vertex_id: str
    watcher_job_id: str
    attempt: int
    execution_id: str
    root_jobnet_id: str
    name_path: str
    server_name: str | None
    credential_name: str | None
    pid: int
    signals: tuple[str, ...]
    interval: float
    properties: dict[str, Any]


Command = StartJob | KillJob


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


# --- the context of one handling ------------------------------------------------------------


class Context:
    """The connection, the clock and what has been fired so far, for one event."""

    def __init__(self, conn: Connection, event: Event, *, now: datetime, log: logging.Logger,
                 identity: CoreIdentity) -> None:
        self.conn = conn
        self.event = event
        self.now = now
        self.log = log
        self.identity = identity
        self.outcome = Outcome()
        self._executions: dict[str, Row] = {}

    @property
    def props(self) -> dict[str, Any]:
        return self.event.properties

    def execution(self, execution_id: str) -> Row | None:
        if execution_id not in self._executions:
            row = repo.get_execution(self.conn, execution_id)
            if row is None:
                return None
            self._executions[execution_id] = row
        return self._executions[execution_id]

    def forget_execution(self, execution_id: str) -> None:
        self._executions.pop(execution_id, None)

    def note(self, message: str, /, **fields: Any) -> None:
        """One log line about this event: what happened and why nothing else did. (`message`
        is positional-only: a field may be called `message` too.)"""
        self.log.info("%s %s", message, kv(event=self.event.event_type_name,
                                           key=self.event.key, **fields))

    # -- firing --

    def fire(self, event_type_name: str, *, vertex: Row | None = None,
             execution: Row | None = None, level: str = "info", **extra: Any) -> Event:
        """Fire a core event about a vertex (job or jobnet) or an execution, with Tengine's
        common properties and source name."""
        if vertex is not None:
            execution = self.execution(vertex.execution_id)
        assert execution is not None, "an event is about a vertex or an execution"
        props = self.common_properties(execution, vertex)
        props.update(extra)
        host, pid = self.identity.host, self.identity.pid
        if vertex is not None:
            source = f"job:{host}/{pid}/{execution.root_jobnet_id}/{vertex.id}"
        else:
            source = f"execution:{host}/{pid}/{execution.root_jobnet_id}/{execution.id}"
        event = Event(event_type_name=event_type_name, source_name=source,
                      sender_name=f"tengined:{host}/{pid}",
                      occurred_at=self.now.isoformat(timespec="microseconds"),
                      level=level, properties=props)
        self.outcome.events.append(event)
        return event

    def common_properties(self, execution: Row, vertex: Row | None) -> dict[str, Any]:
        props: dict[str, Any] = {
            "execution_id": execution.id,
            "root_jobnet_id": execution.root_jobnet_id,
            "root_jobnet_name_path": "/" + execution.root_jobnet_name,
            "target_jobnet_id": execution.root_jobnet_id,
            "target_jobnet_name_path": "/" + execution.root_jobnet_name,
            "target_job_id": None,
            "target_job_name_path": None,
        }
        if vertex is None:
            return props
        if vertex.kind in SCRIPT_KINDS:
            parent = repo.get_vertex(self.conn, vertex.parent_id) if vertex.parent_id else None
            if parent is not None:
                props["target_jobnet_id"] = parent.id
                props["target_jobnet_name_path"] = parent.name_path
            props["target_job_id"] = vertex.id
            props["target_job_name_path"] = vertex.name_path
        else:
            props["target_jobnet_id"] = vertex.id
            props["target_jobnet_name_path"] = vertex.name_path
        return props


# --- entry point ----------------------------------------------------------------------------

Handler = Callable[[Context], None]
HANDLERS: dict[str, Handler] = {}


def handles(*event_type_names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in event_type_names:
            HANDLERS[name] = fn
        return fn
    return register


def handle(conn: Connection, event: Event, *, now: datetime | None = None,
           log: logging.Logger | None = None,
           identity: CoreIdentity | None = None) -> Outcome:
    """Run the handler of `event` (if its type has one) and return the events it fires and the
    driver commands it asks for. Types without a handler (alerts, heartbeats of other processes,
    `.error.tengined` ...) are only stored, by the kernel."""
    ctx = Context(conn, event, now=now or repo.utcnow(),
                  log=log or logging.getLogger("tengine.core"),
                  identity=identity or CoreIdentity.of_this_process())
    handler = HANDLERS.get(event.event_type_name)
    if handler is not None:
        handler(ctx)
    return ctx.outcome


# --- looking things up from an event --------------------------------------------------------


# ASCII only: str.isdigit() also accepts characters such as "²" that int() refuses.
_INTEGER = re.compile(r"-?[0-9]+")


def _event_job(ctx: Context, *, from_a_run: bool = False) -> tuple[Row | None, int | None]:
    """The job an event is about and the attempt it names (None: the current one). An event
    from a run (watcher, driver) names its attempt; a bare vertex id there means the first."""
    raw = ctx.props.get("target_job_id") or ctx.props.get("job_id")
    if not raw or not isinstance(raw, str):
        ctx.note("event names no job: ignored")
        return None, None
    vertex_id, attempt = split_job_id(raw)
    attempt = _int_or_none(ctx.props.get("attempt")) or attempt
    if attempt is None and from_a_run:
        attempt = 1
    vertex = repo.get_vertex(ctx.conn, vertex_id)
    if vertex is None:
        ctx.note("unknown job: ignored", job_id=raw)
        return None, None
    if vertex.kind not in SCRIPT_KINDS:
        ctx.note("not a job: ignored", job_id=raw, kind=vertex.kind)
        return None, None
    return vertex, attempt


def _event_jobnet(ctx: Context) -> Row | None:
    jobnet_id = ctx.props.get("target_jobnet_id") or ctx.props.get("root_jobnet_id")
    vertex = repo.get_vertex(ctx.conn, jobnet_id) if isinstance(jobnet_id, str) else None
    if vertex is None:
        ctx.note("unknown jobnet: ignored", jobnet_id=jobnet_id)
        return None
    if vertex.kind not in repo.EDGE_CONTAINERS:
        ctx.note("not a jobnet: ignored", jobnet_id=jobnet_id, kind=vertex.kind)
        return None
    return vertex


def _event_execution(ctx: Context) -> Row | None:
    execution_id = ctx.props.get("execution_id")
    execution = ctx.execution(execution_id) if isinstance(execution_id, str) else None
    if execution is None and isinstance(ctx.props.get("root_jobnet_id"), str):
        execution = repo.execution_of_root(ctx.conn, ctx.props["root_jobnet_id"])
    if execution is None:
        ctx.note("unknown execution: ignored", execution_id=execution_id)
    return execution


def _stop_reason(ctx: Context) -> str:
    reason = ctx.props.get("stop_reason") or ph.USER_STOP
    if reason not in ph.STOP_REASONS:
        ctx.note("unknown stop_reason, taken as user_stop", stop_reason=reason)
        reason = ph.USER_STOP
    return reason


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _is_stale(ctx: Context, job: Row, attempt: int | None) -> bool:
    """An event from an earlier run of a job that has been rerun since."""
    return attempt is not None and attempt != job.attempt


# --- phase changes --------------------------------------------------------------------------


def _set_phase(ctx: Context, vertex: Row, phase: str, **fields: Any) -> None:
    repo.set_phase(ctx.conn, vertex.id, phase, log=ctx.log, **fields)
    if vertex.kind == HADOOP_JOB_RUN:
        # Tengine's hadoop_job boxes ("chained boxes") mirror the phase of their hadoop_job_run.
        inner = repo.subtree_ids(ctx.conn, vertex.id)[1:]
        if inner:
            repo.update_vertices(ctx.conn, inner, phase=phase)


def _set_execution_phase(ctx: Context, execution: Row, phase: str, **fields: Any) -> None:
    repo.set_execution_phase(ctx.conn, execution.id, phase, log=ctx.log, **fields)
    ctx.forget_execution(execution.id)


def _ack_parent(ctx: Context, vertex: Row) -> None:
    """A child began: its jobnet is running (for the root jobnet: its execution)."""
    if vertex.parent_id is None:
        execution = ctx.execution(vertex.execution_id)
        if execution is not None and execution.phase == ph.STARTING:
            _set_execution_phase(ctx, execution, ph.RUNNING)
        return
    parent = repo.get_vertex(ctx.conn, vertex.parent_id)
    if parent is not None and parent.phase in (ph.INITIALIZED, ph.READY, ph.STARTING):
        _set_phase(ctx, parent, ph.RUNNING)


def _transmit(ctx: Context, vertex: Row) -> None:
    """initialized -> ready and fire its start event."""
    _set_phase(ctx, vertex, ph.READY)
    if vertex.kind in SCRIPT_KINDS:
        ctx.fire(ev.START_JOB, vertex=vertex)
    else:
        ctx.fire(ev.START_JOBNET, vertex=vertex)


# --- edges: passing the signal, joins, End ----------------------------------------------------


def _pass_signal(ctx: Context, jobnet_id: str, origin: str | None) -> None:
    """Pass the signal along the not yet final edges out of `origin` (None: Start)."""
    _signal_edges(ctx, jobnet_id, repo.outgoing_edges(ctx.conn, jobnet_id, origin))


def _signal_edges(ctx: Context, jobnet_id: str, start: list[Row]) -> None:
    """Transmit edges (a closing edge becomes closed instead) and let each destination act once
    all its incoming edges are final: the join. Iterative, so a long chain of skipped vertices
    cannot overflow the stack."""
    queue = deque(edge.id for edge in start)
    while queue:
        edge = repo.get_edge(ctx.conn, queue.popleft())  # re-read: the walk may have moved it
        if edge is None or edge.phase in ph.EDGE_FINAL:
            continue
        target = ph.EDGE_CLOSED if edge.phase == ph.EDGE_CLOSING else ph.EDGE_TRANSMITTED
        repo.set_edge_phase(ctx.conn, edge, target, log=ctx.log)
        incoming = repo.incoming_edges(ctx.conn, jobnet_id, edge.destination)
        if any(e.phase not in ph.EDGE_FINAL for e in incoming):
            continue  # a join still waiting for another branch
        if edge.destination is None:
            _reach_end(ctx, jobnet_id)
            continue
        vertex = repo.get_vertex(ctx.conn, edge.destination)
        if vertex is None or vertex.phase != ph.INITIALIZED:
            continue
        if any(e.phase == ph.EDGE_CLOSED for e in incoming):
            # A closed path leads here: the vertex is skipped (stays initialized) and closes
            # the way on.
            ctx.note("skipped", vertex_id=vertex.id, name_path=vertex.name_path)
            for out in repo.outgoing_edges(ctx.conn, jobnet_id, vertex.id):
                if out.phase == ph.EDGE_ACTIVE:
                    repo.set_edge_phase(ctx.conn, out, ph.EDGE_CLOSING, log=ctx.log)
                queue.append(out.id)
        else:
            _transmit(ctx, vertex)


def _close_downstream(ctx: Context, jobnet_id: str, origin: str) -> None:
    """Mark every active edge after `origin` closing, through later vertices up to End (Tengine's
    Closer), so passing the signal then closes them and skips their targets."""
    edges = repo.edges_of_jobnet(ctx.conn, jobnet_id)
    by_origin: dict[str | None, list[Row]] = {}
    for edge in edges:
        by_origin.setdefault(edge.origin, []).append(edge)
    seen: set[str] = {origin}
    queue = deque([origin])
    while queue:
        for edge in by_origin.get(queue.popleft(), []):
            if edge.phase == ph.EDGE_ACTIVE:
                repo.set_edge_phase(ctx.conn, edge, ph.EDGE_CLOSING, log=ctx.log)
            if edge.destination is not None and edge.destination not in seen:
                seen.add(edge.destination)
                queue.append(edge.destination)


def _reach_end(ctx: Context, jobnet_id: str) -> None:
    """Every edge into End is final. Run the finally (unless the jobnet is dying), else finish."""
    jobnet = repo.get_vertex(ctx.conn, jobnet_id)
    if jobnet is None:
        return
    if jobnet.phase == ph.STUCK:
        ctx.note("End reached but the jobnet is stuck: left for a person", jobnet_id=jobnet.id)
        return
    if jobnet.phase in ph.FINAL:
        return
    finally_ = _finally_of(ctx, jobnet)
    if finally_ is not None and jobnet.phase != ph.DYING and finally_.phase == ph.INITIALIZED:
        _transmit(ctx, finally_)
        return
    _finish_jobnet(ctx, jobnet, ok=not _end_closed(ctx, jobnet))


def _finally_of(ctx: Context, jobnet: Row) -> Row | None:
    for child in repo.children(ctx.conn, jobnet.id):
        if child.kind == FINALLY:
            return child
    return None


def _end_closed(ctx: Context, jobnet: Row) -> bool:
    return any(e.phase in (ph.EDGE_CLOSED, ph.EDGE_CLOSING)
               for e in repo.incoming_edges(ctx.conn, jobnet.id, None))


def _finish_jobnet(ctx: Context, jobnet: Row, *, ok: bool) -> None:
    if jobnet.phase in ph.FINAL:
        ctx.note("jobnet already finished", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    phase = ph.SUCCESS if ok else ph.ERROR
    _set_phase(ctx, jobnet, phase, finished_at=ctx.now)
    name = ev.SUCCESS_JOBNET if ok else ev.ERROR_JOBNET
    ctx.fire(name, vertex=jobnet, level="info" if ok else "error",
             stop_reason=jobnet.stop_reason)


# --- execution --------------------------------------------------------------------------------


@handles(ev.START_EXECUTION)
def on_start_execution(ctx: Context) -> None:
    execution = _event_execution(ctx)
    if execution is None:
        return
    if execution.phase != ph.INITIALIZED:
        ctx.note("execution already started: ignored", execution_id=execution.id,
                 phase=execution.phase)
        return
    _set_execution_phase(ctx, execution, ph.READY)
    _set_execution_phase(ctx, execution, ph.STARTING, started_at=ctx.now)
    root = repo.get_vertex(ctx.conn, execution.root_jobnet_id)
    if root is not None and root.phase == ph.INITIALIZED:
        _transmit(ctx, root)
    for minutes, name in ((execution.timeout_min, ev.STOP_EXECUTION),
                          (execution.alert_min, ev.ALERT_EXECUTION)):
        if minutes:
            repo.add_schedule(ctx.conn, str(uuid.uuid4()), execution.id, name,
                              ctx.now + timedelta(minutes=minutes))
            ctx.note("scheduled", execution_id=execution.id, fires=name, after_min=minutes)


@handles(ev.STOP_EXECUTION)
def on_stop_execution(ctx: Context) -> None:
    execution = _event_execution(ctx)
    if execution is None:
        return
    reason = _stop_reason(ctx)
    if execution.phase == ph.INITIALIZED:
        # Nothing has started: it ends here, and a start arriving later is ignored.
        _set_execution_phase(ctx, execution, ph.ERROR, stop_reason=reason, finished_at=ctx.now)
        repo.cancel_schedules(ctx.conn, execution.id, now=ctx.now)
        ctx.fire(ev.ERROR_EXECUTION, execution=ctx.execution(execution.id), level="error",
                 stop_reason=reason)
        return
    if execution.phase not in (ph.READY, ph.STARTING, ph.RUNNING):
        ctx.note("execution not running: stop ignored", execution_id=execution.id,
                 phase=execution.phase)
        return
    _set_execution_phase(ctx, execution, ph.DYING, stop_reason=reason)
    root = repo.get_vertex(ctx.conn, execution.root_jobnet_id)
    if root is not None:
        ctx.fire(ev.STOP_JOBNET, vertex=root, stop_reason=reason)


def _finish_execution(ctx: Context, root: Row, *, ok: bool) -> None:
    execution = ctx.execution(root.execution_id)
    if execution is None or execution.phase in (ph.SUCCESS, ph.ERROR):
        return  # (a stuck execution does end, as in Tengine)
    phase = ph.SUCCESS if ok else ph.ERROR
    stop_reason = execution.stop_reason or root.stop_reason
    _set_execution_phase(ctx, execution, phase, finished_at=ctx.now,
                         stop_reason=None if ok else stop_reason)
    cancelled = repo.cancel_schedules(ctx.conn, execution.id, now=ctx.now)
    if cancelled:
        ctx.note("schedules cancelled", execution_id=execution.id, count=cancelled)
    ctx.fire(ev.SUCCESS_EXECUTION if ok else ev.ERROR_EXECUTION,
             execution=ctx.execution(execution.id), level="info" if ok else "error",
             stop_reason=None if ok else stop_reason)


# --- jobnets ----------------------------------------------------------------------------------


@handles(ev.START_JOBNET)
def on_start_jobnet(ctx: Context) -> None:
    jobnet = _event_jobnet(ctx)
    if jobnet is None:
        return
    if jobnet.phase != ph.READY:
        ctx.note("jobnet not ready: start ignored", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    stopping = _dying_parent(ctx, jobnet)
    if stopping is not None:
        # Its jobnet is being stopped (the stop overtook this start): it does not begin.
        _stop_ready_jobnet(ctx, jobnet, stopping.stop_reason or ph.USER_STOP)
        return
    _set_phase(ctx, jobnet, ph.STARTING, started_at=ctx.now)
    _ack_parent(ctx, jobnet)
    _pass_signal(ctx, jobnet.id, None)


@handles(ev.STOP_JOBNET)
def on_stop_jobnet(ctx: Context) -> None:
    jobnet = _event_jobnet(ctx)
    if jobnet is None:
        return
    if jobnet.phase not in ph.STOPPABLE:
        ctx.note("jobnet not running: stop ignored", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    reason = _stop_reason(ctx)
    if jobnet.phase == ph.READY:
        _stop_ready_jobnet(ctx, jobnet, reason)
        return
    _set_phase(ctx, jobnet, ph.DYING, stop_reason=reason)
    _close_all_edges(ctx, jobnet)
    for child in repo.children(ctx.conn, jobnet.id):
        if child.phase in ph.STOPPABLE:
            name = ev.STOP_JOB if child.kind in SCRIPT_KINDS else ev.STOP_JOBNET
            ctx.fire(name, vertex=child, stop_reason=reason)


def _close_all_edges(ctx: Context, jobnet: Row) -> None:
    for edge in repo.edges_of_jobnet(ctx.conn, jobnet.id):
        if edge.phase == ph.EDGE_ACTIVE:
            repo.set_edge_phase(ctx.conn, edge, ph.EDGE_CLOSING, log=ctx.log)


def _stop_ready_jobnet(ctx: Context, jobnet: Row, reason: str) -> None:
    """A jobnet stopped before it began: nothing inside ran, so its closed Start leads straight
    to End and it ends error with the stop reason (its queued start event is then ignored)."""
    _set_phase(ctx, jobnet, ph.DYING, stop_reason=reason)
    _close_all_edges(ctx, jobnet)
    _pass_signal(ctx, jobnet.id, None)


def _dying_parent(ctx: Context, vertex: Row) -> Row | None:
    """The vertex's jobnet (for the root: its execution) when that is being stopped."""
    if vertex.parent_id is None:
        parent = ctx.execution(vertex.execution_id)
    else:
        parent = repo.get_vertex(ctx.conn, vertex.parent_id)
    return parent if parent is not None and parent.phase == ph.DYING else None


@handles(ev.SUCCESS_JOBNET, ev.ERROR_JOBNET)
def on_jobnet_finished(ctx: Context) -> None:
    jobnet = _event_jobnet(ctx)
    if jobnet is None:
        return
    ok = ctx.event.event_type_name == ev.SUCCESS_JOBNET
    if jobnet.rerun_spot:
        repo.update_vertex(ctx.conn, jobnet.id, rerun_spot=False)
        ctx.note("spot rerun finished: nothing follows", jobnet_id=jobnet.id)
        return
    if jobnet.kind == FINALLY:
        parent = repo.get_vertex(ctx.conn, jobnet.parent_id)
        if parent is not None:
            # finally success: the parent succeeds unless something failed before End;
            # finally error: the parent fails.
            _finish_jobnet(ctx, parent, ok=ok and not _end_closed(ctx, parent))
        return
    if jobnet.parent_id is None:
        _finish_execution(ctx, jobnet, ok=ok)
        return
    _child_finished(ctx, jobnet, ok=ok)


def _child_finished(ctx: Context, vertex: Row, *, ok: bool) -> None:
    """The jobnet control for a finished child: success passes the signal on; error first
    closes everything after it, then passes the signal (closing the way, skipping targets)."""
    if not ok:
        _close_downstream(ctx, vertex.parent_id, vertex.id)
    _pass_signal(ctx, vertex.parent_id, vertex.id)


# --- jobs -------------------------------------------------------------------------------------


@handles(ev.START_JOB)
def on_start_job(ctx: Context) -> None:
    job, _ = _event_job(ctx)
    if job is None:
        return
    if job.phase == ph.INITIALIZED:
        if job.stop_reason:
            # Stopped while ready (Tengine's "stop just before starting"): the signal goes on.
            _pass_signal(ctx, job.parent_id, job.id)
        else:
            ctx.note("job not transmitted: start ignored", job_id=job.id)
        return
    if job.phase != ph.READY:
        ctx.note("job not ready: start ignored", job_id=job.id, phase=job.phase)
        return
    stopping = _dying_parent(ctx, job)
    if stopping is not None:
        # Its jobnet is being stopped (the stop overtook this start): as a stop while ready.
        _set_phase(ctx, job, ph.INITIALIZED, stop_reason=stopping.stop_reason or ph.USER_STOP)
        _pass_signal(ctx, job.parent_id, job.id)
        return
    attempt = job.attempt + 1
    _set_phase(ctx, job, ph.STARTING, started_at=ctx.now, attempt=attempt)
    _ack_parent(ctx, job)
    _request_start(ctx, repo.get_vertex(ctx.conn, job.id))


def _request_start(ctx: Context, job: Row) -> None:
    task_id = repo.add_driver_task(ctx.conn, "start", job.id, now=ctx.now)
    execution = ctx.execution(job.execution_id)
    props = _driver_properties(ctx, job, task_id)
    ctx.outcome.commands.append(StartJob(
        task_id=task_id, vertex_id=job.id, watcher_job_id=watcher_job_id(job.id, job.attempt),
        attempt=job.attempt, execution_id=job.execution_id,
        root_jobnet_id=execution.root_jobnet_id, name_path=job.name_path,
        server_name=job.server_name, credential_name=job.credential_name,
        script=job.script or "", preparation=job.preparation, env=dict(job.env or {}),
        properties=props))
    ctx.note("start requested", job_id=job.id, task_id=task_id, attempt=job.attempt,
             server=job.server_name)


def _request_kill(ctx: Context, job: Row) -> None:
    task_id = repo.add_driver_task(ctx.conn, "kill", job.id, now=ctx.now)
    execution = ctx.execution(job.execution_id)
    ctx.outcome.commands.append(KillJob(
        task_id=task_id, vertex_id=job.id, watcher_job_id=watcher_job_id(job.id, job.attempt),
        attempt=job.attempt, execution_id=job.execution_id,
        root_jobnet_id=execution.root_jobnet_id, name_path=job.name_path,
        server_name=job.server_name, credential_name=job.credential_name, pid=job.pid,
        signals=tuple(job.killing_signals or ("KILL",)),
        interval=float(job.killing_signal_interval or 5), properties=_driver_properties(
            ctx, job, task_id)))
    ctx.note("kill requested", job_id=job.id, task_id=task_id, pid=job.pid,
             signals=",".join(job.killing_signals or ("KILL",)))


def _driver_properties(ctx: Context, job: Row, task_id: int) -> dict[str, Any]:
    props = ctx.common_properties(ctx.execution(job.execution_id), job)
    props.update(driver_task_id=task_id, attempt=job.attempt)
    return props


def _finish_task(ctx: Context, job: Row, kind: str, outcome: str) -> None:
    task_id = _int_or_none(ctx.props.get("driver_task_id"))
    repo.finish_driver_tasks(ctx.conn, job.id, outcome, kind=kind, task_id=task_id, now=ctx.now)


@handles(ev.STARTED_PROCESS_JOB)
def on_started_process(ctx: Context) -> None:
    job, attempt = _event_job(ctx, from_a_run=True)
    if job is None:
        return
    pid = _int_or_none(ctx.props.get("pid"))
    _finish_task(ctx, job, "start", f"started pid={pid}")
    if _is_stale(ctx, job, attempt):
        ctx.note("PID of an earlier run: ignored", job_id=job.id, attempt=attempt, pid=pid)
        return
    if pid is None:
        ctx.note("started event without a numeric pid: ignored", job_id=job.id,
                 pid=ctx.props.get("pid"))
        return
    if job.phase == ph.STARTING:
        _set_phase(ctx, job, ph.RUNNING, pid=pid)
    elif job.phase == ph.DYING and job.pid is None:
        # A stop came while the job was starting: kill it now that its PID is known.
        repo.update_vertex(ctx.conn, job.id, pid=pid)
        _request_kill(ctx, repo.get_vertex(ctx.conn, job.id))
    elif job.pid is None:
        # e.g. stuck after a core restart: keep the PID so a person can find the process.
        repo.update_vertex(ctx.conn, job.id, pid=pid)
        ctx.note("PID recorded, phase unchanged", job_id=job.id, phase=job.phase, pid=pid)
    else:
        ctx.note("PID already known: ignored", job_id=job.id, phase=job.phase, pid=pid)


@handles(ev.START_FAILED_JOB)
def on_start_failed(ctx: Context) -> None:
    job, attempt = _event_job(ctx, from_a_run=True)
    if job is None:
        return
    message = str(ctx.props.get("message") or "the job could not be started")
    _finish_task(ctx, job, "start", f"failed: {message}")
    if _is_stale(ctx, job, attempt):
        ctx.note("start failure of an earlier run: ignored", job_id=job.id)
        return
    if job.phase not in (ph.STARTING, ph.DYING):
        ctx.note("job not starting: start failure recorded only", job_id=job.id,
                 phase=job.phase, message=message)
        return
    _fail_job(ctx, job, reason=message)


# The reason of a job whose force stop failed (it runs on); a later verdict keeps it.
STOP_FAILED_PREFIX = "stop failed: "


@handles(ev.STOP_FAILED_JOB)
def on_stop_failed(ctx: Context) -> None:
    job, attempt = _event_job(ctx, from_a_run=True)
    if job is None:
        return
    message = str(ctx.props.get("message") or "the stop could not be sent")
    _finish_task(ctx, job, "kill", f"failed: {message}")
    if _is_stale(ctx, job, attempt) or job.phase != ph.DYING:
        ctx.note("stop failure recorded only", job_id=job.id, phase=job.phase, message=message)
        return
    # The kill did not reach the process: it is still running, and a person may stop it again.
    _set_phase(ctx, job, ph.RUNNING, reason=f"{STOP_FAILED_PREFIX}{message}")


@handles(ev.KILL_SENT_JOB)
def on_kill_sent(ctx: Context) -> None:
    job, _ = _event_job(ctx)
    if job is not None:
        _finish_task(ctx, job, "kill", "kill sent")


@handles(ev.STOP_JOB)
def on_stop_job(ctx: Context) -> None:
    job, _ = _event_job(ctx)
    if job is None:
        return
    reason = _stop_reason(ctx)
    if job.phase == ph.READY:
        # Back to initialized; the signal passes on (along closed edges when its jobnet stops).
        _set_phase(ctx, job, ph.INITIALIZED, stop_reason=reason)
        _pass_signal(ctx, job.parent_id, job.id)
    elif job.phase == ph.STARTING:
        _set_phase(ctx, job, ph.DYING, stop_reason=reason)
        ctx.note("stop while starting: kill when the PID is known", job_id=job.id)
    elif job.phase == ph.RUNNING:
        _set_phase(ctx, job, ph.DYING, stop_reason=reason)
        _request_kill(ctx, repo.get_vertex(ctx.conn, job.id))
    elif job.phase == ph.DYING and job.pid is not None and not _open_task(ctx, job, "kill"):
        # A stop again after a failed one: send the kill again (the watcher ignores repeats).
        _request_kill(ctx, job)
    else:
        ctx.note("job not running: stop ignored", job_id=job.id, phase=job.phase)


def _open_task(ctx: Context, job: Row, kind: str) -> bool:
    return any(t.vertex_id == job.id and t.kind == kind
               for t in repo.open_driver_tasks_of(ctx.conn, job.id))


@handles(ev.FINISHED_PROCESS_JOB)
def on_finished_process(ctx: Context) -> None:
    job, attempt = _event_job(ctx, from_a_run=True)
    if job is None:
        return
    exit_status = _int_or_none(ctx.props.get("exit_status"))
    signal_name = _signal_name(ctx.props.get("signal"))
    result = _result_of(ctx.props)
    if job.phase not in ph.AWAITING_RESULT or _is_stale(ctx, job, attempt):
        _late_result(ctx, job, exit_status, signal_name, result)
        return
    repo.finish_driver_tasks(ctx.conn, job.id, "superseded: the job finished", now=ctx.now)
    pid = job.pid if job.pid is not None else _int_or_none(ctx.props.get("pid"))
    fields = dict(pid=pid, exit_status=exit_status, signal=signal_name, result=result,
                  finished_at=ctx.now)
    if exit_status == 0:
        _set_phase(ctx, job, ph.SUCCESS, reason=None, **fields)
        ctx.fire(ev.SUCCESS_JOB, vertex=repo.get_vertex(ctx.conn, job.id), exit_status=0)
        return
    killed = bool(ctx.props.get("killed")) or signal_name is not None
    stop_reason = job.stop_reason if killed else None
    if stop_reason == ph.TIMEOUT:
        reason = "stopped by timeout"
    elif stop_reason:
        reason = f"force stopped ({stop_reason})"
    elif signal_name is not None:
        reason = f"killed by signal {signal_name}"
    elif exit_status is not None:
        reason = f"exit status {exit_status}"
    else:
        reason = "ended without an exit status"
    message = ctx.props.get("message")
    if message and not stop_reason:
        reason = f"{reason}. {message}"
    _fail_job(ctx, job, reason=reason, stop_reason=stop_reason, **fields)


def _fail_job(ctx: Context, job: Row, *, reason: str, **fields: Any) -> None:
    fields.setdefault("finished_at", ctx.now)
    _set_phase(ctx, job, ph.ERROR, reason=reason, **fields)
    job = repo.get_vertex(ctx.conn, job.id)
    ctx.fire(ev.ERROR_JOB, vertex=job, level="error", message=reason,
             exit_status=job.exit_status, stop_reason=job.stop_reason)


def _late_result(ctx: Context, job: Row, exit_status: int | None, signal_name: str | None,
                 result: dict[str, Any], *, source: str | None = None,
                 event_key: str | None = None, occurred_at: str | None = None) -> None:
    """A result for a job whose phase is already decided: kept on the job, never dropped, and
    a warning fired; the phase does not change. `source` says how it came: the event type
    (the watcher's finished event) or `reconciliation` (found on the host by the core);
    `event_key` is the watcher's key of the result (default: this event's)."""
    key = event_key or ctx.event.key
    earlier = job.late_result or {}
    if earlier.get("event_key") == key and earlier.get("source") == RECONCILIATION:
        # The result reconciliation found on the host has now been delivered (a resend): the
        # record gets the whole result; it was announced already, so no second warning.
        repo.update_vertex(ctx.conn, job.id, late_result={
            **earlier, "result": result or earlier.get("result"),
            "delivered_at": ctx.now.isoformat(), "delivered_by": ctx.event.source_name})
        ctx.note("late result delivered, already recorded by reconciliation", job_id=job.id,
                 phase=job.phase, watcher_key=key)
        return
    source = source or ctx.event.event_type_name
    late = {"exit_status": exit_status, "signal": signal_name,
            "occurred_at": occurred_at or ctx.event.occurred_at,
            "received_at": ctx.now.isoformat(), "source": source,
            "source_name": ctx.event.source_name, "event_key": key,
            "phase_when_received": job.phase, "result": result}
    repo.update_vertex(ctx.conn, job.id, late_result=late)
    outcome = "exit status %s" % exit_status if signal_name is None else f"signal {signal_name}"
    how = ("was found on its host by reconciliation" if source == RECONCILIATION
           else "arrived")
    message = (f"a result {how} after the job was already {job.phase}: {outcome}; "
               f"the job's phase is unchanged")
    ctx.note("late result recorded", job_id=job.id, phase=job.phase, exit_status=exit_status,
             signal=signal_name, source=source)
    ctx.fire(ev.LATE_RESULT_JOB, vertex=job, level="warn", message=message,
             exit_status=exit_status, signal=signal_name, phase=job.phase, source=source)


# The source of a late result that the core's reconciliation found on the job's host.
RECONCILIATION = "reconciliation"


@handles(ev.RECONCILED_PROCESS_JOB)
def on_reconciled(ctx: Context) -> None:
    """A result found on the host (`host_state` finished) is recorded as a late result with
    source `reconciliation`; the phase does not change. Anything else the host said (lost,
    unknown ...) is stored with the event and logged. A result already delivered by the
    watcher's own finished event (same watcher key) changes nothing."""
    job, attempt = _event_job(ctx, from_a_run=True)
    if job is None:
        return
    state = ctx.props.get("host_state")
    key = ctx.props.get("event_key")
    if state != "finished":
        ctx.note("reconciliation: no result on the host", job_id=job.id, host_state=state,
                 host_said=ctx.props.get("message"))
        return
    if isinstance(key, str) and key and repo.is_processed(
            ctx.conn, Event(ev.FINISHED_PROCESS_JOB, key=key)):
        ctx.note("reconciliation: the result was delivered already", job_id=job.id,
                 watcher_key=key)
        return
    if job.phase in ph.AWAITING_RESULT and not _is_stale(ctx, job, attempt):
        # Reconciliation follows a verdict, so this is a race with a rerun or a restart; the
        # result stays on the host for the watcher's own finished event or a resend.
        ctx.note("reconciliation: the job still waits for its result; left to the finished "
                 "event", job_id=job.id, phase=job.phase)
        return
    result = {name: ctx.props[name] for name in (
        "stdout_log", "stderr_log", "stdout_bytes", "stderr_bytes", "killed", "started_at",
        "finished_at", "published") if name in ctx.props}
    _late_result(ctx, job, _int_or_none(ctx.props.get("exit_status")),
                 _signal_name(ctx.props.get("signal")), result, source=RECONCILIATION,
                 event_key=key if isinstance(key, str) and key else None,
                 occurred_at=ctx.props.get("finished_at") or None)


@handles(ev.EXPIRED_JOB_HEARTBEAT)
def on_heartbeat_expired(ctx: Context) -> None:
    """The monitors' verdict: the watcher (or its host) went silent. DESIGN: error, not stuck,
    with a reason saying what is known; a result arriving later is kept as a late result.
    A bare vertex id means the job's current run (the monitors read the vertex rows)."""
    job, attempt = _event_job(ctx)
    if job is None:
        return
    if job.phase not in ph.AWAITING_RESULT or _is_stale(ctx, job, attempt):
        ctx.note("job not running: expiry ignored", job_id=job.id, phase=job.phase)
        return
    if _beat_since_verdict(ctx, job):
        ctx.note("heartbeat arrived after the verdict was made: expiry ignored", job_id=job.id,
                 verdict_saw=ctx.props.get("last_heartbeat_at"),
                 last_heartbeat_at=job.last_heartbeat_at.isoformat())
        repo.reopen_heartbeat_series(ctx.conn, ctx.event.key)
        return
    since = job.last_heartbeat_at.isoformat() if job.last_heartbeat_at else "never"
    reason = str(ctx.props.get("message") or
                 f"watcher lost: no heartbeat since {since}; whether the script still runs "
                 f"and how it ends is unknown")
    repo.finish_driver_tasks(ctx.conn, job.id, "superseded: the watcher was lost", now=ctx.now)
    fields: dict[str, Any] = {}
    if job.phase == ph.RUNNING and job.stop_reason and (job.reason or "").startswith(
            STOP_FAILED_PREFIX):
        # A force stop failed before the verdict (S16): say so, and do not label the job
        # force stopped, since the stop never got to it.
        reason = (f"{reason}; the force stop before it failed: "
                  f"{job.reason.removeprefix(STOP_FAILED_PREFIX)}")
        fields["stop_reason"] = None
    _fail_job(ctx, job, reason=reason, **fields)


def _beat_since_verdict(ctx: Context, job: Row) -> bool:
    """A monitor's verdict carries the last heartbeat it saw; a newer one recorded while the
    verdict sat in the queue means the watcher is alive after all."""
    if "last_heartbeat_at" not in ctx.props or job.last_heartbeat_at is None:
        return False  # a verdict without it (an older core's) is taken as it is
    seen = ctx.props["last_heartbeat_at"]
    try:
        return seen is None or job.last_heartbeat_at > repo.parse_time(str(seen))
    except (TypeError, ValueError):
        return False  # unreadable: the verdict stands


@handles(ev.JOB_HEARTBEAT)
def on_heartbeat(ctx: Context) -> None:
    raw = ctx.props.get("target_job_id") or ctx.props.get("job_id")
    if not isinstance(raw, str):
        return
    vertex_id, attempt = split_job_id(raw)
    job = repo.get_vertex(ctx.conn, vertex_id)
    if job is None or _is_stale(ctx, job, attempt or 1):
        return
    repo.update_vertex(ctx.conn, job.id, heartbeat_key=ctx.event.key,
                       last_heartbeat_at=repo.parse_time(ctx.event.occurred_at))


@handles(ev.SUCCESS_JOB, ev.ERROR_JOB)
def on_job_finished(ctx: Context) -> None:
    job, _ = _event_job(ctx)
    if job is None:
        return
    if job.rerun_spot:
        repo.update_vertex(ctx.conn, job.id, rerun_spot=False)
        ctx.note("spot rerun finished: nothing follows", job_id=job.id)
        return
    _child_finished(ctx, job, ok=ctx.event.event_type_name == ev.SUCCESS_JOB)


def _signal_name(value: Any) -> str | None:
    """`KILL`, `SIGKILL` or 9 -> `KILL`."""
    if value is None or value == "":
        return None
    number = _int_or_none(value)
    if number is not None:
        try:
            return signals.Signals(number).name.removeprefix("SIG")
        except ValueError:
            return str(number)
    return str(value).upper().removeprefix("SIG")


_RESULT_KEYS = ("stdout_log", "stderr_log", "stdout_head", "stdout_tail", "stderr_head",
                "stderr_tail", "stdout_dropped_bytes", "stderr_dropped_bytes", "stdout_bytes",
                "stderr_bytes", "stdout_spool_dropped_bytes", "stderr_spool_dropped_bytes",
                "stdout_spool_error", "stderr_spool_error", "killed", "started_at",
                "finished_at", "message", "command")


def _result_of(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in _RESULT_KEYS if key in props}


# --- rerun --------------------------------------------------------------------------------------

_LIVE = frozenset({ph.READY, ph.STARTING, ph.RUNNING, ph.DYING})
_RESET_FIELDS = dict(phase=ph.INITIALIZED, stop_reason=None, pid=None, exit_status=None,
                     signal=None, reason=None, result=None, late_result=None, started_at=None,
                     finished_at=None, rerun_spot=False, heartbeat_key=None,
                     last_heartbeat_at=None)


@handles(ev.RESTART_JOB)
def on_restart(ctx: Context) -> None:
    """Rerun (再実行). spot: this job (or jobnet) only; its jobnets keep the outcome they had.
    Otherwise "from this job": it and everything after it in its jobnet run again, and so, level
    by level up to the root, does everything after the jobnet that contains it (and each
    jobnet's finally); those jobnets and the execution are running again."""
    raw = ctx.props.get("target_job_id") or ctx.props.get("target_jobnet_id")
    target = repo.get_vertex(ctx.conn, split_job_id(raw)[0]) if isinstance(raw, str) else None
    if target is None:
        ctx.note("unknown rerun target: ignored", target=raw)
        return
    execution = ctx.execution(target.execution_id)
    # The root has no jobnet to keep: rerunning it is always a full run.
    spot = bool(ctx.props.get("spot")) and target.parent_id is not None
    ancestors = _ancestors(ctx, target)
    problem = _rerun_refusal(target, execution, ancestors)
    if problem:
        ctx.note(f"rerun refused: {problem}", target=target.id, name_path=target.name_path)
        return
    scope = repo.subtree_ids(ctx.conn, target.id)
    reopen_edges: list[int] = []
    if not spot:
        child = target
        for container in reversed(ancestors):  # the nearest jobnet first, the root last
            edge_ids, vertex_ids = _downstream(ctx, container.id, child.id)
            reopen_edges.extend(edge_ids)
            for vertex_id in vertex_ids:
                scope.extend(repo.subtree_ids(ctx.conn, vertex_id))
            finally_ = _finally_of(ctx, container)
            if finally_ is not None and finally_.id != child.id:
                scope.extend(repo.subtree_ids(ctx.conn, finally_.id))
            child = container
    scope = list(dict.fromkeys(scope))
    live = [v for v in repo.vertices_by_ids(ctx.conn, scope)
            if v.phase in _LIVE and v.id != target.id]
    if live:
        ctx.note("rerun refused: part of what would run again is still running",
                 target=target.id, running=live[0].name_path)
        return
    repo.update_vertices(ctx.conn, scope, **_RESET_FIELDS)
    repo.reopen_edges(ctx.conn, scope, reopen_edges)
    ctx.note("rerun", target=target.id, name_path=target.name_path, spot=spot,
             vertices_reset=len(scope), edges_reopened=len(reopen_edges))
    if spot:
        repo.update_vertex(ctx.conn, target.id, rerun_spot=True)
    else:
        for jobnet in ancestors:
            if jobnet.phase != ph.RUNNING:
                _set_phase(ctx, jobnet, ph.RUNNING, finished_at=None, stop_reason=None)
        if execution.phase != ph.RUNNING:
            _set_execution_phase(ctx, execution, ph.RUNNING, finished_at=None, stop_reason=None)
    _transmit(ctx, repo.get_vertex(ctx.conn, target.id))


def _ancestors(ctx: Context, vertex: Row) -> list[Row]:
    """From the root down to the parent of `vertex`."""
    chain = []
    parent_id = vertex.parent_id
    while parent_id is not None:
        parent = repo.get_vertex(ctx.conn, parent_id)
        chain.append(parent)
        parent_id = parent.parent_id
    chain.reverse()
    return chain


def _rerun_refusal(target: Row, execution: Row, ancestors: list[Row]) -> str | None:
    if target.phase not in ph.RESETTABLE:
        return f"it is {target.phase}; only initialized, success, error or stuck can rerun"
    if execution.phase == ph.DYING or any(a.phase == ph.DYING for a in ancestors):
        return "its execution is being stopped"
    if target.kind not in SCRIPT_KINDS and target.kind not in repo.EDGE_CONTAINERS:
        return f"a {target.kind} runs only with its hadoop_job_run"
    return None


def _downstream(ctx: Context, jobnet_id: str, origin: str) -> tuple[list[int], list[str]]:
    """Edges and vertices after `origin` inside one jobnet."""
    by_origin: dict[str | None, list[Row]] = {}
    for edge in repo.edges_of_jobnet(ctx.conn, jobnet_id):
        by_origin.setdefault(edge.origin, []).append(edge)
    edge_ids: list[int] = []
    vertex_ids: list[str] = []
    seen = {origin}
    queue = deque([origin])
    while queue:
        for edge in by_origin.get(queue.popleft(), []):
            edge_ids.append(edge.id)
            if edge.destination is not None and edge.destination not in seen:
                seen.add(edge.destination)
                vertex_ids.append(edge.destination)
                queue.append(edge.destination)
    return edge_ids, vertex_ids


# --- what a failed handling marks stuck -------------------------------------------------------

_EXECUTION_EVENTS = frozenset({ev.START_EXECUTION, ev.STOP_EXECUTION})
_JOBNET_EVENTS = frozenset({ev.START_JOBNET, ev.STOP_JOBNET, ev.SUCCESS_JOBNET, ev.ERROR_JOBNET})
_PARENT_EVENTS = frozenset({ev.SUCCESS_JOB, ev.ERROR_JOB})
_JOB_EVENTS = frozenset({ev.START_JOB, ev.STOP_JOB, ev.FINISHED_PROCESS_JOB,
                         ev.EXPIRED_JOB_HEARTBEAT, ev.RESTART_JOB, ev.STARTED_PROCESS_JOB,
                         ev.START_FAILED_JOB, ev.STOP_FAILED_JOB, ev.KILL_SENT_JOB})


def stuck_target(conn: Connection, event: Event) -> tuple[str, str] | None:
    """What Tengine marks stuck when handling `event` failed: ("execution", id) for execution
    events, ("vertex", id) for the job of a job event, the parent jobnet of success/error.job,
    the jobnet of a jobnet event; None when the event names nothing known."""
    props = event.properties
    name = event.event_type_name
    if name in _EXECUTION_EVENTS:
        execution_id = props.get("execution_id")
        if isinstance(execution_id, str) and repo.get_execution(conn, execution_id) is not None:
            return ("execution", execution_id)
        return None
    if name in _JOBNET_EVENTS:
        jobnet_id = props.get("target_jobnet_id") or props.get("root_jobnet_id")
        if isinstance(jobnet_id, str) and repo.get_vertex(conn, jobnet_id) is not None:
            return ("vertex", jobnet_id)
        return None
    if name in _JOB_EVENTS or name in _PARENT_EVENTS:
        raw = props.get("target_job_id") or props.get("job_id")
        if name == ev.RESTART_JOB and not raw:
            raw = props.get("target_jobnet_id")
        job = repo.get_vertex(conn, split_job_id(raw)[0]) if isinstance(raw, str) else None
        if job is None:
            return None
        if name in _PARENT_EVENTS and job.parent_id is not None:
            return ("vertex", job.parent_id)
        return ("vertex", job.id)
    return None
