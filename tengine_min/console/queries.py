"""Read-only queries of the store for the screens and the API.

Each function takes a Connection and returns plain dicts (times as aware datetimes), so the JSON
API and the templates show the same data. Labels are added by the caller (they depend on the
language); the allowed actions are decided here, once, by Tengine's rules (tengine-facts 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select

from ..model import phases as ph
from ..model.execution import BOX_KINDS
from ..model.ids import split_job_id
from ..store import repo
from ..store.schema import edges, events, executions, templates, vertices
from .filters import EventFilter, ExecutionFilter, TextFilter

JOB_EVENTS_LIMIT = 200


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


# --- events ---------------------------------------------------------------------------------


def list_events(conn: Connection, flt: EventFilter, page: int, per_page: int) -> Page:
    """Events matching `flt`, newest first, one page of them, each with the job and execution
    it names (when they exist) for the links."""
    where = flt.clause()
    total = conn.execute(select(func.count()).select_from(events).where(where)).scalar_one()
    rows = conn.execute(select(events).where(where)
                        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
                        .limit(per_page).offset((page - 1) * per_page)).all()
    items = [event_dict(row) for row in rows]
    add_links(conn, items)
    return Page(items, total, page, per_page)


def events_about(conn: Connection, vertex_id: str, limit: int = JOB_EVENTS_LIMIT) -> list[dict]:
    """The events whose source names a vertex (every job event's source ends with
    `/<root id>/<vertex id>`, a rerun's with `<vertex id>.<attempt>`), newest first."""
    rows = conn.execute(select(events)
                        .where(events.c.source_name.contains(vertex_id, autoescape=True))
                        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
                        .limit(limit)).all()
    items = [event_dict(row) for row in rows]
    add_links(conn, items)
    return items


def event_dict(row: Row) -> dict[str, Any]:
    return {"id": row.id, "key": row.key, "event_type_name": row.event_type_name,
            "source_name": row.source_name, "sender_name": row.sender_name,
            "occurred_at": row.occurred_at, "level": row.level, "confirmed": row.confirmed,
            "properties": row.properties or {}, "received_at": row.received_at,
            "job_id": None, "execution_id": None}


def named_ids(properties: dict[str, Any]) -> tuple[str | None, str | None]:
    """(vertex id, execution id) named by an event's properties, or by the properties of the
    event it reports on (`original_event` of `.error.tengined` / `.failed.tengined`)."""
    candidates = [properties]
    original = properties.get("original_event")
    if isinstance(original, dict) and isinstance(original.get("properties"), dict):
        candidates.append(original["properties"])
    vertex_id = execution_id = None
    for props in candidates:
        raw = props.get("target_job_id") or props.get("job_id") or props.get("target_jobnet_id")
        if vertex_id is None and isinstance(raw, str) and raw:
            vertex_id = split_job_id(raw)[0]
        raw = props.get("execution_id")
        if execution_id is None and isinstance(raw, str) and raw:
            execution_id = raw
    return vertex_id, execution_id


def add_links(conn: Connection, items: list[dict[str, Any]]) -> None:
    """Set `job_id` / `execution_id` of each event dict to what it names, if that exists."""
    wanted = [named_ids(item["properties"]) for item in items]
    vertex_ids = sorted({v for v, _ in wanted if v})
    execution_ids = sorted({e for _, e in wanted if e})
    known_vertices = {r.id for r in repo.vertices_by_ids(conn, vertex_ids)} if vertex_ids else set()
    known_executions = set()
    if execution_ids:
        known_executions = set(conn.execute(select(executions.c.id).where(
            executions.c.id.in_(execution_ids))).scalars())
    for item, (vertex_id, execution_id) in zip(items, wanted, strict=True):
        item["job_id"] = vertex_id if vertex_id in known_vertices else None
        item["execution_id"] = execution_id if execution_id in known_executions else None


# --- executions -----------------------------------------------------------------------------


def list_executions(conn: Connection, flt: ExecutionFilter, page: int, per_page: int) -> Page:
    where = flt.clause()
    total = conn.execute(select(func.count()).select_from(executions).where(where)).scalar_one()
    rows = conn.execute(select(executions).where(where)
                        .order_by(executions.c.created_at.desc(), executions.c.id.desc())
                        .limit(per_page).offset((page - 1) * per_page)).all()
    stuck = executions_with_stuck(conn, [row.id for row in rows])
    return Page([execution_dict(row, row.id in stuck) for row in rows], total, page, per_page)


def executions_with_stuck(conn: Connection, execution_ids: list[str]) -> set[str]:
    """The executions (of those given) with a stuck vertex inside."""
    if not execution_ids:
        return set()
    return set(conn.execute(select(vertices.c.execution_id).where(
        vertices.c.execution_id.in_(execution_ids), vertices.c.phase == ph.STUCK).distinct())
        .scalars())


def execution_dict(row: Row, stuck_inside: bool) -> dict[str, Any]:
    phase = row.phase
    return {
        "id": row.id, "root_jobnet_id": row.root_jobnet_id, "name": row.root_jobnet_name,
        "template_id": row.template_id, "description": row.description, "phase": phase,
        "phase_code": ph.phase_code(phase), "stop_reason": row.stop_reason,
        "stuck_inside": stuck_inside, "created_at": row.created_at,
        "started_at": row.started_at, "finished_at": row.finished_at,
        "timeout_min": row.timeout_min, "alert_min": row.alert_min,
        "actions": {
            "stop": phase in ph.STOPPABLE,
            "status": phase == ph.STUCK,
            "rerun": phase in ph.RESETTABLE,
        },
    }


def get_execution(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    row = repo.get_execution(conn, execution_id)
    if row is None:
        return None
    return execution_dict(row, bool(executions_with_stuck(conn, [row.id])))


def execution_detail(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    """The execution, its root's server and credential, and every vertex in tree order."""
    detail = get_execution(conn, execution_id)
    if detail is None:
        return None
    rows = repo.execution_vertices(conn, execution_id)
    next_ids = _next_ids(conn, execution_id)
    names = {row.id: row.name for row in rows}
    phases = {row.id: row.phase for row in rows}
    # Rows come in tree order, a parent before its children: one pass finds stuck ancestors.
    stuck_above: dict[str, bool] = {}
    tree = []
    for row in rows:
        parent_id = row.parent_id
        ancestor_stuck = parent_id is not None and (
            stuck_above.get(parent_id, False) or phases.get(parent_id) == ph.STUCK)
        stuck_above[row.id] = ancestor_stuck
        tree.append(vertex_dict(row, [{"id": i, "name": names.get(i, i)}
                                      for i in next_ids.get(row.id, [])], ancestor_stuck))
    root = tree[0] if tree else None
    if root is not None:
        detail["root_phase"] = root["phase"]
        detail["actions"]["status"] = detail["actions"]["status"] or root["phase"] == ph.STUCK
    detail["server"] = root["server"] if root else None
    detail["credential"] = root["credential"] if root else None
    detail["vertices"] = tree
    return detail


def _next_ids(conn: Connection, execution_id: str) -> dict[str, list[str]]:
    """Vertex id -> the sibling ids its edges lead to (End not included)."""
    result: dict[str, list[str]] = {}
    for origin, destination in conn.execute(
            select(edges.c.origin, edges.c.destination).where(
                edges.c.execution_id == execution_id, edges.c.origin.is_not(None),
                edges.c.destination.is_not(None)).order_by(edges.c.id)):
        result.setdefault(origin, []).append(destination)
    return result


def vertex_dict(row: Row, next_jobs: list[dict[str, str]], ancestor_stuck: bool) -> dict:
    phase = row.phase
    box = row.kind in BOX_KINDS
    return {
        "id": row.id, "execution_id": row.execution_id, "parent_id": row.parent_id,
        "position": row.position, "depth": row.depth, "kind": row.kind, "name": row.name,
        "name_path": row.name_path, "description": row.description,
        "template_id": row.template_id, "was_expansion": row.was_expansion,
        "phase": phase, "phase_code": ph.phase_code(phase), "stop_reason": row.stop_reason,
        "reason": row.reason, "script": row.script, "server": row.server_name,
        "credential": row.credential_name, "killing_signals": list(row.killing_signals or []),
        "killing_signal_interval": row.killing_signal_interval, "attempt": row.attempt,
        "pid": row.pid, "exit_status": row.exit_status, "signal": row.signal,
        "started_at": row.started_at, "finished_at": row.finished_at,
        "result": row.result, "late_result": row.late_result,
        "last_heartbeat_at": row.last_heartbeat_at, "next": next_jobs,
        "ancestor_stuck": ancestor_stuck,
        "actions": {
            "stop": not box and phase in ph.STOPPABLE,
            "status": not box and (phase == ph.STUCK or ancestor_stuck),
            "rerun": not box and phase in ph.RESETTABLE,
        },
    }


def vertex_detail(conn: Connection, vertex_id: str) -> dict[str, Any] | None:
    """One vertex with its execution, ancestors, children, next jobs and events."""
    row = repo.get_vertex(conn, vertex_id)
    if row is None:
        return None
    ancestors = []
    parent_id = row.parent_id
    while parent_id is not None:
        parent = repo.get_vertex(conn, parent_id)
        if parent is None:
            break
        ancestors.append(parent)
        parent_id = parent.parent_id
    ancestors.reverse()
    ancestor_stuck = any(a.phase == ph.STUCK for a in ancestors)
    next_ids = _next_ids(conn, row.execution_id).get(row.id, [])
    names = {r.id: r.name for r in repo.vertices_by_ids(conn, next_ids)} if next_ids else {}
    detail = vertex_dict(row, [{"id": i, "name": names.get(i, i)} for i in next_ids],
                         ancestor_stuck)
    # A person may need to set any job by hand (a result the core will never get): the
    # detail screen offers the status change whatever the phase; the lists follow Tengine.
    detail["actions"]["status"] = row.kind not in BOX_KINDS
    detail["execution"] = get_execution(conn, row.execution_id)
    detail["ancestors"] = [{"id": a.id, "name": a.name, "name_path": a.name_path,
                            "kind": a.kind, "phase": a.phase, "stop_reason": a.stop_reason}
                           for a in ancestors]
    detail["children"] = [{"id": c.id, "name": c.name, "kind": c.kind, "phase": c.phase,
                           "stop_reason": c.stop_reason}
                          for c in repo.children(conn, row.id)]
    detail["events"] = events_about(conn, row.id)
    return detail


# --- templates ------------------------------------------------------------------------------


def list_templates(conn: Connection, name: TextFilter | None = None) -> list[dict[str, Any]]:
    statement = select(templates.c.id, templates.c.name, templates.c.file, templates.c.line,
                       templates.c.loaded_at, templates.c.tree).order_by(templates.c.name)
    if name is not None:
        statement = statement.where(name.clause(templates.c.name))
    return [template_dict(row) for row in conn.execute(statement)]


def get_template(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(templates.c.id, templates.c.name, templates.c.file,
                              templates.c.line, templates.c.loaded_at, templates.c.tree)
                       .where(templates.c.name == name)).first()
    return None if row is None else template_dict(row)


def template_dict(row: Row) -> dict[str, Any]:
    tree = row.tree or {}
    jobs = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("kind") in ("job", "hadoop_job_run"):
            jobs += 1
        stack.extend(node.get("children") or [])
    return {"id": row.id, "name": row.name,
            "description": tree.get("description") or row.name,
            "file": row.file, "line": row.line, "loaded_at": row.loaded_at,
            "server": (tree.get("options") or {}).get("server_name"),
            "credential": (tree.get("options") or {}).get("credential_name"),
            "jobs": jobs}
