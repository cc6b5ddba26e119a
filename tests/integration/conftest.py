"""Fixtures of the integration tests (the session's broker itself is tests/conftest.py's
``session_broker``):

- ``broker``: the session's node for one test, brought back up first if an earlier test stopped
  or killed it, with ``tengine_event_queue`` purged so each test starts from an empty queue. A
  test may stop/kill it freely: the next test gets it running again.
- ``fresh_broker_dir``: an empty dir for a Broker of the test's own (stopped and removed after).
- ``recorded_log``: a logger whose lines a test can read or wait for (``wait_for(regex)``).
- ``amqp_channel``: a raw pika channel (confirm mode) to a URL, closed after the test.
- ``processes_of``: the live processes that name a broker dir (to check nothing is left behind).

Integration tests need root and Debian's ``rabbitmq-server``; without them they fail saying so.
``TENGINE_SKIP_INTEGRATION=1`` skips them instead (support/integration.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import psutil
import pytest

from harness.cluster import purge_event_queue
from harness.processes import processes_mentioning
from support.integration import (
    new_broker_dir,
    remove_broker_dir,
    require_integration_environment,
)
from support.logs import Recorded, recording
from tengine_min.broker import Broker

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test, marked or not."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _integration_environment() -> None:
    require_integration_environment()


@pytest.fixture
def processes_of() -> Callable[[Path], list[psutil.Process]]:
    """``processes_of(state_dir)``: the live processes that name that dir (independent of
    Broker's own bookkeeping, so it can check that stop() left nothing behind)."""
    return processes_mentioning


@pytest.fixture
def broker(session_broker: Broker) -> Broker:
    session_broker.start()  # no-op when running; brings it back after a test that stopped it
    purge_event_queue(session_broker.url)
    return session_broker


@pytest.fixture
def fresh_broker_dir() -> Iterator[Path]:
    folder = new_broker_dir()
    yield folder
    leftovers = remove_broker_dir(folder)
    assert not leftovers, f"processes survived stop: {leftovers}"


@pytest.fixture
def recorded_log(request: pytest.FixtureRequest) -> Iterator[Recorded]:
    with recording(f"test.{request.node.name}") as recorded:
        yield recorded


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
