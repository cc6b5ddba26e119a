"""Jobnets: start, force stop, and what follows when a jobnet or a child of one ends."""

from __future__ import annotations

from sqlalchemy import Row

from ...events import names as ev
from ...model import phases as ph
from ...model.execution import FINALLY, SCRIPT_KINDS
from ...store import repo
from .context import Context, event_jobnet, stop_reason_of
from .executions import finish_execution
from .flow import ack_parent, close_downstream, end_closed, finish_jobnet, pass_signal, set_phase


def on_start_jobnet(ctx: Context) -> None:
    jobnet = event_jobnet(ctx)
    if jobnet is None:
        return
    if jobnet.phase != ph.READY:
        ctx.note("jobnet not ready: start ignored", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    stopping = dying_parent(ctx, jobnet)
    if stopping is not None:
        # Its jobnet is being stopped (the stop overtook this start): it does not begin.
        _stop_ready_jobnet(ctx, jobnet, stopping.stop_reason or ph.USER_STOP)
        return
    set_phase(ctx, jobnet, ph.STARTING, started_at=ctx.now)
    ack_parent(ctx, jobnet)
    pass_signal(ctx, jobnet.id, None)


def on_stop_jobnet(ctx: Context) -> None:
    jobnet = event_jobnet(ctx)
    if jobnet is None:
        return
    if jobnet.phase not in ph.STOPPABLE:
        ctx.note("jobnet not running: stop ignored", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    reason = stop_reason_of(ctx)
    if jobnet.phase == ph.READY:
        _stop_ready_jobnet(ctx, jobnet, reason)
        return
    set_phase(ctx, jobnet, ph.DYING, stop_reason=reason)
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
    set_phase(ctx, jobnet, ph.DYING, stop_reason=reason)
    _close_all_edges(ctx, jobnet)
    pass_signal(ctx, jobnet.id, None)


def dying_parent(ctx: Context, vertex: Row) -> Row | None:
    """The vertex's jobnet (for the root: its execution) when that is being stopped."""
    if vertex.parent_id is None:
        parent = ctx.execution(vertex.execution_id)
    else:
        parent = repo.get_vertex(ctx.conn, vertex.parent_id)
    return parent if parent is not None and parent.phase == ph.DYING else None


def on_jobnet_finished(ctx: Context) -> None:
    jobnet = event_jobnet(ctx)
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
            finish_jobnet(ctx, parent, ok=ok and not end_closed(ctx, parent))
        return
    if jobnet.parent_id is None:
        finish_execution(ctx, jobnet, ok=ok)
        return
    child_finished(ctx, jobnet, ok=ok)


def child_finished(ctx: Context, vertex: Row, *, ok: bool) -> None:
    """The jobnet control for a finished child: success passes the signal on; error first
    closes everything after it, then passes the signal (closing the way, skipping targets)."""
    if not ok:
        close_downstream(ctx, vertex.parent_id, vertex.id)
    pass_signal(ctx, vertex.parent_id, vertex.id)
