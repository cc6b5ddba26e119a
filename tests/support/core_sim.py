"""A small world for driving the core in tests: a SQLite store in a tmp dir, the real Kernel, an
in-memory 'bus' (the outbox pumped back into the kernel in order) and a fake driver + watcher at
the boundary: it turns StartJob/KillJob commands into the events a real driver and watchdog
would send. No broker, no processes."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from tengine_min.core.handlers.commands import KillJob, StartJob
from tengine_min.core.identity import CoreIdentity
from tengine_min.core.kernel import Kernel
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.model.instantiate import instantiate
from tengine_min.model.nodes import Definitions
from tengine_min.store import repo, schema
from tengine_min.store.db import engine_for, write_transaction

IDENTITY = CoreIdentity("core-host", 4242)
HOLD = "hold"  # a job outcome: the script keeps running until killed


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Sim:
    def __init__(self, tmp_path: Path, defs: Definitions, root_name: str, *,
                 outcomes: dict[str, int | str] | None = None, timeout_min: int | None = None,
                 alert_min: int | None = None, log: logging.Logger | None = None) -> None:
        self.engine = engine_for(tmp_path / "state")
        self.clock = Clock()
        self.log = log or logging.getLogger("tengine.core.test")
        self.commands: list[StartJob | KillJob] = []
        self.kernel = Kernel(self.engine, dispatch=lambda c: self.commands.append(c), log=self.log,
                             identity=IDENTITY, clock=self.clock)
        self.outcomes = dict(outcomes or {})  # name_path -> exit status | HOLD
        self.processed: list[Event] = []
        self.started: list[str] = []  # name paths, in start order
        self.running: dict[str, tuple[StartJob, int]] = {}  # watcher job id -> (start, pid)
        self._pids = itertools.count(1000)
        ids = itertools.count(1)
        with write_transaction(self.engine) as conn:
            repo.save_templates(conn, defs)
            stored = repo.load_definitions(conn)
            self.execution = instantiate(stored, root_name, execution_id=f"{0:024x}",
                                         new_id=lambda: f"{next(ids):024x}")
            repo.create_execution(conn, self.execution, timeout_min=timeout_min,
                                  alert_min=alert_min)

    # -- the bus --

    def send(self, event: Event) -> None:
        self.kernel.process(event)
        self.processed.append(event)

    def pump(self, limit: int = 100_000) -> None:
        """Deliver every outbox event back to the kernel, in order, until none is left."""
        for _ in range(limit):
            with write_transaction(self.engine) as conn:
                pending = repo.pending_outbox(conn, limit=1)
                if not pending:
                    return
                repo.mark_published(conn, [pending[0][0]], now=self.clock())
            self.send(pending[0][1])
        raise AssertionError("the outbox never emptied")

    # -- the fake driver and watcher --

    def drive(self) -> bool:
        """Carry out the queued commands as a driver and watcher would. False if none."""
        if not self.commands:
            return False
        commands, self.commands = self.commands, []
        for command in commands:
            if isinstance(command, StartJob):
                self._start(command)
            else:
                self._kill(command)
        return True

    def settle(self, rounds: int = 100_000) -> None:
        """Pump and drive until nothing moves."""
        for _ in range(rounds):
            self.pump()
            if not self.drive():
                return
        raise AssertionError("the core never settled")

    def _start(self, command: StartJob) -> None:
        self.started.append(command.name_path)
        pid = next(self._pids)
        self.send(self.started_event(command, pid))
        outcome = self.outcomes.get(command.name_path, 0)
        if outcome == HOLD:
            self.running[command.watcher_job_id] = (command, pid)
            return
        self.send(self.finished_event(command, pid, exit_status=int(outcome)))

    def _kill(self, command: KillJob) -> None:
        self.send(Event(ev.KILL_SENT_JOB, properties=dict(command.properties)))
        held = self.running.pop(command.watcher_job_id, None)
        if held is not None:
            self.send(self.finished_event(held[0], held[1], exit_status=None,
                                          signal="KILL", killed=True))

    def started_event(self, command: StartJob, pid: int) -> Event:
        return Event(ev.STARTED_PROCESS_JOB, sender_name="driver:core-host/4242",
                     properties={**command.properties, "pid": pid})

    def finished_event(self, command: StartJob, pid: int, *, exit_status: int | None,
                       signal: str | None = None, killed: bool = False) -> Event:
        return Event(
            ev.FINISHED_PROCESS_JOB,
            source_name=f"job:{command.server_name}/{pid}/{command.root_jobnet_id}/"
                        f"{command.watcher_job_id}",
            sender_name="agent:host1/77/tengine_job_agent",
            level="info" if exit_status == 0 else "error",
            properties={"job_id": command.watcher_job_id,
                        "target_job_id": command.watcher_job_id,
                        "execution_id": command.execution_id,
                        "root_jobnet_id": command.root_jobnet_id, "pid": pid,
                        "exit_status": exit_status, "signal": signal, "killed": killed,
                        "stdout_log": f"/w/{command.watcher_job_id}/stdout.log",
                        "stderr_log": f"/w/{command.watcher_job_id}/stderr.log",
                        "stdout_tail": "out", "stderr_tail": "err",
                        "stdout_dropped_bytes": 0, "stderr_dropped_bytes": 0})

    def finish_held(self, name_path: str, exit_status: int) -> None:
        """A held job's script ends by itself."""
        for watcher_job_id, (start, pid) in list(self.running.items()):
            if start.name_path == name_path:
                del self.running[watcher_job_id]
                self.send(self.finished_event(start, pid, exit_status=exit_status))
                return
        raise AssertionError(f"{name_path} is not running")

    # -- commands a person gives --

    def start(self) -> None:
        root = self.execution.root
        self.send(Event(ev.START_EXECUTION, properties={
            "execution_id": self.execution.id, "root_jobnet_id": root.id,
            "target_jobnet_id": root.id}))

    def stop(self, name_path: str, stop_reason: str = "user_stop") -> None:
        vertex = self.execution.vertex_by_path(name_path)
        if vertex.parent_id is None:
            self.send(Event(ev.STOP_EXECUTION, properties={
                "execution_id": self.execution.id, "root_jobnet_id": vertex.id,
                "stop_reason": stop_reason}))
        elif vertex.runs_script:
            self.send(Event(ev.STOP_JOB, properties={
                "execution_id": self.execution.id, "target_job_id": vertex.id,
                "stop_reason": stop_reason}))
        else:
            self.send(Event(ev.STOP_JOBNET, properties={
                "execution_id": self.execution.id, "target_jobnet_id": vertex.id,
                "stop_reason": stop_reason}))

    def rerun(self, name_path: str, *, spot: bool = False) -> None:
        vertex = self.execution.vertex_by_path(name_path)
        self.send(Event(ev.RESTART_JOB, properties={
            "execution_id": self.execution.id, "target_job_id": vertex.id, "spot": spot}))

    # -- looking --

    def vertex(self, name_path: str):
        with self.engine.connect() as conn:
            return repo.get_vertex(conn, self.execution.vertex_by_path(name_path).id)

    def phase(self, name_path: str) -> str:
        return self.vertex(name_path).phase

    def execution_row(self):
        with self.engine.connect() as conn:
            return repo.get_execution(conn, self.execution.id)

    def phases(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {v.name_path: v.phase for v in repo.execution_vertices(conn, self.execution.id)}

    def edges(self) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(select(schema.edges).order_by(schema.edges.c.id)))

    def event_names(self) -> list[str]:
        return [e.event_type_name for e in self.processed]

    def events_of(self, name: str) -> list[Event]:
        return [e for e in self.processed if e.event_type_name == name]

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table, for before/after comparisons."""
        with self.engine.connect() as conn:
            return {table.name: [tuple(row) for row in conn.execute(
                select(table).order_by(*table.primary_key.columns))]
                for table in schema.metadata.sorted_tables}


def run_to_end(sim: Sim) -> Sim:
    sim.start()
    sim.settle()
    return sim

