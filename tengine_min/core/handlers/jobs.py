"""Jobs: start and force stop, the driver's reports on them (started, start failed, kill sent,
stop failed), and what follows when a job ends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from ...events import names as ev
from ...model import phases as ph
from ...model.ids import watcher_job_id
from ...store import repo
from .commands import KillJob, StartJob
from .context import Context, event_job, int_or_none, is_stale, stop_reason_of
from .flow import ack_parent, pass_signal, set_phase
from .jobnets import child_finished, dying_parent


def on_start_job(ctx: Context) -> None:
    job, _ = event_job(ctx)
    if job is None:
        return
    if job.phase == ph.INITIALIZED:
        if job.stop_reason:
            # Stopped while ready (Tengine's "stop just before starting"): the signal goes on.
            pass_signal(ctx, job.parent_id, job.id)
        else:
            ctx.note("job not transmitted: start ignored", job_id=job.id)
        return
    if job.phase != ph.READY:
        ctx.note("job not ready: start ignored", job_id=job.id, phase=job.phase)
        return
    stopping = dying_parent(ctx, job)
    if stopping is not None:
        # Its jobnet is being stopped (the stop overtook this start): as a stop while ready.
        set_phase(ctx, job, ph.INITIALIZED, stop_reason=stopping.stop_reason or ph.USER_STOP)
        pass_signal(ctx, job.parent_id, job.id)
        return
    attempt = job.attempt + 1
    set_phase(ctx, job, ph.STARTING, started_at=ctx.now, attempt=attempt)
    ack_parent(ctx, job)
    _request_start(ctx, repo.require_vertex(ctx.conn, job.id))


def _request_start(ctx: Context, job: Row) -> None:
    task_id = repo.add_driver_task(ctx.conn, "start", job.id, now=ctx.now)
    execution = ctx.execution_of(job)
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
    execution = ctx.execution_of(job)
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
    props = ctx.common_properties(ctx.execution_of(job), job)
    props.update(driver_task_id=task_id, attempt=job.attempt)
    return props


def _finish_task(ctx: Context, job: Row, kind: str, outcome: str) -> None:
    task_id = int_or_none(ctx.props.get("driver_task_id"))
    repo.finish_driver_tasks(ctx.conn, job.id, outcome, kind=kind, task_id=task_id, now=ctx.now)


def on_started_process(ctx: Context) -> None:
    job, attempt = event_job(ctx, from_a_run=True)
    if job is None:
        return
    pid = int_or_none(ctx.props.get("pid"))
    _finish_task(ctx, job, "start", f"started pid={pid}")
    if is_stale(ctx, job, attempt):
        ctx.note("PID of an earlier run: ignored", job_id=job.id, attempt=attempt, pid=pid)
        return
    if pid is None:
        ctx.note("started event without a numeric pid: ignored", job_id=job.id,
                 pid=ctx.props.get("pid"))
        return
    if job.phase == ph.STARTING:
        set_phase(ctx, job, ph.RUNNING, pid=pid)
    elif job.phase == ph.DYING and job.pid is None:
        # A stop came while the job was starting: kill it now that its PID is known.
        repo.update_vertex(ctx.conn, job.id, pid=pid)
        _request_kill(ctx, repo.require_vertex(ctx.conn, job.id))
    elif job.pid is None:
        # e.g. stuck after a core restart: keep the PID so a person can find the process.
        repo.update_vertex(ctx.conn, job.id, pid=pid)
        ctx.note("PID recorded, phase unchanged", job_id=job.id, phase=job.phase, pid=pid)
    else:
        ctx.note("PID already known: ignored", job_id=job.id, phase=job.phase, pid=pid)


def on_start_failed(ctx: Context) -> None:
    job, attempt = event_job(ctx, from_a_run=True)
    if job is None:
        return
    message = str(ctx.props.get("message") or "the job could not be started")
    _finish_task(ctx, job, "start", f"failed: {message}")
    if is_stale(ctx, job, attempt):
        ctx.note("start failure of an earlier run: ignored", job_id=job.id)
        return
    if job.phase not in (ph.STARTING, ph.DYING):
        ctx.note("job not starting: start failure recorded only", job_id=job.id,
                 phase=job.phase, message=message)
        return
    fail_job(ctx, job, reason=message)


# The reason of a job whose force stop failed (it runs on); a later verdict keeps it.
STOP_FAILED_PREFIX = "stop failed: "


def on_stop_failed(ctx: Context) -> None:
    job, attempt = event_job(ctx, from_a_run=True)
    if job is None:
        return
    message = str(ctx.props.get("message") or "the stop could not be sent")
    _finish_task(ctx, job, "kill", f"failed: {message}")
    if is_stale(ctx, job, attempt) or job.phase != ph.DYING:
        ctx.note("stop failure recorded only", job_id=job.id, phase=job.phase, message=message)
        return
    # The kill did not reach the process: it is still running, and a person may stop it again.
    set_phase(ctx, job, ph.RUNNING, reason=f"{STOP_FAILED_PREFIX}{message}")


def on_kill_sent(ctx: Context) -> None:
    job, _ = event_job(ctx)
    if job is not None:
        _finish_task(ctx, job, "kill", "kill sent")


def on_stop_job(ctx: Context) -> None:
    job, _ = event_job(ctx)
    if job is None:
        return
    reason = stop_reason_of(ctx)
    if job.phase == ph.READY:
        # Back to initialized; the signal passes on (along closed edges when its jobnet stops).
        set_phase(ctx, job, ph.INITIALIZED, stop_reason=reason)
        pass_signal(ctx, job.parent_id, job.id)
    elif job.phase == ph.STARTING:
        set_phase(ctx, job, ph.DYING, stop_reason=reason)
        ctx.note("stop while starting: kill when the PID is known", job_id=job.id)
    elif job.phase == ph.RUNNING:
        set_phase(ctx, job, ph.DYING, stop_reason=reason)
        _request_kill(ctx, repo.require_vertex(ctx.conn, job.id))
    elif job.phase == ph.DYING and job.pid is not None and not _open_task(ctx, job, "kill"):
        # A stop again after a failed one: send the kill again (the watcher ignores repeats).
        _request_kill(ctx, job)
    else:
        ctx.note("job not running: stop ignored", job_id=job.id, phase=job.phase)


def _open_task(ctx: Context, job: Row, kind: str) -> bool:
    return any(t.vertex_id == job.id and t.kind == kind
               for t in repo.open_driver_tasks_of(ctx.conn, job.id))


def fail_job(ctx: Context, job: Row, *, reason: str, **fields: Any) -> None:
    fields.setdefault("finished_at", ctx.now)
    set_phase(ctx, job, ph.ERROR, reason=reason, **fields)
    job = repo.require_vertex(ctx.conn, job.id)
    ctx.fire(ev.ERROR_JOB, vertex=job, level="error", message=reason,
             exit_status=job.exit_status, stop_reason=job.stop_reason)


def on_job_finished(ctx: Context) -> None:
    job, _ = event_job(ctx)
    if job is None:
        return
    if job.rerun_spot:
        repo.update_vertex(ctx.conn, job.id, rerun_spot=False)
        ctx.note("spot rerun finished: nothing follows", job_id=job.id)
        return
    child_finished(ctx, job, ok=ctx.event.event_type_name == ev.SUCCESS_JOB)
