"""Executions: start, force stop, and the end when the root jobnet ends."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Row

from ...events import names as ev
from ...model import phases as ph
from ...store import repo
from .context import Context, event_execution, stop_reason_of
from .flow import set_execution_phase, transmit


def on_start_execution(ctx: Context) -> None:
    execution = event_execution(ctx)
    if execution is None:
        return
    if execution.phase != ph.INITIALIZED:
        ctx.note("execution already started: ignored", execution_id=execution.id,
                 phase=execution.phase)
        return
    set_execution_phase(ctx, execution, ph.READY)
    set_execution_phase(ctx, execution, ph.STARTING, started_at=ctx.now)
    root = repo.get_vertex(ctx.conn, execution.root_jobnet_id)
    if root is not None and root.phase == ph.INITIALIZED:
        transmit(ctx, root)
    for minutes, name in ((execution.timeout_min, ev.STOP_EXECUTION),
                          (execution.alert_min, ev.ALERT_EXECUTION)):
        if minutes:
            repo.add_schedule(ctx.conn, str(uuid.uuid4()), execution.id, name,
                              ctx.now + timedelta(minutes=minutes))
            ctx.note("scheduled", execution_id=execution.id, fires=name, after_min=minutes)


def on_stop_execution(ctx: Context) -> None:
    execution = event_execution(ctx)
    if execution is None:
        return
    reason = stop_reason_of(ctx)
    if execution.phase == ph.INITIALIZED:
        # Nothing has started: it ends here, and a start arriving later is ignored.
        set_execution_phase(ctx, execution, ph.ERROR, stop_reason=reason, finished_at=ctx.now)
        repo.cancel_schedules(ctx.conn, execution.id, now=ctx.now)
        ctx.fire(ev.ERROR_EXECUTION, execution=ctx.execution(execution.id), level="error",
                 stop_reason=reason)
        return
    if execution.phase not in (ph.READY, ph.STARTING, ph.RUNNING):
        ctx.note("execution not running: stop ignored", execution_id=execution.id,
                 phase=execution.phase)
        return
    set_execution_phase(ctx, execution, ph.DYING, stop_reason=reason)
    root = repo.get_vertex(ctx.conn, execution.root_jobnet_id)
    if root is not None:
        ctx.fire(ev.STOP_JOBNET, vertex=root, stop_reason=reason)


def finish_execution(ctx: Context, root: Row, *, ok: bool) -> None:
    execution = ctx.execution(root.execution_id)
    if execution is None or execution.phase in (ph.SUCCESS, ph.ERROR):
        return  # (a stuck execution does end, as in Tengine)
    phase = ph.SUCCESS if ok else ph.ERROR
    stop_reason = execution.stop_reason or root.stop_reason
    set_execution_phase(ctx, execution, phase, finished_at=ctx.now,
                         stop_reason=None if ok else stop_reason)
    cancelled = repo.cancel_schedules(ctx.conn, execution.id, now=ctx.now)
    if cancelled:
        ctx.note("schedules cancelled", execution_id=execution.id, count=cancelled)
    ctx.fire(ev.SUCCESS_EXECUTION if ok else ev.ERROR_EXECUTION,
             execution=ctx.execution(execution.id), level="info" if ok else "error",
             stop_reason=None if ok else stop_reason)
