"""The event bus against a real broker: confirms, persistence, retries, reconnects, redelivery."""

from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pika
import pytest

from harness.waiting import wait_for
from support.tcp import dead_amqp_url
from tengine_min.broker import Broker
from tengine_min.bus import topology
from tengine_min.bus.consumer import Consumer
from tengine_min.bus.publisher import Publisher, PublishFailed
from tengine_min.events import names
from tengine_min.events.envelope import Event

pytestmark = pytest.mark.integration
POLL = 0.05  # s between looks at what the consumer threads received


@pytest.fixture
def start_consumer() -> Iterator[Callable[..., tuple[Consumer, threading.Thread]]]:
    """Run Consumers on threads; every one is stopped and must have returned by the end."""
    running: list[tuple[Consumer, threading.Thread, list[BaseException]]] = []

    def start(url: str, handle: Callable[[Event], None], *, on_connected=None, **options):
        consumer = Consumer(url, handle, **options)
        consumer.on_connected = on_connected
        errors: list[BaseException] = []

        def run() -> None:
            try:
                consumer.run()
            except BaseException as exc:  # noqa: BLE001 - reported at teardown
                errors.append(exc)

        thread = threading.Thread(target=run, name="test-consumer", daemon=True)
        thread.start()
        running.append((consumer, thread, errors))
        return consumer, thread

    yield start
    for consumer, thread, errors in running:
        consumer.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "Consumer.run() did not return after stop()"
        assert errors == [], f"Consumer.run() raised {errors}"


def ready_count(channel) -> int:
    declared = channel.queue_declare(topology.QUEUE_NAME, durable=True, passive=True)
    return declared.method.message_count


def take_all(channel) -> list[Event]:
    events = []
    while True:
        method, _, body = channel.basic_get(topology.QUEUE_NAME, auto_ack=True)
        if method is None:
            return events
        events.append(Event.from_json(body))


def job_event(name: str = names.FINISHED_PROCESS_JOB, **properties) -> Event:
    return Event(name, source_name="job:test/1/root/job", sender_name="test", properties=properties)


# ---------------------------------------------------------------------- publish and consume


def test_publish_and_consume_round_trip(broker: Broker, start_consumer, recorded_log,
                                        amqp_channel) -> None:
    received: list[Event] = []
    consumer, thread = start_consumer(broker.url, received.append, logger=recorded_log.logger)
    sent = [job_event(names.START_JOB, n=1), job_event(level="error", n=2),
            job_event(names.JOB_HEARTBEAT, n=3)]
    with Publisher(broker.url, logger=recorded_log.logger) as publisher:
        for event in sent:
            publisher.publish(event)
    wait_for(lambda: len(received) == 3, timeout=15, what="3 events consumed", interval=POLL)
    assert received == sent
    consumer.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert ready_count(amqp_channel(broker.url)) == 0  # acked: closing did not requeue them
    assert recorded_log.matching(rf"^connected broker=127\.0\.0\.1:{broker.amqp_port}$")


def test_messages_are_persistent_json_on_tengines_exchange(broker: Broker, amqp_channel) -> None:
    event = job_event(exit_status=0)
    with Publisher(broker.url) as publisher:
        publisher.publish(event)
    channel = amqp_channel(broker.url)
    # Re-declaring as durable succeeds only if the broker holds them as durable.
    channel.exchange_declare(topology.EXCHANGE_NAME, exchange_type="direct", durable=True)
    channel.queue_declare(topology.QUEUE_NAME, durable=True)
    method, properties, body = channel.basic_get(topology.QUEUE_NAME, auto_ack=True)
    assert (method.exchange, method.routing_key) == ("tengine_event_exchange",
                                                     "tengine_event_queue")
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert properties.message_id == event.key
    assert Event.from_json(body) == event


