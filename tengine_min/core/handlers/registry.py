"""Which handler handles which event type, and `handle()`, which runs one.

Types without a handler (alerts, heartbeats of other processes, `.error.tengined` ...) are only
stored, by the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from ...events import names as ev
from ...events.envelope import Event
from ...store import repo
from ..identity import CoreIdentity
from . import executions, jobnets, jobs, rerun, results, status
from .commands import Outcome
from .context import Context

Handler = Callable[[Context], None]

HANDLERS: dict[str, Handler] = {
    ev.START_EXECUTION: executions.on_start_execution,
    ev.STOP_EXECUTION: executions.on_stop_execution,
    ev.START_JOBNET: jobnets.on_start_jobnet,
    ev.STOP_JOBNET: jobnets.on_stop_jobnet,
    ev.SUCCESS_JOBNET: jobnets.on_jobnet_finished,
    ev.ERROR_JOBNET: jobnets.on_jobnet_finished,
    ev.START_JOB: jobs.on_start_job,
    ev.STARTED_PROCESS_JOB: jobs.on_started_process,
    ev.START_FAILED_JOB: jobs.on_start_failed,
    ev.STOP_JOB: jobs.on_stop_job,
    ev.KILL_SENT_JOB: jobs.on_kill_sent,
    ev.STOP_FAILED_JOB: jobs.on_stop_failed,
    ev.SUCCESS_JOB: jobs.on_job_finished,
    ev.ERROR_JOB: jobs.on_job_finished,
    ev.FINISHED_PROCESS_JOB: results.on_finished_process,
    ev.RECONCILED_PROCESS_JOB: results.on_reconciled,
    ev.JOB_HEARTBEAT: results.on_heartbeat,
    ev.EXPIRED_JOB_HEARTBEAT: results.on_heartbeat_expired,
    ev.RESTART_JOB: rerun.on_restart,
    ev.CHANGE_STATUS_JOB: status.on_change_status,
}


def handle(conn: Connection, event: Event, *, now: datetime | None = None,
           log: logging.Logger | None = None,
           identity: CoreIdentity | None = None) -> Outcome:
    """Run the handler of `event` (if its type has one) and return the events it fires and the
    driver commands it asks for."""
    ctx = Context(conn, event, now=now or repo.utcnow(),
                  log=log or logging.getLogger("tengine.core"),
                  identity=identity or CoreIdentity.of_this_process())
    handler = HANDLERS.get(event.event_type_name)
    if handler is not None:
        handler(ctx)
    return ctx.outcome
