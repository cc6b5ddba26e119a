"""What a handling returns: the events it fires and the commands it asks of the driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...events.envelope import Event


@dataclass(frozen=True)
class StartJob:
    """Ask the driver to start a job's script on its host (`tengine-watcher run`).

    `watcher_job_id` is the id to give the watcher: the vertex id for the first run, and
    `<vertex id>.<attempt>` for a rerun, because the watcher treats a second run of the same id
    as a duplicate. `properties` are to be copied into the outcome events (started.process /
    start_failed), which must also carry `driver_task_id`."""

    task_id: int
    vertex_id: str
    watcher_job_id: str
    attempt: int
    execution_id: str
    root_jobnet_id: str
    name_path: str
    server_name: str | None
    credential_name: str | None
    script: str
    preparation: str | None
    env: dict[str, str]
    properties: dict[str, Any]


@dataclass(frozen=True)
class KillJob:
    """Ask the driver to kill a job's process group (`tengine-watcher kill`) with the vertex's
    killing signals and interval. Outcome events: kill_sent / stop_failed (+ driver_task_id)."""

    task_id: int
    vertex_id: str
    watcher_job_id: str
    attempt: int
    execution_id: str
    root_jobnet_id: str
    name_path: str
    server_name: str | None
    credential_name: str | None
    pid: int
    signals: tuple[str, ...]
    interval: float
    properties: dict[str, Any]


Command = StartJob | KillJob


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
