"""Status change (ステータス変更): a person sets a job or jobnet to initialized, success or error.

The console validates the request and sends `change_status.job.job.tengine` {target_job_id or
target_jobnet_id, status}; the core applies it here, because the core alone writes execution
state. As in Tengine it fires nothing, so nothing after the vertex starts (a rerun does that).
"""

from __future__ import annotations

from typing import Any

from ...model import phases as ph
from ...model.execution import BOX_KINDS
from ...model.ids import split_job_id
from ...store import repo
from .context import Context


def on_change_status(ctx: Context) -> None:
    """The new phase; a final one sets the end time if there was none. The stop reason is kept
    (a force-stopped job set to error still reads エラー終了(強制停止済)). The root jobnet's
    execution takes the same status, so the execution list shows it."""
    raw = ctx.props.get("target_job_id") or ctx.props.get("target_jobnet_id")
    vertex = repo.get_vertex(ctx.conn, split_job_id(raw)[0]) if isinstance(raw, str) else None
    if vertex is None:
        ctx.note("unknown status change target: ignored", target=raw)
        return
    status = ctx.props.get("status")
    if status not in ph.SETTABLE:
        ctx.note("status change refused: only " + ", ".join(ph.SETTABLE) + " can be set",
                 target=vertex.id, status=status)
        return
    if vertex.kind in BOX_KINDS:
        ctx.note("status change refused: a box mirrors its hadoop_job_run", target=vertex.id,
                 kind=vertex.kind)
        return
    fields: dict[str, Any] = {}
    if status in ph.FINAL and vertex.finished_at is None:
        fields["finished_at"] = ctx.now
    # The store's own set_phase, not flow.set_phase: a status change moves this vertex only.
    repo.set_phase(ctx.conn, vertex.id, status, log=ctx.log, **fields)
    if vertex.parent_id is None:
        repo.set_execution_phase(ctx.conn, vertex.execution_id, status, log=ctx.log, **fields)
        ctx.forget_execution(vertex.execution_id)
    ctx.note("status changed by hand", job_id=vertex.id, name_path=vertex.name_path,
             execution_id=vertex.execution_id, old=vertex.phase, new=status)
