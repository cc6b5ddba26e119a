"""Fixtures shared by every integration test: one private RabbitMQ node per session, and helpers.

- ``session_broker``: the node, started once per session in its own dir under /tmp, stopped at the
  end even when tests fail; the teardown checks that no process of it (beam, epmd...) remains.
- ``broker``: the same node for one test, brought back up first if an earlier test stopped or
  killed it, with ``tengine_event_queue`` purged so each test starts from an empty queue. A test
  may stop/kill it freely: the next test gets it running again.
- ``fresh_broker_dir``: an empty dir for a Broker of the test's own (stopped and removed after).
- ``recorded_log``: a logger whose lines a test can wait for (``wait_for(regex)``).
- ``wait_until``: wait for a condition with a deadline (never sleep and hope).
- ``amqp_channel``: a raw pika channel (confirm mode) to a URL, closed after the test.
- ``processes_of``: the live processes that name a broker dir (to check nothing is left behind).

Integration tests need root and Debian's ``rabbitmq-server``; without them they fail saying so.
``TENGINE_SKIP_INTEGRATION=1`` skips them instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import psutil
import pytest

from tengine_min.broker import RABBITMQ_SERVER, Broker
from tengine_min.bus import topology

SKIP_VARIABLE = "TENGINE_SKIP_INTEGRATION"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test, marked or not."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def missing_requirements() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the private RabbitMQ node runs as the rabbitmq user)")
    if not RABBITMQ_SERVER.exists():
        missing.append("Debian's rabbitmq-server package (apt-get install rabbitmq-server)")
    return missing


def require_integration_environment() -> None:
    missing = missing_requirements()
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1" + (f"; missing: {', '.join(missing)}" if missing else ""))
    if missing:
        pytest.fail(
            f"integration tests need {' and '.join(missing)}; "
            f"set {SKIP_VARIABLE}=1 to skip them",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _integration_environment() -> None:
    require_integration_environment()


def processes_mentioning(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or environment names ``folder`` (independent of
    Broker's own bookkeeping, so it can check that stop() left nothing behind)."""
    needle = str(folder)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if needle in " ".join(proc.cmdline()) or any(needle in v for v in proc.environ().values()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def processes_of() -> Callable[[Path], list[psutil.Process]]:
    """``processes_of(state_dir)``: the live processes that name that dir (see processes_mentioning)."""
    return processes_mentioning


def _new_broker_dir() -> Path:
    # Not pytest's tmp_path: it lives under a 0700 root folder the rabbitmq user cannot enter.
    return Path(tempfile.mkdtemp(prefix="tengine-it-broker-", dir="/tmp"))


def _remove_broker_dir(folder: Path) -> list[psutil.Process]:
    """Stop whatever runs there, remove the folder, and return the processes that survived."""
    try:
        Broker(folder).stop()
    finally:
        leftovers = processes_mentioning(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers


@pytest.fixture(scope="session")
def session_broker() -> Iterator[Broker]:
    require_integration_environment()
    folder = _new_broker_dir()
    broker = Broker(folder)
    try:
        broker.start()
        yield broker
    finally:
        leftovers = _remove_broker_dir(folder)
        assert not leftovers, f"processes of the test broker survived stop: {leftovers}"


def purge_event_queue(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        topology.declare(channel)
        channel.queue_purge(topology.QUEUE_NAME)
    finally:
        connection.close()


@pytest.fixture
def broker(session_broker: Broker) -> Broker:
    session_broker.start()  # no-op when running; brings it back after a test that stopped it
    purge_event_queue(session_broker.url)
    return session_broker


@pytest.fixture
def fresh_broker_dir() -> Iterator[Path]:
    folder = _new_broker_dir()
    yield folder
    leftovers = _remove_broker_dir(folder)
    assert not leftovers, f"processes survived stop: {leftovers}"


WaitUntil = Callable[..., None]


def _wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def wait_until() -> WaitUntil:
    return _wait_until


class RecordedLog(logging.Handler):
    """Keeps the messages of one logger so a test (or a helper thread) can wait for a line."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(level=logging.DEBUG)
        self.logger = logger
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(record.getMessage())
            self._changed.notify_all()

    def matching(self, pattern: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if re.search(pattern, line)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if re.search(pattern, line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout} s waiting for {count} line(s) matching {pattern!r}; "
                        f"lines so far: {self.lines}"
                    )
                self._changed.wait(left)


@pytest.fixture
def recorded_log(request: pytest.FixtureRequest) -> Iterator[RecordedLog]:
    logger = logging.getLogger(f"test.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    recorder = RecordedLog(logger)
    logger.addHandler(recorder)
    yield recorder
    logger.removeHandler(recorder)


@pytest.fixture
def amqp_channel() -> Iterator[Callable[[str], pika.adapters.blocking_connection.BlockingChannel]]:
    connections: list[pika.BlockingConnection] = []

    def open_channel(url: str) -> pika.adapters.blocking_connection.BlockingChannel:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        connections.append(connection)
        channel = connection.channel()
        channel.confirm_delivery()
        return channel

    yield open_channel
    for connection in connections:
        if connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()  # the broker may have been stopped under it
