"""What a person can do from the console: run, force stop, rerun and status change (command
events for the core, which alone writes execution state) and event confirmation (a direct write:
the mark is the person's, not execution state).

A command event is first written to the store's outbox, in the same transaction as anything it
needs (a run's new execution), and then published with confirms; if the broker does not answer,
the row stays and the core's outbox relay publishes it later, so a run is never half made and a
command is never lost. Everything is checked before anything is written: bad input raises an
ActionError (NotFound 404, Conflict 409, Invalid 422) and changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, update

from ..commands import CannotRun, UnknownJobnet, new_execution
from ..config import Settings
from ..events import names as ev
from ..events.envelope import Event
from ..logfmt import kv
from ..model import phases as ph
from ..model.execution import BOX_KINDS, FINALLY, JOBNET, SCRIPT_KINDS
from ..store import repo
from ..store.db import write_transaction
from ..store.schema import events

JOBNET_KINDS = (JOBNET, FINALLY)


class ActionError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ActionError):
    status_code = 404


class Conflict(ActionError):
    status_code = 409


class Invalid(ActionError):
    status_code = 422


@dataclass
class ActionResult:
    message: str
    target_id: str
    execution_id: str
    event_type_name: str | None = None  # the command event, if the action fires one
    event_key: str | None = None
    published: bool | None = None  # False: in the outbox, the core's relay publishes it
    applied: bool | None = None  # a status change: True once the core applied it, else False


def labels(phase: str, stop_reason: str | None = None) -> str:
    """`error (force stopped) / エラー終了(強制停止済)` for messages."""
    return f"{ph.human_label(phase, stop_reason, 'en')} / {ph.human_label(phase, stop_reason)}"


class Actions:
    def __init__(self, engine: Engine, publish: Callable[[Event], None], runtime: Settings,
                 log: logging.Logger, *, status_change_wait: float = 5.0) -> None:
        self.engine = engine
        self.publish = publish
        self.runtime = runtime
        self.log = log
        self.status_change_wait = status_change_wait
        self.me = f"{socket.gethostname()}/{os.getpid()}"

    # -- run -----------------------------------------------------------------------------

    def run_jobnet(self, name: str, *, timeout_min: int | None = None,
                   alert_min: int | None = None) -> ActionResult:
        """Instantiate a stored root jobnet as a new execution and start it (Tengine's 実行 with
        強制停止設定 / 警告設定 in minutes)."""
        for field_name, value in (("timeout_min", timeout_min), ("alert_min", alert_min)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise Invalid(f"{field_name}: a whole number of minutes >= 0 is needed "
                              f"(0 or empty = none), got {value!r}")
        try:
            execution, event = new_execution(self.engine, self.runtime, name, source=self.me,
                                             sender=self.sender)
        except UnknownJobnet as exc:
            raise NotFound(str(exc)) from None
        except CannotRun as exc:
            raise Invalid(str(exc)) from None
        root = execution.root

        def create(conn: Connection) -> None:
            repo.create_execution(conn, execution, timeout_min=timeout_min or None,
                                  alert_min=alert_min or None)

        result = ActionResult(f"started {name}: execution {execution.id}", root.id,
                              execution.id)
        return self._send(event, result, create)

    # -- force stop ----------------------------------------------------------------------

    def stop_execution(self, execution_id: str) -> ActionResult:
        with self.engine.connect() as conn:
            execution = repo.get_execution(conn, execution_id)
        if execution is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        what = f"execution {execution.id} of /{execution.root_jobnet_name}"
        _require_stoppable(what, execution.phase, execution.stop_reason, ph.STOPPABLE)
        event = self._event(ev.STOP_EXECUTION, execution, None,
                            source=f"execution:{self.me}/{execution.root_jobnet_id}/"
                                   f"{execution.id}", stop_reason=ph.USER_STOP)
        return self._send(event, ActionResult(f"stop requested: {what}", execution.id,
                                              execution.id))

    def stop_jobnet(self, vertex_id: str) -> ActionResult:
        vertex, execution = self._vertex(vertex_id)
        if vertex.kind not in JOBNET_KINDS:
            hint = (f"; use /api/jobs/{vertex_id}/stop" if vertex.kind in SCRIPT_KINDS else "")
            raise NotFound(f"no jobnet with id {vertex_id!r}: {vertex.name_path} is a "
                           f"{vertex.kind}{hint}")
        return self._stop_vertex(vertex, execution, ev.STOP_JOBNET, ph.STOPPABLE)

    def stop_job(self, vertex_id: str) -> ActionResult:
        vertex, execution = self._vertex(vertex_id)
        if vertex.kind not in SCRIPT_KINDS:
            hint = (f"; use /api/jobnets/{vertex_id}/stop" if vertex.kind in JOBNET_KINDS
                    else "; stop its hadoop_job_run")
            raise NotFound(f"no job with id {vertex_id!r}: {vertex.name_path} is a "
                           f"{vertex.kind}{hint}")
        # A job in dying after a failed kill may be stopped again: the kill is sent again.
        return self._stop_vertex(vertex, execution, ev.STOP_JOB, ph.STOPPABLE | {ph.DYING})

    def stop_vertex(self, vertex_id: str) -> ActionResult:
        """The monitor's 強制停止 of a row: the root stops its execution, a jobnet or a job
        itself."""
        vertex, execution = self._vertex(vertex_id)
        if vertex.parent_id is None:
            return self.stop_execution(execution.id)
        if vertex.kind in JOBNET_KINDS:
            return self.stop_jobnet(vertex_id)
        return self.stop_job(vertex_id)

    def _stop_vertex(self, vertex: Row, execution: Row, name: str,
                     stoppable: frozenset[str]) -> ActionResult:
        what = f"{'job' if name == ev.STOP_JOB else 'jobnet'} {vertex.name_path}"
        _require_stoppable(what, vertex.phase, vertex.stop_reason, stoppable)
        event = self._event(name, execution, vertex, stop_reason=ph.USER_STOP)
        return self._send(event, ActionResult(f"stop requested: {what}", vertex.id,
                                              execution.id))

    # -- rerun ---------------------------------------------------------------------------

    def rerun(self, vertex_id: str, *, spot: bool = False) -> ActionResult:
        """再実行: `spot` = the selected job only, else from the selected job on."""
        vertex, execution = self._vertex(vertex_id)
        if vertex.kind in BOX_KINDS:
            raise Conflict(f"{vertex.name_path} is a {vertex.kind}: it runs only with its "
                           f"hadoop_job_run; rerun that instead")
        if vertex.phase not in ph.RESETTABLE:
            raise Conflict(f"{vertex.name_path} is {labels(vertex.phase, vertex.stop_reason)}: "
                           f"only initialized, success, error or stuck can rerun "
                           f"(初期化済, 正常終了, エラー終了, 状態不明)")
        with self.engine.connect() as conn:
            dying = execution.phase == ph.DYING or any(
                a.phase == ph.DYING for a in _ancestors(conn, vertex))
        if dying:
            raise Conflict(f"{vertex.name_path}: its execution is being stopped; rerun it "
                           f"once the stop has ended")
        event = self._event(ev.RESTART_JOB, execution, vertex, spot=bool(spot))
        how = "only" if spot else "and what follows it"
        return self._send(event, ActionResult(f"rerun requested: {vertex.name_path} {how}",
                                              vertex.id, execution.id))

    # -- status change -------------------------------------------------------------------

    def change_status(self, vertex_id: str, status: str) -> ActionResult:
        """ステータス変更: set a job or jobnet to initialized, success or error by hand. The core
        applies it (change_status.job.job.tengine): as in Tengine it fires nothing, so nothing
        after it starts; a rerun does that. The root jobnet's execution takes the same status.
        The answer waits for the core, up to `status_change_wait` seconds, to say it is done."""
        if status not in ph.SETTABLE:
            raise Invalid(f"status {status!r} is not one of {', '.join(ph.SETTABLE)} "
                          f"(初期化済, 正常終了, エラー終了)")
        vertex, execution = self._vertex(vertex_id)
        if vertex.kind in BOX_KINDS:
            raise Conflict(f"{vertex.name_path} is a {vertex.kind}: it mirrors its "
                           f"hadoop_job_run; change that instead")
        change = (f"{labels(vertex.phase, vertex.stop_reason)} -> "
                  f"{labels(status, vertex.stop_reason)}")
        event = self._event(ev.CHANGE_STATUS_JOB, execution, vertex, status=status)
        result = self._send(event, ActionResult(
            f"status change requested: {vertex.name_path} {change}; the core applies it when "
            f"it handles the event", vertex.id, execution.id))
        handled = self._handled(event, vertex.id) if result.published else None
        result.applied = handled is not None and handled.phase == status
        if result.applied:
            result.message = f"status of {vertex.name_path} changed: {change}"
        elif handled is not None:  # e.g. its handling failed and marked it stuck
            result.message = (f"status change of {vertex.name_path} to {labels(status)} handled "
                              f"by the core: it is {labels(handled.phase, handled.stop_reason)}")
        return result

    def _handled(self, event: Event, vertex_id: str) -> Row | None:
        """The vertex once the core has handled `event`, or None if it has not within
        `status_change_wait` seconds."""
        deadline = time.monotonic() + self.status_change_wait
        while True:
            with self.engine.connect() as conn:
                if repo.is_processed(conn, event):
                    return repo.get_vertex(conn, vertex_id)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(0.05, left))

    # -- event confirmation --------------------------------------------------------------

    def confirm_event(self, key: str) -> int:
        """通知確認済み: mark the event(s) with this key confirmed. Returns how many rows."""
        with write_transaction(self.engine) as conn:
            count = conn.execute(update(events).where(events.c.key == key)
                                 .values(confirmed=True)).rowcount
            if not count:
                raise NotFound(f"no event with key {key!r}")
        self.log.info("event confirmed %s", kv(key=key, rows=count))
        return count

    # -- helpers -------------------------------------------------------------------------

    @property
    def sender(self) -> str:
        return f"tengine-console:{self.me}"

    def _vertex(self, vertex_id: str) -> tuple[Row, Row]:
        with self.engine.connect() as conn:
            vertex = repo.get_vertex(conn, vertex_id)
            if vertex is None:
                raise NotFound(f"no job or jobnet with id {vertex_id!r}")
            execution = repo.require_execution(conn, vertex.execution_id)
        return vertex, execution

    def _event(self, name: str, execution: Row, vertex: Row | None, *,
               source: str | None = None, **extra: Any) -> Event:
        """A command event with Tengine's common properties for its target."""
        root_path = "/" + execution.root_jobnet_name
        props: dict[str, Any] = {
            "execution_id": execution.id, "root_jobnet_id": execution.root_jobnet_id,
            "root_jobnet_name_path": root_path, "target_jobnet_id": execution.root_jobnet_id,
            "target_jobnet_name_path": root_path, "target_job_id": None,
            "target_job_name_path": None}
        if vertex is not None:
            if vertex.kind in SCRIPT_KINDS:
                parent_path = vertex.name_path.rsplit("/", 1)[0] or root_path
                props.update(target_jobnet_id=vertex.parent_id,
                             target_jobnet_name_path=parent_path, target_job_id=vertex.id,
                             target_job_name_path=vertex.name_path)
            else:
                props.update(target_jobnet_id=vertex.id,
                             target_jobnet_name_path=vertex.name_path)
            source = source or f"job:{self.me}/{execution.root_jobnet_id}/{vertex.id}"
        props.update(extra)
        return Event(event_type_name=name, source_name=source or "", sender_name=self.sender,
                     properties=props)

    def _send(self, event: Event, result: ActionResult,
              write: Callable[[Connection], None] | None = None) -> ActionResult:
        with write_transaction(self.engine) as conn:
            if write is not None:
                write(conn)
            outbox_id = repo.enqueue(conn, event)
        result.event_type_name = event.event_type_name
        result.event_key = event.key
        result.published = self._publish(event, outbox_id)
        self.log.info("command sent %s", kv(event=event.event_type_name, key=event.key,
                                            target=result.target_id,
                                            published=result.published))
        return result

    def _publish(self, event: Event, outbox_id: int) -> bool:
        try:
            self.publish(event)
        except Exception as exc:  # noqa: BLE001 - any failure: the outbox row stays for the relay
            self.log.warning("publish failed, left for the core's relay %s", kv(
                event=event.event_type_name, key=event.key,
                error=f"{type(exc).__name__}: {exc}"))
            return False
        try:
            with write_transaction(self.engine) as conn:
                repo.mark_published(conn, [outbox_id])
        except Exception as exc:  # noqa: BLE001 - published; the relay may resend, the core dedups
            self.log.warning("published but not marked %s", kv(
                event=event.event_type_name, key=event.key,
                error=f"{type(exc).__name__}: {exc}"))
        return True


def _require_stoppable(what: str, phase: str, stop_reason: str | None,
                       stoppable: frozenset[str]) -> None:
    if phase in stoppable:
        return
    why = ("it has not started" if phase == ph.INITIALIZED else
           "it is already being stopped" if phase == ph.DYING else "it has already ended")
    raise Conflict(f"{what} is {labels(phase, stop_reason)}: {why}, nothing to stop")


def _ancestors(conn: Connection, vertex: Row) -> list[Row]:
    chain = []
    parent_id = vertex.parent_id
    while parent_id is not None:
        parent = repo.get_vertex(conn, parent_id)
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.parent_id
    return chain
