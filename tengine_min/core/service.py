"""`tengine core`: the core process. Four parts around the Kernel, each on its own thread:

- the consumer: takes one event at a time from `tengine_event_queue` (manual ack, prefetch 1),
  hands it to `kernel.process`, and acks it only after the commit; when the store cannot be
  reached the event is requeued after a pause (STORE_DOWN_PAUSE), not at once;
- the outbox relay: publishes outbox rows in order with publisher confirms and marks them
  published; it wakes when this process commits and also polls, so rows written by other
  processes (`tengine run`, `tengine stop`) go out too;
- the schedule ticker: fires due timeouts and alerts (`kernel.fire_due_schedules`) every second;
- the driver pool: runs start and kill commands on the hosts and reports their outcome as events
  through the outbox;
- the monitors (core/monitors.py): heartbeat expiry, counted only while the consumer is
  connected, and the host monitor; their verdicts go through the outbox like any event;
- the reconciler (core/reconcile.py): asks the host after a job the monitors gave up on, and
  reports what it learnt (a late result) as an event.

At start-up `kernel.recover()` deals with driver commands a crashed core left in flight. A clean
stop (SIGTERM, SIGINT) finishes the event being handled, lets the driver finish its commands
within `shutdown_grace`, settles their outcomes (see `_settle`), publishes what is left in the
outbox, and closes the connections. A SIGKILLed core loses nothing either: the broker redelivers
the unacked event (the kernel recognises it), the outbox rows are still there, and open driver
tasks are recovered at the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import Engine

from ..bus.consumer import Consumer
from ..bus.publisher import Publisher, PublishFailed
from ..bus.topology import redact
from ..config import ConfigError, Settings
from ..events.envelope import Event, MalformedEvent
from ..failpoints import failpoint
from ..logfmt import kv, setup_file_logger
from ..resources import Resources
from ..store import repo
from ..store.db import engine_for, store_unreachable, write_transaction
from .driver import Driver
from .handlers.commands import Command
from .identity import CoreIdentity
from .kernel import Kernel
from .monitors import HeartbeatMonitor, HostMonitor, MonitorSettings, Periodic, tcp_probe
from .reconcile import Reconciler

LOGGER_NAME = "tengine.core"
OUTBOX_BATCH = 100
REMEMBERED_OUTCOMES = 10_000  # driver outcomes kept in memory for the settling at shutdown
# Seconds an event waits before it is requeued when the store cannot be reached: without the
# pause the broker redelivers it at once and the consumer spins at full speed.
STORE_DOWN_PAUSE = 1.0


def core_logger(settings: Settings) -> logging.Logger:
    """The core's logger, writing one line per fact to `<state dir>/log/core.log`."""
    return setup_file_logger(LOGGER_NAME, settings.core_log, settings.log_level)


