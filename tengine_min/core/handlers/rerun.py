"""Rerun (再実行): a job or jobnet only (spot), or from it on."""

from __future__ import annotations

from collections import deque

from sqlalchemy import Row

from ...model import phases as ph
from ...model.execution import SCRIPT_KINDS
from ...model.ids import split_job_id
from ...store import repo
from .context import Context
from .flow import finally_of, set_execution_phase, set_phase, transmit

_LIVE = frozenset({ph.READY, ph.STARTING, ph.RUNNING, ph.DYING})
_RESET_FIELDS = dict(phase=ph.INITIALIZED, stop_reason=None, pid=None, exit_status=None,
                     signal=None, reason=None, result=None, late_result=None, started_at=None,
                     finished_at=None, rerun_spot=False, heartbeat_key=None,
                     last_heartbeat_at=None)


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
    execution = ctx.execution_of(target)
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
            finally_ = finally_of(ctx, container)
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
                set_phase(ctx, jobnet, ph.RUNNING, finished_at=None, stop_reason=None)
        if execution.phase != ph.RUNNING:
            set_execution_phase(ctx, execution, ph.RUNNING, finished_at=None, stop_reason=None)
    transmit(ctx, repo.require_vertex(ctx.conn, target.id))


def _ancestors(ctx: Context, vertex: Row) -> list[Row]:
    """From the root down to the parent of `vertex`."""
    chain = []
    parent_id = vertex.parent_id
    while parent_id is not None:
        parent = repo.require_vertex(ctx.conn, parent_id)
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
