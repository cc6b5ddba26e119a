"""Moving vertices: phase changes, and the signal along the edges of a jobnet (joins, skipped
vertices, End, the finally)."""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy import Row

from ...events import names as ev
from ...model import phases as ph
from ...model.execution import FINALLY, HADOOP_JOB_RUN, SCRIPT_KINDS
from ...store import repo
from .context import Context

# --- phase changes --------------------------------------------------------------------------


def set_phase(ctx: Context, vertex: Row, phase: str, **fields: Any) -> None:
    repo.set_phase(ctx.conn, vertex.id, phase, log=ctx.log, **fields)
    if vertex.kind == HADOOP_JOB_RUN:
        # Tengine's hadoop_job boxes ("chained boxes") mirror the phase of their hadoop_job_run.
        inner = repo.subtree_ids(ctx.conn, vertex.id)[1:]
        if inner:
            repo.update_vertices(ctx.conn, inner, phase=phase)


def set_execution_phase(ctx: Context, execution: Row, phase: str, **fields: Any) -> None:
    repo.set_execution_phase(ctx.conn, execution.id, phase, log=ctx.log, **fields)
    ctx.forget_execution(execution.id)


def ack_parent(ctx: Context, vertex: Row) -> None:
    """A child began: its jobnet is running (for the root jobnet: its execution)."""
    if vertex.parent_id is None:
        execution = ctx.execution(vertex.execution_id)
        if execution is not None and execution.phase == ph.STARTING:
            set_execution_phase(ctx, execution, ph.RUNNING)
        return
    parent = repo.get_vertex(ctx.conn, vertex.parent_id)
    if parent is not None and parent.phase in (ph.INITIALIZED, ph.READY, ph.STARTING):
        set_phase(ctx, parent, ph.RUNNING)


def transmit(ctx: Context, vertex: Row) -> None:
    """initialized -> ready and fire its start event."""
    set_phase(ctx, vertex, ph.READY)
    if vertex.kind in SCRIPT_KINDS:
        ctx.fire(ev.START_JOB, vertex=vertex)
    else:
        ctx.fire(ev.START_JOBNET, vertex=vertex)


# --- edges: passing the signal, joins, End ----------------------------------------------------


def pass_signal(ctx: Context, jobnet_id: str, origin: str | None) -> None:
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
            transmit(ctx, vertex)


def close_downstream(ctx: Context, jobnet_id: str, origin: str) -> None:
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
    finally_ = finally_of(ctx, jobnet)
    if finally_ is not None and jobnet.phase != ph.DYING and finally_.phase == ph.INITIALIZED:
        transmit(ctx, finally_)
        return
    finish_jobnet(ctx, jobnet, ok=not end_closed(ctx, jobnet))


def finally_of(ctx: Context, jobnet: Row) -> Row | None:
    for child in repo.children(ctx.conn, jobnet.id):
        if child.kind == FINALLY:
            return child
    return None


def end_closed(ctx: Context, jobnet: Row) -> bool:
    return any(e.phase in (ph.EDGE_CLOSED, ph.EDGE_CLOSING)
               for e in repo.incoming_edges(ctx.conn, jobnet.id, None))


def finish_jobnet(ctx: Context, jobnet: Row, *, ok: bool) -> None:
    if jobnet.phase in ph.FINAL:
        ctx.note("jobnet already finished", jobnet_id=jobnet.id, phase=jobnet.phase)
        return
    phase = ph.SUCCESS if ok else ph.ERROR
    set_phase(ctx, jobnet, phase, finished_at=ctx.now)
    name = ev.SUCCESS_JOBNET if ok else ev.ERROR_JOBNET
    ctx.fire(name, vertex=jobnet, level="info" if ok else "error",
             stop_reason=jobnet.stop_reason)
