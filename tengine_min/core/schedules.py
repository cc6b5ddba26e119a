"""Timeout stop and alert schedules (Tengine's tengine_atd): due rows fire once.

The fired event's key is the schedule id, so even two pollers firing the same row produce one
event the core handles once (Tengine: "exactly one stop.execution.job.tengine with a unique key").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ..events import names as ev
from ..events.envelope import Event
from ..model import phases as ph
from ..store import repo
from .identity import CoreIdentity


def due(conn: Connection, now: datetime, *, identity: CoreIdentity | None = None) -> list[Event]:
    """The events of every schedule due at `now`, each marked fired (so it fires once). A
    schedule of an execution that already ended is cancelled instead. The caller puts the events
    in the outbox in the same transaction."""
    identity = identity or CoreIdentity.of_this_process()
    fired: list[Event] = []
    for row in repo.due_schedules(conn, now):
        execution = repo.get_execution(conn, row.execution_id)
        if execution is None or execution.phase in ph.FINAL:
            repo.cancel_schedules(conn, row.execution_id, now=now)
            continue
        if not repo.mark_schedule_fired(conn, row.id, now):
            continue
        properties = {
            "execution_id": execution.id,
            "root_jobnet_id": execution.root_jobnet_id,
            "root_jobnet_name_path": "/" + execution.root_jobnet_name,
            "target_jobnet_id": execution.root_jobnet_id,
            "target_jobnet_name_path": "/" + execution.root_jobnet_name,
        }
        if row.event_type_name == ev.STOP_EXECUTION:
            properties["stop_reason"] = ph.TIMEOUT
        level = "warn" if row.event_type_name == ev.ALERT_EXECUTION else "info"
        fired.append(Event(
            event_type_name=row.event_type_name, key=row.id,
            source_name=(f"execution:{identity.host}/{identity.pid}/"
                         f"{execution.root_jobnet_id}/{execution.id}"),
            sender_name=f"tengined:{identity.host}/{identity.pid}",
            occurred_at=now.isoformat(timespec="microseconds"), level=level,
            properties=properties))
    return fired
