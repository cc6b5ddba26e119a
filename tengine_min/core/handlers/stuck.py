"""What a failed handling marks stuck (Tengine's `failed.tengined` handlers)."""

from __future__ import annotations

from sqlalchemy import Connection

from ...events import names as ev
from ...events.envelope import Event
from ...model.ids import split_job_id
from ...store import repo

_EXECUTION_EVENTS = frozenset({ev.START_EXECUTION, ev.STOP_EXECUTION})
_JOBNET_EVENTS = frozenset({ev.START_JOBNET, ev.STOP_JOBNET, ev.SUCCESS_JOBNET, ev.ERROR_JOBNET})
_PARENT_EVENTS = frozenset({ev.SUCCESS_JOB, ev.ERROR_JOB})
_JOB_EVENTS = frozenset({ev.START_JOB, ev.STOP_JOB, ev.FINISHED_PROCESS_JOB,
                         ev.EXPIRED_JOB_HEARTBEAT, ev.RESTART_JOB, ev.STARTED_PROCESS_JOB,
                         ev.START_FAILED_JOB, ev.STOP_FAILED_JOB, ev.KILL_SENT_JOB,
                         ev.CHANGE_STATUS_JOB})
# Job events that may name a jobnet instead (a rerun or a status change of a jobnet).
_JOB_OR_JOBNET_EVENTS = frozenset({ev.RESTART_JOB, ev.CHANGE_STATUS_JOB})


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
        if name in _JOB_OR_JOBNET_EVENTS and not raw:
            raw = props.get("target_jobnet_id")
        job = repo.get_vertex(conn, split_job_id(raw)[0]) if isinstance(raw, str) else None
        if job is None:
            return None
        if name in _PARENT_EVENTS and job.parent_id is not None:
            return ("vertex", job.parent_id)
        return ("vertex", job.id)
    return None
