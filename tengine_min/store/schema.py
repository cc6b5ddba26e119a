"""The tables of the store, in SQLAlchemy Core: portable to SQLite and PostgreSQL.

Phases are stored by key ("running"); times are UTC (`UtcDateTime`); structured values are
`sqlalchemy.JSON`. Ids of templates, executions and vertices are the 24-hex strings the model
makes (Tengine's ObjectId shape), so they match the MM_* variables and the console.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

metadata = MetaData()

ID = String(64)  # runtime / template ids (24 hex today; room for a wider id scheme)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime, the same on SQLite
    (which has no time zones) and PostgreSQL, so comparisons never mix naive and aware values."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware (UTC) times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None,
                             dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Root jobnet templates as loaded; the latest load of a name replaces the earlier one.
templates = Table(
    "templates", metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("file", Text),
    Column("line", Integer),
    Column("tree", JSON, nullable=False),  # the serialized template Node tree
    Column("loaded_at", UtcDateTime, nullable=False),
)

executions = Table(
    "executions", metadata,
    Column("id", ID, primary_key=True),
    Column("root_jobnet_id", ID, nullable=False),
    Column("root_jobnet_name", String(255), nullable=False),
    Column("template_id", ID),  # the root template it was made from
    Column("phase", String(16), nullable=False),
    Column("stop_reason", String(16)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("timeout_min", Integer),  # 強制停止設定: stop after N minutes (None/0 = none)
    Column("alert_min", Integer),  # 警告設定: alert after N minutes (None/0 = none)
    Column("description", Text),
)
Index("ix_executions_created_at", executions.c.created_at)

# One row per runtime named vertex (jobnet, finally, job, hadoop kinds).
vertices = Table(
    "vertices", metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=False),
    Column("parent_id", ID, ForeignKey("vertices.id")),
    Column("position", Integer, nullable=False),  # tree order in the execution (root 0)
    Column("depth", Integer, nullable=False),  # root 0; the console indents by it
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("name_path", Text, nullable=False),
    Column("description", Text),
    Column("template_id", ID),
    Column("was_expansion", Boolean, nullable=False, default=False),
    Column("phase", String(16), nullable=False),
    Column("stop_reason", String(16)),
    Column("script", Text),
    Column("preparation", Text),
    Column("server_name", String(255)),
    Column("credential_name", String(255)),
    Column("killing_signals", JSON),
    Column("killing_signal_interval", Float),
    Column("env", JSON),  # the MM_* variables of a job
    Column("attempt", Integer, nullable=False, default=0),  # starts requested so far (reruns)
    Column("rerun_spot", Boolean, nullable=False, default=False),  # running as a spot rerun
    Column("pid", Integer),
    Column("exit_status", Integer),
    Column("signal", String(32)),
    Column("reason", Text),  # what went wrong, as a person reads it
    Column("result", JSON),  # excerpts, spool paths, dropped counts from the watcher
    Column("late_result", JSON),  # a result that arrived after the phase was decided
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("heartbeat_key", String(64)),
    Column("last_heartbeat_at", UtcDateTime),
)
Index("ix_vertices_execution", vertices.c.execution_id, vertices.c.position)
Index("ix_vertices_parent", vertices.c.parent_id)
Index("ix_vertices_phase", vertices.c.phase)  # the monitors scan running jobs every second

# Edges of one jobnet. origin NULL = its Start, destination NULL = its End.
edges = Table(
    "edges", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=False),
    Column("jobnet_id", ID, ForeignKey("vertices.id"), nullable=False),
    Column("origin", ID, ForeignKey("vertices.id")),
    Column("destination", ID, ForeignKey("vertices.id")),
    Column("phase", String(16), nullable=False),
)
Index("ix_edges_jobnet", edges.c.jobnet_id)
Index("ix_edges_origin", edges.c.origin)
Index("ix_edges_destination", edges.c.destination)

# Every event the core received. A heartbeat series (job.heartbeat / expired / finished.process)
# shares one key and so one row, whose type changes (as Tengine's event list shows it).
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("event_type_name", String(255), nullable=False),
    Column("source_name", Text, nullable=False, default=""),
    Column("sender_name", Text, nullable=False, default=""),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("level", String(8), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    # A key is unique per type: a heartbeat series is one row whose type changes.
    UniqueConstraint("key", "event_type_name", name="uq_events_key_type"),
)
Index("ix_events_key", events.c.key)
Index("ix_events_occurred_at", events.c.occurred_at)
Index("ix_events_type", events.c.event_type_name)
Index("ix_events_source", events.c.source_name)

# (key, type) pairs already handled: a redelivered event changes nothing. The type is part of
# the key because a heartbeat series shares one key across its types.
processed_events = Table(
    "processed_events", metadata,
    Column("key", String(255), primary_key=True),
    Column("event_type_name", String(255), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)

# Events the core fired, committed with the state change that caused them; a relay publishes.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime),
)
Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.id)

# Timeout stop and alert of an execution (Tengine's tengine_atd rows). id = the fired event key.
schedules = Table(
    "schedules", metadata,
    Column("id", String(64), primary_key=True),
    Column("execution_id", ID, ForeignKey("executions.id"), nullable=False),
    Column("event_type_name", String(255), nullable=False),
    Column("fire_at", UtcDateTime, nullable=False),
    Column("fired_at", UtcDateTime),
    Column("cancelled_at", UtcDateTime),
)
Index("ix_schedules_due", schedules.c.fired_at, schedules.c.cancelled_at, schedules.c.fire_at)
Index("ix_schedules_execution", schedules.c.execution_id)

# Slow work handed to the driver (ssh start / kill). A row left unfinished after a core crash is
# what recover() turns into stuck.
driver_tasks = Table(
    "driver_tasks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # start | kill
    Column("vertex_id", ID, ForeignKey("vertices.id"), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("outcome", Text),
)
Index("ix_driver_tasks_open", driver_tasks.c.finished_at)
Index("ix_driver_tasks_vertex", driver_tasks.c.vertex_id)
