"""Fixtures shared by test directories (the helpers they use are in tests/support):

- ``session_broker``: one private RabbitMQ node per session for the integration and browser
  tests, in its own dir under /tmp, stopped at the end even when tests fail; the teardown checks
  that no process of it (beam, epmd...) remains.
- ``server`` (our toxiproxy server, per module), ``client`` (toxiproxy-python on it) and ``echo``
  (an echo upstream): the toxiproxy and link tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy

from harness.links import ToxiproxyServer, start_fallback_server
from support.integration import new_broker_dir, remove_broker_dir, require_integration_environment
from support.tcp import TcpServer, echo_server
from tengine_min.broker import Broker


@pytest.fixture(scope="session")
def session_broker() -> Iterator[Broker]:
    require_integration_environment()
    folder = new_broker_dir()
    broker = Broker(folder)
    try:
        broker.start()
        yield broker
    finally:
        leftovers = remove_broker_dir(folder)
        assert not leftovers, f"processes of the test broker survived stop: {leftovers}"


@pytest.fixture(scope="module")
def server() -> Iterator[ToxiproxyServer]:
    """Our fallback toxiproxy server for one module; it must stop cleanly and log no error."""
    server = start_fallback_server()
    yield server
    process = server.process
    server.stop(keep_log=True)
    assert process.returncode == 0  # stopped cleanly on SIGTERM
    log = server.log_path.read_text()
    server.log_path.unlink()
    assert "Traceback" not in log, log[-3000:]  # no error hidden in the server


@pytest.fixture
def client(server: ToxiproxyServer) -> Iterator[Toxiproxy]:
    client = Toxiproxy()
    client.update_api_consumer(server.host, server.port)
    yield client
    client.destroy_all()


@pytest.fixture
def echo() -> Iterator[TcpServer]:
    upstream = echo_server()
    yield upstream
    upstream.close()
