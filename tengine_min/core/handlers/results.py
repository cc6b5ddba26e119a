"""What the watcher reports about a job's run and the verdicts when it goes silent: the finished
result, a late result (kept, never dropped), what reconciliation found on the host, heartbeats
and their expiry."""

from __future__ import annotations

import signal as signals
from typing import Any

from sqlalchemy import Row

from ...events import names as ev
from ...events.envelope import Event
from ...model import phases as ph
from ...model.ids import split_job_id
from ...store import repo
from .context import Context, event_job, int_or_none, is_stale
from .flow import set_phase
from .jobs import STOP_FAILED_PREFIX, fail_job


def on_finished_process(ctx: Context) -> None:
    job, attempt = event_job(ctx, from_a_run=True)
    if job is None:
        return
    exit_status = int_or_none(ctx.props.get("exit_status"))
    signal_name = _signal_name(ctx.props.get("signal"))
    result = _result_of(ctx.props)
    if job.phase not in ph.AWAITING_RESULT or is_stale(ctx, job, attempt):
        _late_result(ctx, job, exit_status, signal_name, result)
        return
    repo.finish_driver_tasks(ctx.conn, job.id, "superseded: the job finished", now=ctx.now)
    pid = job.pid if job.pid is not None else int_or_none(ctx.props.get("pid"))
    fields = dict(pid=pid, exit_status=exit_status, signal=signal_name, result=result,
                  finished_at=ctx.now)
    if exit_status == 0:
        set_phase(ctx, job, ph.SUCCESS, reason=None, **fields)
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
    fail_job(ctx, job, reason=reason, stop_reason=stop_reason, **fields)


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
    outcome = f"exit status {exit_status}" if signal_name is None else f"signal {signal_name}"
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


def on_reconciled(ctx: Context) -> None:
    """A result found on the host (`host_state` finished) is recorded as a late result with
    source `reconciliation`; the phase does not change. Anything else the host said (lost,
    unknown ...) is stored with the event and logged. A result already delivered by the
    watcher's own finished event (same watcher key) changes nothing."""
    job, attempt = event_job(ctx, from_a_run=True)
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
    if job.phase in ph.AWAITING_RESULT and not is_stale(ctx, job, attempt):
        # Reconciliation follows a verdict, so this is a race with a rerun or a restart; the
        # result stays on the host for the watcher's own finished event or a resend.
        ctx.note("reconciliation: the job still waits for its result; left to the finished "
                 "event", job_id=job.id, phase=job.phase)
        return
    result: dict[str, Any] = {name: ctx.props[name] for name in (
        "stdout_log", "stderr_log", "stdout_bytes", "stderr_bytes", "killed", "started_at",
        "finished_at", "published") if name in ctx.props}
    _late_result(ctx, job, int_or_none(ctx.props.get("exit_status")),
                 _signal_name(ctx.props.get("signal")), result, source=RECONCILIATION,
                 event_key=key if isinstance(key, str) and key else None,
                 occurred_at=ctx.props.get("finished_at") or None)


def on_heartbeat_expired(ctx: Context) -> None:
    """The monitors' verdict: the watcher (or its host) went silent. DESIGN: error, not stuck,
    with a reason saying what is known; a result arriving later is kept as a late result.
    A bare vertex id means the job's current run (the monitors read the vertex rows)."""
    job, attempt = event_job(ctx)
    if job is None:
        return
    if job.phase not in ph.AWAITING_RESULT or is_stale(ctx, job, attempt):
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
    fail_job(ctx, job, reason=reason, **fields)


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


def on_heartbeat(ctx: Context) -> None:
    raw = ctx.props.get("target_job_id") or ctx.props.get("job_id")
    if not isinstance(raw, str):
        return
    vertex_id, attempt = split_job_id(raw)
    job = repo.get_vertex(ctx.conn, vertex_id)
    if job is None or is_stale(ctx, job, attempt or 1):
        return
    repo.update_vertex(ctx.conn, job.id, heartbeat_key=ctx.event.key,
                       last_heartbeat_at=repo.parse_time(ctx.event.occurred_at))


def _signal_name(value: Any) -> str | None:
    """`KILL`, `SIGKILL` or 9 -> `KILL`."""
    if value is None or value == "":
        return None
    number = int_or_none(value)
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
