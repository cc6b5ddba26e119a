"""Consume ``tengine_event_queue`` with manual acks, reconnecting until stopped.

For each message: a malformed one is logged with its bytes and acked (it is not an event, and
Tengine drops blank-key messages the same way); otherwise ``handle(event)`` runs, and returning
normally acks it while raising rejects it with requeue, so it comes back (to this or another
consumer). The broker redelivers whatever was not acked when a consumer dies.

``handle`` runs on the thread that called ``run()``, inside pika's I/O loop: while it runs no AMQP
heartbeat is answered, so slow work belongs in worker threads (the core reports back as events).

Log lines (one fact each, key=value)::

    connected broker=127.0.0.1:5673
    connect failed broker=127.0.0.1:5673 attempt=4 error="ConnectionRefusedError: ..."
    disconnected broker=127.0.0.1:5673 error="ConnectionClosedByBroker: (320) ..."
    reconnected broker=127.0.0.1:5673
    malformed message dropped error="missing key" bytes=12 body="b'{...}'"
    handler failed event=start.job.job.tengine key=... error="..." action=requeued
    stopped broker=127.0.0.1:5673
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from tengine_min.bus import topology
from tengine_min.events.envelope import Event, MalformedEvent
from tengine_min.logfmt import kv

LOGGED_BODY_BYTES = 1024  # a malformed body is logged up to this many bytes (and its full length)

_RETRYABLE = (pika.exceptions.AMQPError, OSError)


class Consumer:
    """Blocking consumer: ``run()`` on one thread, ``stop()`` from any other. One-shot: once
    stopped, ``run()`` returns at once; make a new Consumer to consume again."""

    def __init__(
        self,
        url: str,
        handle: Callable[[Event], None],
        *,
        prefetch: int = 1,
        logger: logging.Logger | None = None,
        reconnect_interval: float = 1.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be an integer >= 1, got {prefetch!r}")
        if reconnect_interval < 0:
            raise ValueError(f"reconnect_interval must be >= 0 seconds, got {reconnect_interval!r}")
        self._params = topology.connection_parameters(url, connect_timeout)
        self._broker = topology.broker_address(self._params)
        self._handle = handle
        self._prefetch = prefetch
        self._log = logger or logging.getLogger("tengine.bus.consumer")
        self._reconnect_interval = reconnect_interval
        self._stop = threading.Event()
        self._running = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._connected = False
        # Called (on the run() thread) after each connect and reconnect, once consuming is set up.
        self.on_connected: Callable[[], None] | None = None

    @property
    def connected(self) -> bool:
        """Whether it is connected and consuming right now."""
        return self._connected

    # ---------------------------------------------------------------- run / stop

    def run(self) -> None:
        if not self._running.acquire(blocking=False):
            raise RuntimeError("Consumer.run() is already running on another thread")
        try:
            self._run()
        finally:
            self._connected = False
            self._close_connection()
            self._running.release()
            self._log.info("stopped %s", kv(broker=self._broker))

    def stop(self) -> None:
        """Ask run() to return after the message being handled (if any) is acked or rejected."""
        self._stop.set()
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(self._stop_consuming)
            except _RETRYABLE:
                return  # the connection is already closing: run() sees the flag on its way out

    def _stop_consuming(self) -> None:
        channel = self._channel
        if channel is not None and channel.is_open:
            channel.stop_consuming()

    def _run(self) -> None:
        ever_connected = False
        link_failed = False
        failed_connects = 0
        while not self._stop.is_set():
            try:
                channel = self._connect()
            except _RETRYABLE as exc:
                failed_connects += 1
                link_failed = True
                self._log.warning("connect failed %s", kv(
                    broker=self._broker, attempt=failed_connects,
                    error=topology.describe_error(exc)))
                self._stop.wait(self._reconnect_interval)
                continue
            failed_connects = 0
            self._connected = True
            word = "reconnected" if ever_connected or link_failed else "connected"
            self._log.info("%s %s", word, kv(broker=self._broker))
            ever_connected, link_failed = True, False
            self._call_on_connected()
            if self._stop.is_set():  # stop() may have come before the connection was visible
                break
            try:
                channel.start_consuming()  # returns after stop_consuming()
            except _RETRYABLE as exc:
                self._connected = False
                link_failed = True
                self._log.warning("disconnected %s", kv(
                    broker=self._broker, error=topology.describe_error(exc)))
                self._close_connection()
                self._stop.wait(self._reconnect_interval)

    def _connect(self) -> BlockingChannel:
        connection = pika.BlockingConnection(self._params)
        try:
            channel = connection.channel()
            topology.declare(channel)
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.basic_consume(
                queue=topology.QUEUE_NAME, on_message_callback=self._on_message, auto_ack=False
            )
        except BaseException:
            _close_quietly(connection)
            raise
        self._channel = channel
        self._connection = connection
        return channel

    def _call_on_connected(self) -> None:
        if self.on_connected is None:
            return
        try:
            self.on_connected()
        except Exception as exc:  # noqa: BLE001 - a broken callback must not stop consuming
            self._log.error("on_connected failed %s", kv(error=f"{type(exc).__name__}: {exc}"),
                            exc_info=True)

    def _close_connection(self) -> None:
        self._channel = None
        connection, self._connection = self._connection, None
        if connection is not None:
            _close_quietly(connection)

    # ---------------------------------------------------------------- messages

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, _props: BasicProperties, body: bytes
    ) -> None:
        try:
            event = Event.from_json(body)
        except MalformedEvent as exc:
            self._log.warning("malformed message dropped %s", kv(
                error=str(exc), bytes=len(body), body=repr(body[:LOGGED_BODY_BYTES])))
            channel.basic_ack(delivery_tag=method.delivery_tag)
            return
        try:
            self._handle(event)
        except Exception as exc:  # noqa: BLE001 - any handler failure means: requeue, log it
            self._log.error("handler failed %s", kv(
                event=event.event_type_name, key=event.key, error=f"{type(exc).__name__}: {exc}",
                action="requeued"), exc_info=True)
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=method.delivery_tag)


def _close_quietly(connection: BlockingConnection) -> None:
    if connection.is_open:
        # it is being discarded: a failed close changes nothing
        with contextlib.suppress(*_RETRYABLE):
            connection.close()
