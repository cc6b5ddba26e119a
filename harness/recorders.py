"""The harness's recorders: threads that write what they see into the test's history.

- `PhasePoller`: polls the watched executions on the console's API and records every phase or
  reason change (`PhaseChange`).
- `BusRecorder`: a consumer on its own queue bound to Tengine's exchange, so it sees a copy of
  every event and never takes one from the core (`BusEvent`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pika
from pika.exceptions import AMQPError

from tengine_min.bus import topology

from .history import BusEvent, History, PhaseChange
from .observers import ConsoleClient, ConsoleError, EventList, JobView, event_summary


class PhasePoller:
    """Polls the watched executions and puts every phase or reason change in the history."""

    def __init__(self, console: ConsoleClient, history: History, interval: float = 0.2) -> None:
        self.console = console
        self.history = history
        self.interval = interval
        self._watched: list[str] = []
        self._seen: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phase-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, execution_id: str) -> None:
        with self._lock:
            self._watched.append(execution_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll_once()  # the final states too

    def poll_once(self) -> None:
        with self._lock:
            watched = list(self._watched)
        for execution_id in watched:
            try:
                self.fetch(execution_id)
            except ConsoleError:
                continue  # console down (a fault): the next poll catches up

    def fetch(self, execution_id: str) -> dict[str, Any]:
        """``/api/executions/{id}``, its changes noted. The poller's looks and the test's
        go one at a time, so an older answer is never noted after a newer one."""
        with self._fetch_lock:
            detail = self.console.get(f"/api/executions/{execution_id}")
            self._record(detail, execution_id)
            return detail

    def _record(self, detail: dict[str, Any], execution_id: str) -> None:
        label = detail.get("status_label") or detail.get("phase_label") or {}
        self._note(PhaseChange(execution=execution_id, kind="execution", phase=detail["phase"],
                               label=label.get("ja", ""), source="console"))
        for vertex in detail["vertices"]:
            job = JobView.of(vertex)
            self._note(PhaseChange(execution=execution_id, path=job.name_path,
                                   kind=job.kind or "job", phase=job.phase, label=job.label,
                                   reason=job.reason, source="console"))

    def _note(self, change: PhaseChange) -> None:
        key = (change.execution, change.kind, change.path)
        with self._lock:  # the poller's thread and the test's both note: one entry per change
            if self._seen.get(key) == (change.phase, change.reason):
                return
            self._seen[key] = (change.phase, change.reason)
            self.history.add(change)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()


class BusRecorder:
    """Records every event published to Tengine's exchange, on a queue of its own.

    The queue is durable and bound with Tengine's routing key, so it gets a copy of each message
    the core's queue gets, keeps them while the broker restarts, and never steals one from the
    core. The recorder reconnects after the broker comes back; it deletes its queue at `stop()`.
    """

    def __init__(self, url: str, history: History, heartbeat_interval: float = 1.0) -> None:
        self.url = url
        self.history = history
        self.heartbeat_interval = heartbeat_interval
        self.queue = f"harness.recorder.{uuid.uuid4().hex[:12]}"
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last_heartbeat: dict[str, float] = {}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-recorder", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        if not self._connected.wait(timeout):
            raise RuntimeError(f"the bus recorder could not connect to the broker within "
                               f"{timeout:g} s")

    def received(self, event_type: str | None = None) -> EventList:
        with self._lock:
            rows = list(self.events)
        return EventList(r for r in rows if event_type is None
                         or r.get("event_type_name") == event_type)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:  # remove our queue; the broker may be down (a fault) and then it stays with it
            connection = pika.BlockingConnection(topology.connection_parameters(self.url, 3))
            try:
                connection.channel().queue_delete(self.queue)
            finally:
                connection.close()
        except (AMQPError, OSError):
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except (AMQPError, OSError) as exc:
                if self._connected.is_set():
                    self.history.note(f"bus recorder disconnected: {type(exc).__name__}",
                                      source="harness")
                self._connected.clear()
                self._stop.wait(0.5)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(topology.connection_parameters(self.url, 3))
        try:
            channel = connection.channel()
            topology.declare(channel)
            channel.queue_declare(self.queue, durable=True)
            channel.queue_bind(self.queue, topology.EXCHANGE_NAME,
                               routing_key=topology.ROUTING_KEY)
            channel.basic_consume(self.queue, self._on_message, auto_ack=True)
            self._connected.set()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.2)
        finally:
            if connection.is_open:
                with contextlib.suppress(AMQPError, OSError):
                    connection.close()

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            self.history.note(f"unreadable message {body[:80]!r}", source="bus")
            return
        with self._lock:
            self.events.append(event)
        props = event.get("properties") or {}
        seen = BusEvent(event_type=str(event.get("event_type_name", "?")),
                        level=str(event.get("level", "")), key=str(event.get("key", "")),
                        job=str(props.get("target_job_id") or props.get("job_id") or ""),
                        summary=event_summary(event), source="bus")
        if seen.event_type.endswith(".heartbeat.tengine"):
            heartbeat = self._heartbeat(seen)
            if heartbeat is None:
                return  # a regular heartbeat: not worth an entry
            seen = heartbeat
        self.history.add(seen)

    def _heartbeat(self, seen: BusEvent) -> BusEvent | None:
        """The first heartbeat of a key and one after a gap, marked so; None otherwise."""
        now = time.time()
        last = self._last_heartbeat.get(seen.key)
        self._last_heartbeat[seen.key] = now
        if last is None:
            return replace(seen, first=True)
        gap = now - last
        if gap > 2.5 * self.heartbeat_interval:
            return replace(seen, gap=round(gap, 1))
        return None