def test_confirmed_events_survive_a_broker_stop_and_a_crash(broker: Broker, amqp_channel,
                                                            recorded_log) -> None:
    before_stop, before_crash = job_event(n=1), job_event(n=2)
    with Publisher(broker.url, retry_interval=0.2, logger=recorded_log.logger) as publisher:
        publisher.publish(before_stop)
        broker.stop()
        broker.start()
        publisher.publish(before_crash)  # same publisher: its old connection died with the node
        broker.kill()  # SIGKILL right after the confirm: only what is on disk survives
        broker.start()
    assert take_all(amqp_channel(broker.url)) == [before_stop, before_crash]
    assert recorded_log.matching("^disconnected broker=")
    assert recorded_log.matching("^reconnected broker=")


# ---------------------------------------------------------------------- publisher retries


def test_publisher_retries_while_the_broker_is_down_and_delivers_when_it_is_back(
    broker: Broker, recorded_log, amqp_channel
) -> None:
    first, during_outage = job_event(n=1), job_event(n=2)
    publisher = Publisher(broker.url, retry_count=120, retry_interval=0.25,
                          logger=recorded_log.logger)
    publisher.publish(first)
    broker.stop()
    restart_errors: list[BaseException] = []

    def restart_after_two_failures() -> None:
        try:
            recorded_log.wait_for(r"^publish failed .*attempt=2/121", timeout=30)
            broker.start()
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            restart_errors.append(exc)

    restarter = threading.Thread(target=restart_after_two_failures, daemon=True)
    restarter.start()
    try:
        publisher.publish(during_outage)  # blocks through the outage, returns once confirmed
    finally:
        restarter.join(timeout=90)
        publisher.close()
    assert restart_errors == []
    lines = recorded_log.lines
    disconnected = [i for i, line in enumerate(lines) if line.startswith("disconnected broker=")]
    reconnected = [i for i, line in enumerate(lines) if line.startswith("reconnected broker=")]
    assert len(disconnected) == 1 and len(reconnected) == 1 and disconnected[0] < reconnected[0]
    failures = recorded_log.matching(
        rf"^publish failed event=finished\.process\.job\.tengine key={during_outage.key} "
        rf"attempt=\d+/121 "
    )
    assert len(failures) >= 2
    assert 'attempt=1/121 error="' in failures[0]
    assert not recorded_log.matching("gave up")
    assert take_all(amqp_channel(broker.url)) == [first, during_outage]


def test_publisher_gives_up_when_the_broker_stays_down(broker: Broker, recorded_log) -> None:
    event = job_event(exit_status=1)
    publisher = Publisher(broker.url, retry_count=3, retry_interval=0.05,
                          logger=recorded_log.logger)
    publisher.publish(job_event(n=0))  # connected first, so the outage shows as a disconnect
    broker.stop()
    started = time.monotonic()
    with pytest.raises(PublishFailed) as caught:
        publisher.publish(event)
    assert time.monotonic() - started >= 3 * 0.05  # it waited between attempts
    assert f"gave up publishing finished.process.job.tengine key={event.key}" in str(caught.value)
    assert "after 4 attempt(s)" in str(caught.value)
    failures = recorded_log.matching(
        rf"^publish failed event=finished\.process\.job\.tengine key={event.key} ")
    assert [f.split("attempt=")[1].split()[0] for f in failures] == ["1/4", "2/4", "3/4", "4/4"]
    assert "ConnectionRefusedError" in failures[-1]
    assert recorded_log.matching(
        rf"^gave up event=finished\.process\.job\.tengine key={event.key} attempts=4 error=")
    assert len(recorded_log.matching("^disconnected broker=")) == 1
    publisher.close()


def test_close_stops_a_publisher_that_is_retrying(recorded_log) -> None:
    publisher = Publisher(dead_amqp_url(), retry_count=1000, retry_interval=0.2,
                          logger=recorded_log.logger)
    outcome: list[BaseException] = []

    def publish() -> None:
        try:
            publisher.publish(job_event())
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            outcome.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    recorded_log.wait_for(r"attempt=2/1001", timeout=15)
    publisher.close()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], PublishFailed)
    assert "publisher closed while retrying" in str(outcome[0])
    with pytest.raises(PublishFailed, match="publisher is closed"):
        publisher.publish(job_event())


