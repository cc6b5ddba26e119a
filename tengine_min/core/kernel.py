"""One event, one transaction: store it, run its handler, put what it fires in the outbox, commit;
only then hand the driver commands over. The caller acks the AMQP message after `process`.

Redelivery changes nothing (the event key was recorded with the state change). A handler that
raises is rolled back; the event is then stored and its target marked stuck in a fresh
transaction, with `<type>.error.tengined` fired, and `process` returns normally so the message is
acked rather than redelivered forever (Tengine's stuck). A database that cannot be reached
(`store.db.store_unreachable`: an OperationalError, a disconnect, a locked database) is
different: `process` raises, the message is requeued and tried again.

Call `process` from one thread at a time (the consumer, prefetch 1): handlers read, decide and
write, and rely on no other event being handled in between. `fire_due_schedules` may run from
another thread; its transaction touches only schedules and the outbox.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, Engine, Row

from ..events import names as ev
from ..events.envelope import Event
from ..logfmt import kv
from ..model import phases as ph
from ..store import repo
from ..store.db import store_unreachable, write_transaction
from . import schedules
from .handlers.commands import Command
from .handlers.registry import handle
from .handlers.stuck import stuck_target
from .identity import CoreIdentity


class Kernel:
    def __init__(self, engine: Engine, *, dispatch: Callable[[Command], None],
                 log: logging.Logger, identity: CoreIdentity | None = None,
                 clock: Callable[[], datetime] = repo.utcnow) -> None:
        self.engine = engine
        self.dispatch = dispatch
        self.log = log
        self.identity = identity or CoreIdentity.of_this_process()
        self.clock = clock

    def process(self, event: Event) -> None:
        """Handle one event exactly once (see the module doc)."""
        try:
            with write_transaction(self.engine) as conn:
                now = self.clock()
                if not repo.record_event(conn, event, now=now):
                    self.log.info("duplicate event ignored %s",
                                  kv(event=event.event_type_name, key=event.key))
                    return
                outcome = handle(conn, event, now=now, log=self.log, identity=self.identity)
                for fired in outcome.events:
                    repo.enqueue(conn, fired, now=now)
        except Exception as exc:
            if store_unreachable(exc):  # e.g. PostgreSQL gone: not the event's fault
                self.log.error("store unavailable, event left for redelivery %s",
                               kv(event=event.event_type_name, key=event.key))
                raise
            # A handler bug or bad data: stuck, never redelivered forever.
            self.log.error("handler failed %s traceback=%s",
                           kv(event=event.event_type_name, key=event.key,
                              error=f"{type(exc).__name__}: {exc}"),
                           traceback.format_exc().replace("\n", "\\n"))
            self._record_failure(event, exc)
            return
        for command in outcome.commands:
            self._dispatch(command)

    def _dispatch(self, command: Command) -> None:
        try:
            self.dispatch(command)
        except Exception as exc:  # noqa: BLE001 - state committed: recover() handles the open task
            self.log.error("dispatch failed %s", kv(command=type(command).__name__,
                                                    job_id=command.vertex_id,
                                                    task_id=command.task_id,
                                                    error=f"{type(exc).__name__}: {exc}"))

    def _record_failure(self, event: Event, exc: Exception) -> None:
        with write_transaction(self.engine) as conn:
            now = self.clock()
            repo.record_event(conn, event, now=now)
            reason = (f"the core failed while handling {event.event_type_name} "
                      f"({type(exc).__name__}: {exc}); the real state is unknown")
            target = stuck_target(conn, event)
            if target is not None:
                _mark_stuck(conn, target, reason, self.log)
            repo.enqueue(conn, Event(
                event_type_name=ev.error_event_name(event.event_type_name),
                source_name=event.source_name,
                sender_name=f"tengined:{self.identity.host}/{self.identity.pid}",
                occurred_at=now.isoformat(timespec="microseconds"), level="error",
                properties={"original_event": asdict(event),
                            "error_class_name": type(exc).__name__,
                            "error_message": str(exc)}), now=now)

    def recover(self) -> None:
        """At core start-up: a driver task recorded but never finished means the core died while
        the ssh start or kill was in flight, so what happened on the host is unknown. The job is
        marked stuck (with a reason saying so) and `start|stop.job.job.tengine.failed.tengined`
        is fired, as Tengine does for an interrupted job event. Unpublished outbox rows are left
        for the relay. Nothing is dispatched again: a person decides."""
        with write_transaction(self.engine) as conn:
            now = self.clock()
            for task in repo.open_driver_tasks(conn):
                self._recover_task(conn, task, now)

    def _recover_task(self, conn: Connection, task: Row, now: datetime) -> None:
        job = repo.get_vertex(conn, task.vertex_id)
        waiting = ph.STARTING if task.kind == "start" else ph.DYING
        if job is None or job.phase not in (waiting, ph.DYING):
            repo.finish_driver_tasks(conn, task.vertex_id, "superseded (found at restart)",
                                     task_id=task.id, now=now)
            return
        doing = "starting" if task.kind == "start" else "stopping"
        unknown = ("whether the script was started" if task.kind == "start"
                   else "whether the kill reached the process")
        reason = f"the core restarted while {doing} this job: {unknown} is unknown"
        repo.finish_driver_tasks(conn, task.vertex_id, "interrupted: core restarted",
                                 task_id=task.id, now=now)
        _mark_stuck(conn, ("vertex", job.id), reason, self.log)
        original = ev.START_JOB if task.kind == "start" else ev.STOP_JOB
        execution = repo.require_execution(conn, job.execution_id)
        parent = repo.get_vertex(conn, job.parent_id) if job.parent_id else None
        repo.enqueue(conn, Event(
            event_type_name=ev.failed_event_name(original),
            source_name=(f"job:{self.identity.host}/{self.identity.pid}/"
                         f"{execution.root_jobnet_id}/{job.id}"),
            sender_name=f"tengined:{self.identity.host}/{self.identity.pid}",
            occurred_at=now.isoformat(timespec="microseconds"), level="error",
            properties={"execution_id": execution.id,
                        "root_jobnet_id": execution.root_jobnet_id,
                        "root_jobnet_name_path": "/" + execution.root_jobnet_name,
                        "target_jobnet_id": parent.id if parent else None,
                        "target_jobnet_name_path": parent.name_path if parent else None,
                        "target_job_id": job.id, "target_job_name_path": job.name_path,
                        "driver_task_id": task.id, "message": reason}), now=now)

    def fire_due_schedules(self, now: datetime | None = None) -> list[Event]:
        """Fire the due timeout/alert schedules into the outbox, in one transaction."""
        with write_transaction(self.engine) as conn:
            now = now or self.clock()
            fired = schedules.due(conn, now, identity=self.identity)
            for event in fired:
                repo.enqueue(conn, event, now=now)
        for event in fired:
            self.log.info("schedule fired %s", kv(event=event.event_type_name, key=event.key,
                                                  execution_id=event.properties["execution_id"]))
        return fired


def _mark_stuck(conn: Connection, target: tuple[str, str], reason: str,
                log: logging.Logger) -> None:
    kind, target_id = target
    if kind == "execution":
        repo.set_execution_phase(conn, target_id, ph.STUCK, log=log)
    else:
        repo.set_phase(conn, target_id, ph.STUCK, log=log, reason=reason)
    log.warning("marked stuck %s", kv(target=kind, id=target_id, reason=reason))
