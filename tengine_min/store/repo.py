"""Reads and writes of the store: plain functions that take a Connection inside the caller's
transaction. Nothing here commits; the caller (the kernel, the console, a loader) decides.

Times default to now in UTC; callers that need one clock for a whole transaction pass `now`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Row,
    Update,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from ..events.envelope import Event
from ..logfmt import kv
from ..model.environment import job_environment
from ..model.execution import FINALLY, JOBNET, Execution
from ..model.nodes import Definitions, Node, Sequencing, UnknownOption, Where
from ..model.phases import EDGE_ACTIVE, INITIALIZED
from .schema import (
    driver_tasks,
    edges,
    events,
    executions,
    outbox,
    processed_events,
    schedules,
    templates,
    vertices,
)

log_default = logging.getLogger("tengine.core")

# Kinds whose children are connected by edges the state machine walks. A hadoop_job_run runs its
# script as a job; its hadoop_job boxes only mirror its phase, so they get no edges.
EDGE_CONTAINERS = (JOBNET, FINALLY)


# Statements of the hot paths, built once: building a statement costs several times more than
# running it on SQLite, and the core runs these for every event.
_GET_EXECUTION = select(executions).where(executions.c.id == bindparam("_id"))
_EXECUTION_PHASE = select(executions.c.phase).where(executions.c.id == bindparam("_id"))
_UPDATE_EXECUTION = update(executions).where(executions.c.id == bindparam("_id"))
_GET_VERTEX = select(vertices).where(vertices.c.id == bindparam("_id"))
_VERTEX_PHASE = select(vertices.c.phase, vertices.c.name_path).where(
    vertices.c.id == bindparam("_id"))
_UPDATE_VERTEX = update(vertices).where(vertices.c.id == bindparam("_id"))
_CHILDREN = select(vertices).where(vertices.c.parent_id == bindparam("_id")).order_by(
    vertices.c.position)
_GET_EDGE = select(edges).where(edges.c.id == bindparam("_id"))
_UPDATE_EDGE = update(edges).where(edges.c.id == bindparam("_id"))
_EDGES_OF = select(edges).where(edges.c.jobnet_id == bindparam("_id")).order_by(edges.c.id)
_INTO = select(edges).where(edges.c.destination == bindparam("_id")).order_by(edges.c.id)
_OUT_OF = select(edges).where(edges.c.origin == bindparam("_id")).order_by(edges.c.id)
_INTO_END = select(edges).where(edges.c.jobnet_id == bindparam("_id"),
                                edges.c.destination.is_(None)).order_by(edges.c.id)
_OUT_OF_START = select(edges).where(edges.c.jobnet_id == bindparam("_id"),
                                    edges.c.origin.is_(None)).order_by(edges.c.id)
_IS_PROCESSED = select(processed_events.c.key).where(
    processed_events.c.key == bindparam("_key"),
    processed_events.c.event_type_name == bindparam("_type"))
_INSERT_PROCESSED = insert(processed_events)
_INSERT_EVENT = insert(events)
_SERIES_ROW = select(events.c.id, events.c.event_type_name).where(
    events.c.key == bindparam("_key"))
_UPDATE_EVENT = update(events).where(events.c.id == bindparam("_id"))
_INSERT_OUTBOX = insert(outbox)
_INSERT_TASK = insert(driver_tasks)
_OPEN_TASKS_OF = select(driver_tasks).where(
    driver_tasks.c.vertex_id == bindparam("_id"), driver_tasks.c.finished_at.is_(None)
).order_by(driver_tasks.c.id)


class StoreError(ValueError):
    """Input the store cannot take (an option that is not JSON, an unknown id); says what and
    where. Raised before anything is written by the function that raises it."""


class MissingRow(LookupError):
    """A row that must be there is not: the execution of a stored vertex, a vertex just
    written. The store was changed underneath (or is damaged); says which row."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    """An event time (ISO 8601 with a zone, as the envelope guarantees) as an aware datetime."""
    return datetime.fromisoformat(value)


# --- templates ------------------------------------------------------------------------------

def save_templates(conn: Connection, defs: Definitions,
                   roots: Iterable[Node | str] | None = None, *,
                   now: datetime | None = None) -> list[str]:
    """Store root jobnet templates of `defs` (all of them, or those named/given in `roots`); a
    template with the same name as a stored one replaces it. Returns the names stored."""
    now = now or utcnow()
    if roots is None:
        chosen = list(defs.roots)
    else:
        chosen = []
        for item in roots:
            node = item if isinstance(item, Node) else defs.root(item)
            if node is None:
                raise StoreError(f"no root jobnet named {item!r} in the definitions")
            chosen.append(node)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for node in chosen:
        if not node.is_root:
            raise StoreError(f"{node.path} ({node.where}) is not a root jobnet")
        if node.name in seen:  # the validator reports duplicates; store the first, as defs.root
            continue
        seen.add(node.name)
        rows.append({"id": node.id, "name": node.name, "file": node.where.file or None,
                     "line": node.where.line or None, "tree": node_to_dict(node),
                     "loaded_at": now})
    if not rows:
        return []
    conn.execute(delete(templates).where(templates.c.name.in_([r["name"] for r in rows])))
    conn.execute(delete(templates).where(templates.c.id.in_([r["id"] for r in rows])))
    conn.execute(insert(templates), rows)
    return [r["name"] for r in rows]


def load_definitions(conn: Connection) -> Definitions:
    """Every stored root template rebuilt as Nodes (ids kept), so `instantiate` runs from the
    store exactly as from the files."""
    defs = Definitions()
    for row in conn.execute(select(templates.c.tree).order_by(templates.c.loaded_at,
                                                              templates.c.name)):
        defs.roots.append(node_from_dict(row.tree))
    return defs


def node_to_dict(root: Node) -> dict[str, Any]:
    """A template tree as plain JSON data (iterative: deep nesting cannot overflow the stack)."""
    out: dict[str, Any] = {}
    stack: list[tuple[Node, dict[str, Any]]] = [(root, out)]
    while stack:
        node, data = stack.pop()
        for key, value in node.options.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise StoreError(
                    f"{node.path} ({node.where}): option {key} has a value that cannot be "
                    f"stored ({type(value).__name__}); use a string, number, list or mapping"
                ) from None
        data.update({
            "id": node.id, "kind": node.kind, "name": node.name,
            "file": node.where.file, "line": node.where.line,
            "description": node.description, "script": node.script, "to": list(node.to),
            "options": dict(node.options),
            "unknown_options": [{"key": u.key, "file": u.where.file, "line": u.where.line}
                                for u in node.unknown_options],
            "sequencing": [{"kind": s.kind, "file": s.where.file, "line": s.where.line,
                            "names": list(s.names)} for s in node.sequencing],
            "children": [],
        })
        for child in node.children:
            child_data: dict[str, Any] = {}
            data["children"].append(child_data)
            stack.append((child, child_data))
    return out


def node_from_dict(data: dict[str, Any]) -> Node:
    """The inverse of node_to_dict."""
    def make(d: dict[str, Any]) -> Node:
        try:
            return Node(
                kind=d["kind"], name=d["name"],
                where=Where(d.get("file") or "", d.get("line") or 0),
                description=d.get("description"), script=d.get("script"),
                to=list(d.get("to") or []), options=dict(d.get("options") or {}),
                unknown_options=[UnknownOption(u["key"], Where(u.get("file") or "",
                                                               u.get("line") or 0))
                                 for u in d.get("unknown_options") or []],
                sequencing=[Sequencing(s["kind"], Where(s.get("file") or "", s.get("line") or 0),
                                       list(s.get("names") or []))
                            for s in d.get("sequencing") or []],
                id=d["id"])
        except (KeyError, TypeError) as exc:
            raise StoreError(f"a stored template node is damaged (missing {exc}): "
                             f"{str(d)[:120]}") from None

    root = make(data)
    stack = [(root, data)]
    while stack:
        node, d = stack.pop()
        for child_data in d.get("children") or []:
            child = node.add(make(child_data))
            stack.append((child, child_data))
    return root


# --- executions -----------------------------------------------------------------------------

def create_execution(conn: Connection, execution: Execution, *, timeout_min: int | None = None,
                     alert_min: int | None = None, description: str | None = None,
                     now: datetime | None = None) -> None:
    """Store a new execution: its row, one row per vertex (jobs with their MM_* environment) and
    the edges of every jobnet, all initialized/active. Bulk inserts, so 10,000 jobs take well
    under a second on SQLite."""
    now = now or utcnow()
    for name, value in (("timeout_min", timeout_min), ("alert_min", alert_min)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise StoreError(f"{name} must be a whole number of minutes >= 0, got {value!r}")
    root = execution.root
    conn.execute(insert(executions), [{
        "id": execution.id, "root_jobnet_id": root.id, "root_jobnet_name": root.name,
        "template_id": root.template_id, "phase": INITIALIZED, "stop_reason": None,
        "created_at": now, "timeout_min": timeout_min or None, "alert_min": alert_min or None,
        "description": description if description is not None else root.description,
    }])
    vertex_rows = []
    edge_rows = []
    for position, (v, depth) in enumerate(execution.walk()):
        vertex_rows.append({
            "id": v.id, "execution_id": execution.id, "parent_id": v.parent_id,
            "position": position, "depth": depth, "kind": v.kind, "name": v.name,
            "name_path": v.name_path, "description": v.description,
            "template_id": v.template_id, "was_expansion": v.was_expansion,
            "phase": INITIALIZED, "stop_reason": None, "script": v.script,
            "preparation": v.preparation, "server_name": v.server_name,
            "credential_name": v.credential_name, "killing_signals": list(v.killing_signals),
            "killing_signal_interval": float(v.killing_signal_interval),
            "env": job_environment(execution, v) if v.runs_script else None,
            "attempt": 0, "rerun_spot": False,
        })
        if v.kind not in EDGE_CONTAINERS:
            continue
        base = {"execution_id": execution.id, "jobnet_id": v.id, "phase": EDGE_ACTIVE}
        if not v.start_ids:
            # Nothing is booted: Start leads straight to End (an empty jobnet succeeds).
            edge_rows.append({**base, "origin": None, "destination": None})
            continue
        edge_rows.extend({**base, "origin": None, "destination": d} for d in v.start_ids)
        edge_rows.extend({**base, "origin": a, "destination": b} for a, b in v.edges)
        edge_rows.extend({**base, "origin": o, "destination": None} for o in v.end_ids)
    conn.execute(insert(vertices), vertex_rows)
    if edge_rows:
        conn.execute(insert(edges), edge_rows)


def get_execution(conn: Connection, execution_id: str) -> Row | None:
    return conn.execute(_GET_EXECUTION, {"_id": execution_id}).first()


def require_execution(conn: Connection, execution_id: str) -> Row:
    """The execution `execution_id`, known to exist (a stored vertex's); else MissingRow."""
    row = get_execution(conn, execution_id)
    if row is None:
        raise MissingRow(f"no execution {execution_id!r} in the store")
    return row


def execution_of_root(conn: Connection, root_jobnet_id: str) -> Row | None:
    return conn.execute(select(executions).where(
        executions.c.root_jobnet_id == root_jobnet_id)).first()


def set_execution_phase(conn: Connection, execution_id: str, phase: str, *,
                        log: logging.Logger | None = None, **fields: Any) -> str | None:
    """Move an execution to `phase` (plus other columns in `fields`); logs the change as one
    line. Returns the phase it had, or None when there is no such execution."""
    row = conn.execute(_EXECUTION_PHASE, {"_id": execution_id}).first()
    if row is None:
        return None
    conn.execute(_UPDATE_EXECUTION, {"_id": execution_id, "phase": phase, **fields})
    if row.phase != phase:
        (log or log_default).info("phase changed %s %s -> %s", execution_id, row.phase, phase)
    return row.phase


def update_execution(conn: Connection, execution_id: str, **fields: Any) -> None:
    conn.execute(_UPDATE_EXECUTION, {"_id": execution_id, **fields})


# --- vertices -------------------------------------------------------------------------------

def get_vertex(conn: Connection, vertex_id: str) -> Row | None:
    return conn.execute(_GET_VERTEX, {"_id": vertex_id}).first()


def require_vertex(conn: Connection, vertex_id: str) -> Row:
    """The vertex `vertex_id`, known to exist (read again after a write, a stored parent);
    else MissingRow."""
    row = get_vertex(conn, vertex_id)
    if row is None:
        raise MissingRow(f"no vertex {vertex_id!r} in the store")
    return row


def children(conn: Connection, parent_id: str) -> list[Row]:
    """The direct children of a vertex in declaration order (finally included)."""
    return list(conn.execute(_CHILDREN, {"_id": parent_id}))


def execution_vertices(conn: Connection, execution_id: str) -> list[Row]:
    """Every vertex of an execution in tree order (root first)."""
    return list(conn.execute(select(vertices).where(vertices.c.execution_id == execution_id)
                             .order_by(vertices.c.position)))


def subtree_ids(conn: Connection, vertex_id: str) -> list[str]:
    """`vertex_id` and all its descendants, level by level."""
    result = [vertex_id]
    level = [vertex_id]
    while level:
        level = [r.id for r in conn.execute(select(vertices.c.id)
                                            .where(vertices.c.parent_id.in_(level)))]
        result.extend(level)
    return result


def set_phase(conn: Connection, vertex_id: str, phase: str, *,
              log: logging.Logger | None = None, **fields: Any) -> str | None:
    """Move a vertex to `phase` (plus other columns in `fields`) and log
    `phase changed <id> <from> -> <to>` as one line. Returns the previous phase, or None when
    there is no such vertex."""
    row = conn.execute(_VERTEX_PHASE, {"_id": vertex_id}).first()
    if row is None:
        return None
    conn.execute(_UPDATE_VERTEX, {"_id": vertex_id, "phase": phase, **fields})
    if row.phase != phase:
        (log or log_default).info("phase changed %s %s -> %s %s", vertex_id, row.phase, phase,
                                  kv(name_path=row.name_path))
    return row.phase


def update_vertex(conn: Connection, vertex_id: str, **fields: Any) -> None:
    conn.execute(_UPDATE_VERTEX, {"_id": vertex_id, **fields})


def update_vertices(conn: Connection, vertex_ids: Sequence[str], **fields: Any) -> None:
    for chunk in _chunks(vertex_ids):
        conn.execute(update(vertices).where(vertices.c.id.in_(chunk)).values(**fields))


def vertices_by_ids(conn: Connection, vertex_ids: Sequence[str]) -> list[Row]:
    rows: list[Row] = []
    for chunk in _chunks(vertex_ids):
        rows.extend(conn.execute(select(vertices).where(vertices.c.id.in_(chunk))))
    return rows


# --- edges ----------------------------------------------------------------------------------

def get_edge(conn: Connection, edge_id: int) -> Row | None:
    return conn.execute(_GET_EDGE, {"_id": edge_id}).first()


def edges_of_jobnet(conn: Connection, jobnet_id: str) -> list[Row]:
    return list(conn.execute(_EDGES_OF, {"_id": jobnet_id}))


def incoming_edges(conn: Connection, jobnet_id: str, vertex_id: str | None) -> list[Row]:
    """Edges into a child of `jobnet_id`, or into its End when `vertex_id` is None."""
    if vertex_id is None:
        return list(conn.execute(_INTO_END, {"_id": jobnet_id}))
    return list(conn.execute(_INTO, {"_id": vertex_id}))


def outgoing_edges(conn: Connection, jobnet_id: str, vertex_id: str | None) -> list[Row]:
    """Edges out of a child of `jobnet_id`, or out of its Start when `vertex_id` is None."""
    if vertex_id is None:
        return list(conn.execute(_OUT_OF_START, {"_id": jobnet_id}))
    return list(conn.execute(_OUT_OF, {"_id": vertex_id}))


def set_edge_phase(conn: Connection, edge: Row, phase: str, *,
                   log: logging.Logger | None = None) -> None:
    """Move one edge to `phase`, logging `edge phase changed <id> <from> -> <to>`."""
    if edge.phase == phase:
        return
    conn.execute(_UPDATE_EDGE, {"_id": edge.id, "phase": phase})
    (log or log_default).info("edge phase changed %s %s -> %s %s", edge.id, edge.phase, phase,
                              kv(jobnet_id=edge.jobnet_id))


def reopen_edges(conn: Connection, jobnet_ids: Sequence[str], edge_ids: Sequence[int], *,
                 log: logging.Logger | None = None) -> None:
    """Set active again every edge inside the given jobnets plus the given edges (a rerun)."""
    for chunk in _chunks(jobnet_ids):
        conn.execute(update(edges).where(edges.c.jobnet_id.in_(chunk)).values(phase=EDGE_ACTIVE))
    for chunk in _chunks(edge_ids):
        conn.execute(update(edges).where(edges.c.id.in_(chunk)).values(phase=EDGE_ACTIVE))
    (log or log_default).info("edges reopened %s", kv(jobnets=len(jobnet_ids),
                                                       edges=len(edge_ids)))


# --- events ---------------------------------------------------------------------------------

def is_series_type(event_type_name: str) -> bool:
    """Heartbeat-series types share one key (and one events row) per process (Tengine)."""
    return (event_type_name.endswith(".heartbeat.tengine")
            or (event_type_name.startswith("finished.process.")
                and event_type_name.endswith(".tengine")))


def is_plain_heartbeat(event_type_name: str) -> bool:
    """A repeating heartbeat: every one of a series carries the same key and type, so it is
    never 'already processed'."""
    return event_type_name.endswith(".heartbeat.tengine") and not event_type_name.startswith(
        "expired.")


def event_to_dict(event: Event) -> dict[str, Any]:
    return dataclasses.asdict(event)


def event_from_dict(data: dict[str, Any]) -> Event:
    return Event(**data)


def processed_key(event: Event) -> str:
    """The key an event is deduplicated by: its own, except for an expiry verdict. A verdict
    shares its heartbeat series' key (the event screen shows one row per series), but a job can
    get a second verdict after a first one was overtaken by a heartbeat; its `verdict_id` tells
    a redelivery of one verdict from the next verdict."""
    verdict = event.properties.get("verdict_id")
    if event.event_type_name.startswith("expired.") and isinstance(verdict, str) and verdict:
        return f"{event.key}#{verdict}"[:255]
    return event.key


def is_processed(conn: Connection, event: Event) -> bool:
    return conn.execute(_IS_PROCESSED, {"_key": processed_key(event),
                                        "_type": event.event_type_name}).first() is not None


def reopen_heartbeat_series(conn: Connection, key: str) -> None:
    """An expiry verdict that was ignored (a newer heartbeat overtook it) gives its series' row
    back to the heartbeats: it shows the series as a heartbeat again, which the next heartbeat
    then brings up to date (a heartbeat never replaces a verdict the core applied)."""
    for row in conn.execute(_SERIES_ROW, {"_key": key}).all():
        if row.event_type_name.startswith("expired.") and is_series_type(row.event_type_name):
            conn.execute(_UPDATE_EVENT, {
                "_id": row.id, "event_type_name": row.event_type_name.removeprefix("expired."),
                "level": "debug", "confirmed": True})


def record_event(conn: Connection, event: Event, *, now: datetime | None = None) -> bool:
    """Store `event` and mark it processed. Returns False (and changes nothing) when an event
    with this key and type was already processed: a redelivery. Heartbeats of one series update
    their one row; a finished row is never turned back into a heartbeat by a late one."""
    now = now or utcnow()
    if is_processed(conn, event):
        return False
    _store_event(conn, event, now)
    if not is_plain_heartbeat(event.event_type_name):
        conn.execute(_INSERT_PROCESSED, [{"key": processed_key(event),
                                          "event_type_name": event.event_type_name,
                                          "processed_at": now}])
    return True


def _store_event(conn: Connection, event: Event, now: datetime) -> None:
    values = {
        "key": event.key, "event_type_name": event.event_type_name,
        "source_name": event.source_name, "sender_name": event.sender_name,
        "occurred_at": datetime.fromisoformat(event.occurred_at), "level": event.level,
        "confirmed": event.level in ("debug", "info"), "properties": event.properties,
        "received_at": now,
    }
    if is_series_type(event.event_type_name):
        for row in conn.execute(_SERIES_ROW, {"_key": event.key}).all():
            if not is_series_type(row.event_type_name):
                continue
            if row.event_type_name.startswith("finished.process.") and not \
                    event.event_type_name.startswith("finished.process."):
                return  # the series already ended; a late heartbeat does not reopen it
            if is_plain_heartbeat(event.event_type_name) and \
                    not is_plain_heartbeat(row.event_type_name):
                return  # a heartbeat never hides the expiry verdict the screen shows
            conn.execute(_UPDATE_EVENT, {"_id": row.id, **values})
            return
    # Not processed yet, so not stored either (both happen in one transaction).
    conn.execute(_INSERT_EVENT, [values])


# --- outbox ---------------------------------------------------------------------------------

def enqueue(conn: Connection, event: Event, *, now: datetime | None = None) -> int:
    """Append an event to the outbox; the relay publishes it after the commit."""
    result = conn.execute(_INSERT_OUTBOX, {"event": event_to_dict(event),
                                          "created_at": now or utcnow()})
    return _inserted_id(result)


def pending_outbox(conn: Connection, limit: int = 100) -> list[tuple[int, Event]]:
    """Unpublished outbox rows, oldest first, as (id, event)."""
    rows = conn.execute(select(outbox.c.id, outbox.c.event).where(outbox.c.published_at.is_(None))
                        .order_by(outbox.c.id).limit(limit))
    return [(row.id, event_from_dict(row.event)) for row in rows]


def mark_published(conn: Connection, ids: Iterable[int], *, now: datetime | None = None) -> None:
    now = now or utcnow()
    for chunk in _chunks(list(ids)):
        conn.execute(update(outbox).where(outbox.c.id.in_(chunk)).values(published_at=now))


# --- schedules ------------------------------------------------------------------------------

def add_schedule(conn: Connection, schedule_id: str, execution_id: str, event_type_name: str,
                 fire_at: datetime) -> None:
    conn.execute(insert(schedules), [{"id": schedule_id, "execution_id": execution_id,
                                      "event_type_name": event_type_name, "fire_at": fire_at}])


def cancel_schedules(conn: Connection, execution_id: str, *, now: datetime | None = None) -> int:
    """Cancel the execution's schedules that have not fired; returns how many."""
    result = conn.execute(update(schedules).where(
        schedules.c.execution_id == execution_id, schedules.c.fired_at.is_(None),
        schedules.c.cancelled_at.is_(None)).values(cancelled_at=now or utcnow()))
    return result.rowcount


def due_schedules(conn: Connection, now: datetime) -> list[Row]:
    return list(conn.execute(select(schedules).where(
        schedules.c.fired_at.is_(None), schedules.c.cancelled_at.is_(None),
        schedules.c.fire_at <= now).order_by(schedules.c.fire_at, schedules.c.id)))


def mark_schedule_fired(conn: Connection, schedule_id: str, now: datetime) -> bool:
    """Mark one schedule fired; False if it had already fired or was cancelled meanwhile."""
    result = conn.execute(update(schedules).where(
        schedules.c.id == schedule_id, schedules.c.fired_at.is_(None),
        schedules.c.cancelled_at.is_(None)).values(fired_at=now))
    return result.rowcount == 1


def schedules_of(conn: Connection, execution_id: str) -> list[Row]:
    return list(conn.execute(select(schedules).where(schedules.c.execution_id == execution_id)
                             .order_by(schedules.c.fire_at)))


# --- driver tasks ---------------------------------------------------------------------------

def add_driver_task(conn: Connection, kind: str, vertex_id: str, *,
                    now: datetime | None = None) -> int:
    result = conn.execute(_INSERT_TASK, {"kind": kind, "vertex_id": vertex_id,
                                        "requested_at": now or utcnow()})
    return _inserted_id(result)


def get_driver_task(conn: Connection, task_id: int) -> Row | None:
    return conn.execute(select(driver_tasks).where(driver_tasks.c.id == task_id)).first()


def finish_driver_tasks(conn: Connection, vertex_id: str, outcome: str, *,
                        kind: str | None = None, task_id: int | None = None,
                        now: datetime | None = None) -> int:
    """Close the open driver tasks of a vertex (one by id, or all of a kind, or all)."""
    statement = _FINISH_TASKS[(kind is not None, task_id is not None)]
    result = conn.execute(statement, {"_id": vertex_id, "_kind": kind, "_task": task_id,
                                      "finished_at": now or utcnow(), "outcome": outcome})
    return result.rowcount


def _finish_tasks_statement(by_kind: bool, by_id: bool) -> Update:
    where = [driver_tasks.c.vertex_id == bindparam("_id"), driver_tasks.c.finished_at.is_(None)]
    if by_kind:
        where.append(driver_tasks.c.kind == bindparam("_kind"))
    if by_id:
        where.append(driver_tasks.c.id == bindparam("_task"))
    return update(driver_tasks).where(*where)


_FINISH_TASKS = {(by_kind, by_id): _finish_tasks_statement(by_kind, by_id)
                 for by_kind in (False, True) for by_id in (False, True)}


def open_driver_tasks_of(conn: Connection, vertex_id: str) -> list[Row]:
    return list(conn.execute(_OPEN_TASKS_OF, {"_id": vertex_id}))


def open_driver_tasks(conn: Connection) -> list[Row]:
    return list(conn.execute(select(driver_tasks).where(driver_tasks.c.finished_at.is_(None))
                             .order_by(driver_tasks.c.id)))


def _inserted_id(result: CursorResult[Any]) -> int:
    """The id an insert of one row gave it."""
    key = result.inserted_primary_key
    if key is None:  # only a statement that is not an insert has none
        raise TypeError("not the result of an insert")
    return int(key[0])


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """Bound IN (...) lists: SQLite limits the number of bound parameters per statement."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