def test_an_unroutable_event_is_retried_after_redeclaring_the_topology(
    broker: Broker, amqp_channel, recorded_log
) -> None:
    publisher = Publisher(broker.url, retry_count=2, retry_interval=0.05,
                          logger=recorded_log.logger)
    publisher.publish(job_event(n=1))
    amqp_channel(broker.url).queue_delete(topology.QUEUE_NAME)  # someone deleted the queue
    event = job_event(n=2)
    publisher.publish(event)
    publisher.close()
    failures = recorded_log.matching(r"^publish failed ")
    assert len(failures) == 1 and "attempt=1/3" in failures[0] and "UnroutableError" in failures[0]
    # the link was fine; only the route was missing
    assert not recorded_log.matching("disconnected")
    assert take_all(amqp_channel(broker.url)) == [event]


# ---------------------------------------------------------------------- consumer


def test_consumer_reconnects_after_a_broker_restart(broker: Broker, start_consumer,
                                                    recorded_log) -> None:
    received: list[Event] = []
    connects: list[float] = []
    consumer, _ = start_consumer(broker.url, received.append, reconnect_interval=0.2,
                                 logger=recorded_log.logger,
                                 on_connected=lambda: connects.append(time.monotonic()))
    wait_for(lambda: consumer.connected and len(connects) == 1, timeout=15, what="first connect",
             interval=POLL)
    before, after = job_event(n=1), job_event(n=2)
    with Publisher(broker.url) as publisher:
        publisher.publish(before)
    wait_for(lambda: received == [before], timeout=15, what="event before the restart",
             interval=POLL)

    broker.stop()
    wait_for(lambda: not consumer.connected, timeout=15, what="consumer to notice the outage",
             interval=POLL)
    recorded_log.wait_for("^disconnected broker=", timeout=15)
    recorded_log.wait_for(r"^connect failed broker=.* attempt=1 ", timeout=15)
    broker.start()
    wait_for(lambda: len(connects) == 2 and consumer.connected, timeout=30, what="reconnect",
             interval=POLL)
    recorded_log.wait_for("^reconnected broker=", timeout=5)

    with Publisher(broker.url) as publisher:
        publisher.publish(after)
    wait_for(lambda: received == [before, after], timeout=15, what="event after the restart",
             interval=POLL)


CONSUMER_THAT_NEVER_ACKS = """
import sys, threading
from tengine_min.bus.consumer import Consumer

def handle(event):
    print("handling", event.key, flush=True)
    threading.Event().wait()  # never returns: the message stays unacked

Consumer(sys.argv[1], handle).run()
"""


