"""The context of one handling (the connection, the clock, what has been fired) and looking up
what an event is about."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ...events.envelope import Event
from ...logfmt import kv
from ...model import phases as ph
from ...model.execution import SCRIPT_KINDS
from ...model.ids import split_job_id
from ...store import repo
from ..identity import CoreIdentity
from .commands import Outcome


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

    def execution_of(self, vertex: Row) -> Row:
        """The execution a stored vertex belongs to: always there (a foreign key)."""
        execution = self.execution(vertex.execution_id)
        if execution is None:
            raise repo.MissingRow(f"no execution {vertex.execution_id!r} in the store, "
                                  f"though vertex {vertex.id!r} belongs to it")
        return execution

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


# --- looking things up from an event --------------------------------------------------------


# ASCII only: str.isdigit() also accepts characters such as "²" that int() refuses.
_INTEGER = re.compile(r"-?[0-9]+")


def event_job(ctx: Context, *, from_a_run: bool = False) -> tuple[Row | None, int | None]:
    """The job an event is about and the attempt it names (None: the current one). An event
    from a run (watcher, driver) names its attempt; a bare vertex id there means the first."""
    raw = ctx.props.get("target_job_id") or ctx.props.get("job_id")
    if not raw or not isinstance(raw, str):
        ctx.note("event names no job: ignored")
        return None, None
    vertex_id, attempt = split_job_id(raw)
    attempt = int_or_none(ctx.props.get("attempt")) or attempt
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


def event_jobnet(ctx: Context) -> Row | None:
    jobnet_id = ctx.props.get("target_jobnet_id") or ctx.props.get("root_jobnet_id")
    vertex = repo.get_vertex(ctx.conn, jobnet_id) if isinstance(jobnet_id, str) else None
    if vertex is None:
        ctx.note("unknown jobnet: ignored", jobnet_id=jobnet_id)
        return None
    if vertex.kind not in repo.EDGE_CONTAINERS:
        ctx.note("not a jobnet: ignored", jobnet_id=jobnet_id, kind=vertex.kind)
        return None
    return vertex


def event_execution(ctx: Context) -> Row | None:
    execution_id = ctx.props.get("execution_id")
    execution = ctx.execution(execution_id) if isinstance(execution_id, str) else None
    if execution is None and isinstance(ctx.props.get("root_jobnet_id"), str):
        execution = repo.execution_of_root(ctx.conn, ctx.props["root_jobnet_id"])
    if execution is None:
        ctx.note("unknown execution: ignored", execution_id=execution_id)
    return execution


def stop_reason_of(ctx: Context) -> str:
    """Why the event stops something: its `stop_reason`, user_stop when it gives none."""
    reason = ctx.props.get("stop_reason") or ph.USER_STOP
    if reason not in ph.STOP_REASONS:
        ctx.note("unknown stop_reason, taken as user_stop", stop_reason=reason)
        reason = ph.USER_STOP
    return reason


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def is_stale(ctx: Context, job: Row, attempt: int | None) -> bool:
    """An event from an earlier run of a job that has been rerun since."""
    return attempt is not None and attempt != job.attempt
