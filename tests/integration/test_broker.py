"""The private RabbitMQ node: start, status, stop/start with data kept, crash, clear failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import pika
import psutil
import pytest

from tengine_min.broker import Broker, BrokerError, amqp_url

pytestmark = pytest.mark.integration

PERSIST_QUEUE = "it_broker_persist"


def _publish_persistent(channel, body: bytes) -> None:
    channel.queue_declare(PERSIST_QUEUE, durable=True)
    channel.queue_purge(PERSIST_QUEUE)
    channel.basic_publish(
        exchange="", routing_key=PERSIST_QUEUE, body=body,
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        mandatory=True,
    )  # returns once the broker confirmed (the channel is in confirm mode)


def _take_one(channel) -> tuple[bytes | None, pika.BasicProperties | None]:
    method, properties, body = channel.basic_get(PERSIST_QUEUE, auto_ack=True)
    return (body, properties) if method else (None, None)


def test_start_is_idempotent_and_status_names_the_node(broker: Broker) -> None:
    status = broker.status()
    assert status["running"] is True
    assert status["amqp_port"] == broker.amqp_port
    assert status["node"] == broker.node_name == f"tengine-{broker.amqp_port}@localhost"
    assert status["state_dir"] == str(broker.state_dir)
    assert psutil.Process(status["pid"]).name().startswith("beam")
    broker.start()  # already running: returns without starting a second node
    assert broker.status()["pid"] == status["pid"]
    assert broker.accepts_connections()


def test_node_is_private_and_listens_on_loopback_only(broker: Broker, processes_of) -> None:
    settings = json.loads((broker.state_dir / "broker.json").read_text())
    assert settings["amqp_port"] == broker.amqp_port != 5672
    beam = psutil.Process(broker.status()["pid"])
    assert beam.username() == "rabbitmq"
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in beam.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert ("127.0.0.1", broker.amqp_port) in listening
    assert ("127.0.0.1", settings["dist_port"]) in listening
    assert {ip for ip, _ in listening} == {"127.0.0.1"}
    epmd = [p for p in processes_of(broker.state_dir) if p.name() == "epmd"]
    assert len(epmd) == 1
    assert any(c.laddr.port == settings["epmd_port"] and c.status == psutil.CONN_LISTEN
               for c in epmd[0].net_connections(kind="inet"))
    assert (broker.state_dir / "mnesia" / broker.node_name).is_dir()
    assert broker.node_name in broker.node_log.read_text()
    for sub in ("mnesia", "log", "run", "home"):
        assert (broker.state_dir / sub).stat().st_uid == psutil.Process(beam.pid).uids().real


def test_stop_then_start_keeps_the_durable_queue_and_persistent_messages(
    broker: Broker, amqp_channel, processes_of
) -> None:
    _publish_persistent(amqp_channel(broker.url), b"kept across stop/start")
    # Stop through another Broker object on the same dir, as `tengine broker stop` would.
    other = Broker(broker.state_dir)
    assert other.settings == broker.settings
    other.stop()
    assert other.status()["running"] is False
    assert processes_of(broker.state_dir) == []  # beam, epmd and helpers all gone
    assert not broker.accepts_connections()
    other.stop()  # idempotent
    broker.start()
    body, properties = _take_one(amqp_channel(broker.url))
    assert body == b"kept across stop/start"
    assert properties.delivery_mode == 2


def test_kill_is_a_crash_and_confirmed_messages_survive_it(broker: Broker, amqp_channel,
                                                          processes_of) -> None:
    _publish_persistent(amqp_channel(broker.url), b"kept across a crash")
    pid = broker.status()["pid"]
    broker.kill()
    assert broker.status()["running"] is False
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [p.name() for p in processes_of(broker.state_dir)] == ["epmd"]  # as after a real crash
    broker.start()
    body, _ = _take_one(amqp_channel(broker.url))
    assert body == b"kept across a crash"


def test_a_node_that_fails_to_boot_raises_with_its_log_and_leaves_nothing(
    fresh_broker_dir: Path, processes_of
) -> None:
    broker = Broker(fresh_broker_dir)
    (fresh_broker_dir / "mnesia").mkdir()
    (fresh_broker_dir / "mnesia" / "feature_flags").write_text("this is { not an erlang term\n")
    with pytest.raises(BrokerError) as caught:
        broker.start(timeout=60)
    message = str(caught.value)
    assert f"node {broker.node_name} exited during start-up" in message
    assert "feature_flags_file_read_error" in message  # the cause, from the node's own log
    assert str(broker.startup_log) in message
    assert processes_of(fresh_broker_dir) == []


def test_a_taken_port_is_reported_before_starting(fresh_broker_dir: Path, processes_of) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = Broker(fresh_broker_dir, amqp_port=port)
        with pytest.raises(BrokerError, match=f"127.0.0.1:{port} is taken by another process"):
            broker.start()
    assert processes_of(fresh_broker_dir) == []


def test_an_address_not_on_this_machine_is_reported(fresh_broker_dir: Path) -> None:
    broker = Broker(fresh_broker_dir, bind_host="192.0.2.1")  # TEST-NET-1, never assigned
    with pytest.raises(BrokerError, match=re.escape("192.0.2.1 is not an address of this machine")):
        broker.start()


def test_a_state_dir_the_rabbitmq_user_cannot_reach_is_reported() -> None:
    locked = Path(tempfile.mkdtemp(prefix="tengine-it-locked-"))  # 0700, owned by root
    try:
        with pytest.raises(BrokerError, match=re.escape(
                f"the rabbitmq user cannot enter {locked} (mode 0o700)")):
            Broker(locked / "broker").start()
    finally:
        shutil.rmtree(locked)


def test_reopening_a_state_dir_with_other_arguments_is_refused(fresh_broker_dir: Path) -> None:
    first = Broker(fresh_broker_dir)
    with pytest.raises(BrokerError, match=f"holds a node with AMQP port {first.amqp_port}, not 1"):
        Broker(fresh_broker_dir, amqp_port=1)
    with pytest.raises(BrokerError, match="holds a node with node name"):
        Broker(fresh_broker_dir, node_name="other@localhost")
    assert Broker(fresh_broker_dir).settings == first.settings


def test_a_bad_bind_host_is_refused(fresh_broker_dir: Path) -> None:
    with pytest.raises(BrokerError, match="bind_host 'my host' is not an IPv4 address"):
        Broker(fresh_broker_dir, bind_host="my host")


def test_amqp_url_prefers_tengine_amqp_url(fresh_broker_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENGINE_AMQP_URL", raising=False)
    assert amqp_url(fresh_broker_dir) == Broker(fresh_broker_dir).url
    assert amqp_url(fresh_broker_dir).startswith("amqp://guest:guest@127.0.0.1:")
    monkeypatch.setenv("TENGINE_AMQP_URL", "amqp://u:p@broker.example:5672/%2F")
    assert amqp_url(fresh_broker_dir) == "amqp://u:p@broker.example:5672/%2F"
    assert os.environ["TENGINE_AMQP_URL"]  # unchanged by the call