def test_an_unacked_message_is_redelivered_after_the_consumer_dies(
    broker: Broker, start_consumer
) -> None:
    event = job_event(n=1)
    with Publisher(broker.url) as publisher:
        publisher.publish(event)
    doomed = subprocess.Popen([sys.executable, "-c", CONSUMER_THAT_NEVER_ACKS, broker.url],
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([doomed.stdout], [], [], 30)
        assert ready, "the first consumer did not receive the event in time"
        assert doomed.stdout.readline().split() == ["handling", event.key]
    finally:
        doomed.kill()
        doomed.wait(timeout=15)
    received: list[Event] = []
    start_consumer(broker.url, received.append)
    wait_for(lambda: len(received) == 1, timeout=15, what="redelivery", interval=POLL)
    assert received == [event]


def test_a_failing_handler_rejects_with_requeue_and_the_event_comes_back(
    broker: Broker, start_consumer, recorded_log, amqp_channel
) -> None:
    seen: list[str] = []

    def handle(event: Event) -> None:
        seen.append(event.key)
        if len(seen) == 1:
            raise RuntimeError("store unavailable")

    consumer, thread = start_consumer(broker.url, handle, logger=recorded_log.logger)
    event = job_event(names.START_JOB)
    with Publisher(broker.url) as publisher:
        publisher.publish(event)
    wait_for(lambda: len(seen) == 2, timeout=15, what="the event delivered again", interval=POLL)
    assert seen == [event.key, event.key]
    assert recorded_log.matching(
        rf'^handler failed event=start\.job\.job\.tengine key={event.key} '
        r'error="RuntimeError: store unavailable" action=requeued$')
    consumer.stop()
    thread.join(timeout=15)
    assert ready_count(amqp_channel(broker.url)) == 0  # the second delivery was acked


def test_malformed_messages_are_logged_with_their_bytes_and_dropped(
    broker: Broker, amqp_channel, start_consumer, recorded_log
) -> None:
    channel = amqp_channel(broker.url)
    good = job_event(n=1)
    for body in (b"not json at all", b'{"event_type_name": "x.tengine", "key": ""}',
                 good.to_json()):
        channel.basic_publish(topology.EXCHANGE_NAME, topology.ROUTING_KEY, body,
                              pika.BasicProperties(delivery_mode=2))
    received: list[Event] = []
    consumer, thread = start_consumer(broker.url, received.append, logger=recorded_log.logger)
    wait_for(lambda: received == [good], timeout=15, what="the valid event", interval=POLL)
    dropped = recorded_log.wait_for("^malformed message dropped ", count=2, timeout=5)
    assert ('error="not JSON: Expecting value at line 1 column 1" bytes=15 '
            'body="b\'not json at all\'"') in dropped[0]
    assert "key must be a non-blank string" in dropped[1] and "bytes=43" in dropped[1]
    consumer.stop()
    thread.join(timeout=15)
    assert ready_count(channel) == 0  # malformed ones were acked, not left to loop


def test_stop_lets_the_current_message_finish_then_run_returns(
    broker: Broker, start_consumer, amqp_channel
) -> None:
    handling, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_handle(event: Event) -> None:
        handling.set()
        release.wait(15)
        finished.append(event.key)

    consumer, thread = start_consumer(broker.url, slow_handle)
    event = job_event()
    with Publisher(broker.url) as publisher:
        publisher.publish(event)
    assert handling.wait(15)
    consumer.stop()  # returns at once; run() waits for the handler
    assert thread.is_alive()
    release.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert finished == [event.key]
    assert ready_count(amqp_channel(broker.url)) == 0  # acked before run() returned


def test_consumer_keeps_trying_to_connect_until_stopped(recorded_log) -> None:
    consumer = Consumer(dead_amqp_url(), lambda event: None, reconnect_interval=0.05,
                        logger=recorded_log.logger)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    lines = recorded_log.wait_for(r"^connect failed broker=127\.0\.0\.1:\d+ attempt=\d+ ", count=3)
    assert [line.split("attempt=")[1].split()[0] for line in lines[:3]] == ["1", "2", "3"]
    assert "ConnectionRefusedError" in lines[0]
    assert not consumer.connected
    consumer.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()


def test_a_stopped_consumer_returns_at_once() -> None:
    consumer = Consumer(dead_amqp_url(), lambda event: None)
    consumer.stop()
    started = time.monotonic()
    consumer.run()
    assert time.monotonic() - started < 1


def test_bad_urls_and_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="bad AMQP URL 'http://x:\\*\\*\\*@h/': expected amqp://"):
        Publisher("http://x:secret@h/")
    with pytest.raises(ValueError, match="retry_count must be an integer >= 0, got -1"):
        Publisher("amqp://guest:guest@127.0.0.1:1/%2F", retry_count=-1)
    with pytest.raises(ValueError, match="prefetch must be an integer >= 1, got 0"):
        Consumer("amqp://guest:guest@127.0.0.1:1/%2F", lambda e: None, prefetch=0)
