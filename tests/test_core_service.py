"""CoreService._handle when the store cannot be reached: the event is requeued (the handler
raises) only after a pause that a stopping core cuts short, the outage is logged once, and its
end once. The real Kernel on a SQLite store (core_sim.Sim); the outage is a repo function that
raises OperationalError while the test says the store is down. No broker: _handle is what the
consumer calls for each message, and raising is what makes it requeue."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from harness.waiting import wait_for
from support.core_sim import Sim
from support.logs import recording
from support.tcp import dead_amqp_url
from support.templates import definitions, job, jobnet
from support.watcher import POLL
from tengine_min.config import load_settings
from tengine_min.core.service import CoreService
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.resources import default_resources
from tengine_min.store import repo
from tengine_min.store.db import store_unreachable


class Relay:
    def __init__(self) -> None:
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1


@pytest.fixture
def log():
    with recording("test.core.service") as lines:
        yield lines


@pytest.fixture
def sim(tmp_path) -> Sim:
    return Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")


@pytest.fixture
def service(tmp_path, sim, log) -> CoreService:
    """A CoreService with what `run()` would give `_handle`: the kernel and the relay."""
    settings = replace(load_settings(tmp_path / "state", env={}), amqp_url=dead_amqp_url())
    service = CoreService(settings, default_resources(),
                          log=logging.getLogger("test.core.service"))
    service.kernel = sim.kernel
    service.relay = Relay()
    return service


class Outage:
    """While `down`, recording an event fails as an unreachable database does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = True
        real = repo.record_event

        def record_event(*args, **kwargs):
            if self.down:
                raise OperationalError("BEGIN IMMEDIATE", {},
                                       Exception("unable to open database file"))
            return real(*args, **kwargs)

        monkeypatch.setattr(repo, "record_event", record_event)


def start_event(sim: Sim) -> Event:
    root = sim.execution.root
    return Event(ev.START_EXECUTION, properties={
        "execution_id": sim.execution.id, "root_jobnet_id": root.id,
        "target_jobnet_id": root.id})


def test_an_unreachable_store_holds_the_event_back_until_the_core_stops(service, sim, log,
                                                                       monkeypatch):
    Outage(monkeypatch)
    service.store_down_pause = 60.0  # far longer than the test waits: only the stop ends it
    raised: list[BaseException] = []

    def handle() -> None:
        try:
            service._handle(start_event(sim))
        except BaseException as exc:  # noqa: BLE001 - what the consumer would see
            raised.append(exc)

    consumer = threading.Thread(target=handle, daemon=True)
    consumer.start()
    wait_for(lambda: log.having("store unreachable"), timeout=30, what="the outage logged",
             interval=POLL)
    assert consumer.is_alive() and raised == []  # held back, not requeued at once
    service.request_stop()
    consumer.join(10)
    assert not consumer.is_alive(), "a stopping core must not wait out the pause"
    [error] = raised
    assert isinstance(error, OperationalError)  # raised: the consumer requeues the message
    assert service.relay.notified == 0
    assert sim.execution_row().phase == "initialized"  # nothing written


def test_the_default_pause_is_about_a_second(service, sim, monkeypatch):
    Outage(monkeypatch)
    began = time.monotonic()
    with pytest.raises(OperationalError):
        service._handle(start_event(sim))
    assert time.monotonic() - began >= 0.95  # Event.wait(1.0) does not return early


def test_an_outage_is_logged_once_and_its_end_once(service, sim, log, monkeypatch):
    outage = Outage(monkeypatch)
    service.store_down_pause = 0.01
    event = start_event(sim)
    for _ in range(3):  # the same message, redelivered while the store is down
        with pytest.raises(OperationalError):
            service._handle(event)
    [down] = log.having("store unreachable")
    assert "store unreachable, events are requeued until it answers pause=0.01s" in down
    assert "unable to open database file" in down
    assert log.having("store reachable again") == []
    outage.down = False
    service._handle(event)  # the store answers: handled, the caller acks
    [back] = log.having("store reachable again")
    assert "requeued=3" in back
    assert service.relay.notified == 1
    assert sim.execution_row().phase != "initialized"
    outage.down = True  # a second outage is a new line
    with pytest.raises(OperationalError):
        service._handle(start_event(sim))
    assert len(log.having("store unreachable")) == 2


def test_other_failures_are_requeued_without_a_pause(service, sim, log):
    class Broken:
        def process(self, event: Event) -> None:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    service.kernel = Broken()
    service.store_down_pause = 60.0
    began = time.monotonic()
    with pytest.raises(IntegrityError):
        service._handle(start_event(sim))
    assert time.monotonic() - began < 10
    assert log.having("store unreachable") == []


def test_what_counts_as_an_unreachable_store():
    assert store_unreachable(OperationalError("SELECT 1", {}, Exception("disk I/O error")))
    assert store_unreachable(DBAPIError("SELECT 1", {}, Exception("database is locked")))
    assert store_unreachable(DBAPIError("SELECT 1", {}, Exception("unable to open database")))
    assert store_unreachable(DBAPIError("SELECT 1", {}, Exception("server closed"),
                                        connection_invalidated=True))
    assert not store_unreachable(IntegrityError("INSERT", {}, Exception("UNIQUE failed")))
    assert not store_unreachable(DBAPIError("SELECT 1", {}, Exception("syntax error")))
    assert not store_unreachable(RuntimeError("database is locked"))
    # A statement that can never work is a bug, not an outage: requeueing it would block the
    # queue behind it forever.
    assert not store_unreachable(OperationalError("SELECT x", {}, Exception("no such column: x")))
    assert not store_unreachable(OperationalError("SELECT", {}, Exception("no such table: t")))