class OutboxRelay:
    """Publishes the outbox in order; `notify()` wakes it, else it polls."""

    def __init__(self, engine: Engine, url: str, settings: Settings,
                 log: logging.Logger) -> None:
        self.engine = engine
        self.log = log
        self.poll_interval = settings.relay_poll_interval
        self.publisher = Publisher(url, retry_count=settings.publish_retry_count,
                                   retry_interval=settings.publish_retry_interval,
                                   logger=log.getChild("relay"))
        self._wake = threading.Condition()
        self._woken = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        with self._wake:
            self._woken = True
            self._wake.notify()

    def stop(self, timeout: float) -> None:
        """One last pass over the outbox, bounded by `timeout`; then disconnect."""
        self._stop.set()
        self.notify()
        self._thread.join(timeout)
        self.publisher.close()  # a publish still retrying gives up now
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self.publish_pending()
            except Exception as exc:  # noqa: BLE001 - store unreachable: try at the next poll
                self.log.error("outbox relay failed %s", kv(error=f"{type(exc).__name__}: {exc}"))
            if stopping:
                return
            with self._wake:
                if not self._woken:
                    self._wake.wait(self.poll_interval)
                self._woken = False

    def publish_pending(self) -> int:
        """Publish pending rows oldest first until none is left or publishing fails; returns
        how many were published."""
        total = 0
        while True:
            with self.engine.connect() as conn:
                rows = repo.pending_outbox(conn, limit=OUTBOX_BATCH)
            if not rows:
                return total
            done: list[int] = []
            failed = False
            try:
                for row_id, event in rows:
                    try:
                        self.publisher.publish(event)
                    except MalformedEvent as exc:  # can never be sent: log it whole, go on
                        self.log.error("outbox row cannot be sent, skipped %s", kv(
                            outbox_id=row_id, event=event.event_type_name, key=event.key,
                            error=str(exc), properties=event.properties))
                    else:
                        self.log.debug("published %s", kv(outbox_id=row_id,
                                                          event=event.event_type_name,
                                                          key=event.key))
                    done.append(row_id)
            except PublishFailed as exc:
                failed = True
                self.log.error("outbox not published, will retry %s", kv(
                    pending_from=rows[len(done)][0], error=str(exc)))
            finally:
                if done:
                    with write_transaction(self.engine) as conn:
                        repo.mark_published(conn, done)
            total += len(done)
            if failed or len(rows) < OUTBOX_BATCH:
                return total


class ScheduleTicker:
    """Fires due timeout and alert schedules every `interval` seconds (Tengine's atd)."""

    def __init__(self, kernel: Kernel, relay: OutboxRelay, interval: float,
                 log: logging.Logger) -> None:
        self.kernel = kernel
        self.relay = relay
        self.interval = interval
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedule-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.kernel.fire_due_schedules():
                    self.relay.notify()
            except Exception as exc:  # noqa: BLE001 - store unreachable: try next tick
                self.log.error("schedule check failed %s",
                               kv(error=f"{type(exc).__name__}: {exc}"))


class CoreService:
    """The core process. `run()` blocks until `request_stop()` (from a signal handler)."""

    def __init__(self, settings: Settings, resources: Resources, *,
                 log: logging.Logger | None = None) -> None:
        self.settings = settings
        self.resources = resources
        self.log = log or core_logger(settings)
        self.identity = CoreIdentity.of_this_process()
        self.url = settings.broker_url()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._outcomes: OrderedDict[int, Event] = OrderedDict()  # driver task id -> outcome
        self._outcomes_lock = threading.Lock()
        self.engine: Engine | None = None
        self.store_down_pause = STORE_DOWN_PAUSE
        self._outage_since: float | None = None  # monotonic time the store was found down
        self._outage_requeued = 0

    @property
    def ready(self) -> threading.Event:
        """Set once the consumer is connected and consuming."""
        return self._ready

    def request_stop(self) -> None:
        self._stop.set()

    def _store(self) -> Engine:
        """The store's engine, which run() opens first."""
        if self.engine is None:
            raise RuntimeError("the core is not running: run() opens the store")
        return self.engine

    def run(self) -> None:
        settings = self.settings
        self.log.info("core starting %s", kv(
            pid=self.identity.pid, host=self.identity.host, state_dir=settings.state_dir,
            broker=redact(self.url), db=_store_name(settings), resources=self.resources.source,
            config=settings.source))
        self.engine = engine = engine_for(settings.store_target())
        try:
            self.relay = OutboxRelay(engine, self.url, settings, self.log)
        except ValueError as exc:  # a broker URL that cannot be used
            raise ConfigError(f"broker: {exc}") from None
        self.driver = Driver(settings, self.resources, self._report,
                             log=self.log.getChild("driver"), identity=self.identity,
                             amqp_url=self.url)
        self.kernel = Kernel(engine, dispatch=self.driver.submit, log=self.log,
                             identity=self.identity)
        self.kernel.recover()
        self.ticker = ScheduleTicker(self.kernel, self.relay, settings.schedule_interval, self.log)
        self.consumer = Consumer(self.url, self._handle, prefetch=1,
                                 logger=self.log.getChild("consumer"))
        self.consumer.on_connected = self._on_connected
        self._make_monitors(engine)
        consumer_thread = threading.Thread(target=self.consumer.run, name="consumer", daemon=True)
        self.relay.start()
        self.driver.start()
        self.ticker.start()
        self._start_monitors()
        consumer_thread.start()
        try:
            while not self._stop.wait(0.5):
                if not consumer_thread.is_alive():
                    self.log.error("consumer thread ended unexpectedly: stopping the core")
                    break
        finally:
            self._shutdown(consumer_thread)

    # -- the monitors --

    def _make_monitors(self, engine: Engine) -> None:
        timing = MonitorSettings.from_settings(self.settings)
        log = self.log.getChild("monitors")
        self.reconciler = Reconciler(
            engine, self.resources, self.driver.transport, report=self._report,
            identity=self.identity, log=self.log.getChild("reconcile"),
            command_timeout=min(self.settings.command_timeout, 60.0),
            retry_interval=timing.host_check_interval)
        self.host_monitor = HostMonitor(
            engine, self.resources, probe=tcp_probe(timing.host_check_timeout),
            down_after=timing.host_down_after, identity=self.identity, log=log,
            notify=self.relay.notify, on_down=self.reconciler.server_down,
            on_up=self.reconciler.server_up, heartbeats_watched=timing.heartbeat_expiry > 0)
        self.heartbeat_monitor = HeartbeatMonitor(
            engine, expiry=timing.heartbeat_expiry, identity=self.identity, log=log,
            is_connected=lambda: self.consumer.connected,
            unhealthy_servers=self.host_monitor.unhealthy_servers, notify=self.relay.notify,
            on_expired=lambda job_ids: self.reconciler.request(job_ids, "heartbeat expired"))
        self._periodic: list[Periodic] = []
        if timing.heartbeat_expiry > 0:
            self._periodic.append(Periodic("heartbeat-monitor", timing.expiry_check_interval,
                                           self.heartbeat_monitor.check, log))
        if timing.host_check_interval > 0:
            self._periodic.append(Periodic("host-monitor", timing.host_check_interval,
                                           self.host_monitor.check, log))
        if 0 < timing.heartbeat_expiry <= 2 * self.settings.heartbeat_interval:
            self.log.warning("heartbeat expiry too short %s", kv(
                heartbeat_expiry=timing.heartbeat_expiry,
                heartbeat_interval=self.settings.heartbeat_interval,
                note="a job is declared lost after one or two missed heartbeats; "
                     "give several intervals (Tengine: 5 s and 20 s)"))
        self.log.info("monitors %s", kv(
            heartbeat_expiry=f"{timing.heartbeat_expiry:g}s" if timing.heartbeat_expiry
            else "off", host_check=f"every {timing.host_check_interval:g}s, down after "
                                   f"{timing.host_down_after}"))

    def _start_monitors(self) -> None:
        resumed = self.reconciler.resume()
        if resumed:
            self.log.info("reconciliation resumed %s", kv(jobs=resumed))
        self.reconciler.start()
        for periodic in self._periodic:
            periodic.start()

    def _stop_monitors(self) -> None:
        for periodic in self._periodic:
            periodic.stop()
        self.reconciler.stop()

    # -- the parts' callbacks --

    def _on_connected(self) -> None:
        self.heartbeat_monitor.connected()  # every job's silence counts from now
        if not self._ready.is_set():
            self._ready.set()
            self.log.info("core ready %s", kv(pid=self.identity.pid, broker=redact(self.url)))

    def _handle(self, event: Event) -> None:
        """One message: process (one transaction), wake the relay, then the caller acks."""
        heartbeat = event.event_type_name.endswith(".heartbeat.tengine")
        level = logging.DEBUG if heartbeat else logging.INFO
        self.log.log(level, "event received %s", kv(event=event.event_type_name, key=event.key,
                                                    source=event.source_name))
        try:
            self.kernel.process(event)
        except Exception as exc:
            if store_unreachable(exc):
                self._store_down(exc)
            raise  # the consumer requeues the message
        if self._outage_since is not None:
            self.log.info("store reachable again %s", kv(
                outage=f"{time.monotonic() - self._outage_since:.1f}s",
                requeued=self._outage_requeued))
            self._outage_since = None
        self.relay.notify()
        failpoint("core.after_commit_before_ack", state_dir=self.settings.state_dir,
                  logger=self.log, event=event.event_type_name, key=event.key,
                  job=event.properties.get("target_job_id") or event.properties.get("job_id"))

    def _store_down(self, error: Exception) -> None:
        """Log the outage once, then hold the message back a little before it is requeued; a
        stopping core does not wait."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_requeued = 0
            self.log.error("store unreachable, events are requeued until it answers %s", kv(
                pause=f"{self.store_down_pause:g}s", error=f"{type(error).__name__}: {error}"))
        self._outage_requeued += 1
        self._stop.wait(self.store_down_pause)

    def _report(self, event: Event) -> None:
        """A driver outcome: into the outbox (durable), published by the relay."""
        with write_transaction(self._store()) as conn:
            repo.enqueue(conn, event)
        task_id = event.properties.get("driver_task_id")
        if isinstance(task_id, int):
            with self._outcomes_lock:
                self._outcomes[task_id] = event
                while len(self._outcomes) > REMEMBERED_OUTCOMES:
                    self._outcomes.popitem(last=False)
        self.relay.notify()

    # -- stopping --

    def _shutdown(self, consumer_thread: threading.Thread) -> None:
        grace = self.settings.shutdown_grace
        deadline = time.monotonic() + grace
        self.log.info("core stopping %s", kv(pid=self.identity.pid))
        self.consumer.stop()
        consumer_thread.join(max(1.0, grace))
        if consumer_thread.is_alive():
            self.log.warning("consumer did not stop in time: its event stays unacked and will "
                             "be redelivered")
        self.ticker.stop()
        self._stop_monitors()
        left = self.driver.stop(max(0.0, deadline - time.monotonic()))
        try:
            self._settle(deadline)
        except Exception as exc:  # noqa: BLE001 - the store is down: recover() at the next start
            self.log.error("settling driver outcomes failed %s",
                           kv(error=f"{type(exc).__name__}: {exc}"))
        self.relay.stop(max(1.0, deadline - time.monotonic()))
        if self.engine is not None:
            self.engine.dispose()
        self.log.info("core stopped %s", kv(pid=self.identity.pid, driver_commands_left=left))

    def _settle(self, deadline: float) -> None:
        """Process here the driver outcomes whose tasks are still open. They are in the outbox
        and will come back through the queue, but the consumer has stopped, and the next core
        would take an open task for a start or kill interrupted by a crash (stuck). Processing
        them now closes the tasks; their later redelivery changes nothing (same key). Commands
        that follow from them (a kill for a job stopped while starting) run inline."""
        pending: list[Event] = []
        with self._store().connect() as conn:
            open_ids = [task.id for task in repo.open_driver_tasks(conn)]
        with self._outcomes_lock:
            pending = [self._outcomes[i] for i in open_ids if i in self._outcomes]
        self.kernel.dispatch = lambda command: pending.append(self._run_inline(command))
        while pending and time.monotonic() < deadline:
            event = pending.pop(0)
            self.log.info("outcome settled at shutdown %s", kv(
                event=event.event_type_name, key=event.key,
                task_id=event.properties.get("driver_task_id")))
            self.kernel.process(event)

    def _run_inline(self, command: Command) -> Event:
        event = self.driver.execute(command)
        with write_transaction(self._store()) as conn:
            repo.enqueue(conn, event)
        return event


def _store_name(settings: Settings) -> str:
    if settings.db_url:
        return redact(settings.db_url) if "@" in settings.db_url else settings.db_url
    return str(Path(settings.state_dir) / "tengine.db")
