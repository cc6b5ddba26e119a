"""Publish events as persistent messages with publisher confirms, retrying as Tengine does.

``publish()`` returns only once the broker confirmed the message. Any failure (cannot connect,
connection lost, channel closed, nack, unroutable return) is one failed attempt: it is logged,
the publisher waits ``retry_interval``, reconnects and tries again; after ``retry_count`` retries
it logs ``gave up`` and raises :class:`PublishFailed`. An event is never dropped silently.

Log lines (one fact each, key=value)::

    connected broker=127.0.0.1:5673
    disconnected broker=127.0.0.1:5673 error="StreamLostError: ..."
    publish failed event=finished.process.job.tengine key=... attempt=3/31 error="..."
    reconnected broker=127.0.0.1:5673
    gave up event=finished.process.job.tengine key=... attempts=31 error="..."

Thread safety: a lock serializes ``publish()`` and ``close()``, so one Publisher may be shared by
threads; a publish that is retrying then holds up the others. Give a thread its own Publisher when
it must not wait (e.g. heartbeats next to a finished event).
"""

from __future__ import annotations

import logging
import threading
from typing import Self

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tengine_min.bus import topology
from tengine_min.events.envelope import Event
from tengine_min.logfmt import kv

DEFAULT_RETRY_COUNT = 30  # Tengine: retry_count 30
DEFAULT_RETRY_INTERVAL = 1.0  # Tengine: retry_interval 1 s


class PublishFailed(Exception):
    """The event could not be delivered within the retries (or the publisher was closed)."""


# Failures that count as one attempt and are retried. OSError covers socket errors pika lets
# through.
_RETRYABLE = (pika.exceptions.AMQPError, OSError)


class Publisher:
    def __init__(
        self,
        url: str,
        *,
        retry_count: int = DEFAULT_RETRY_COUNT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        logger: logging.Logger | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if isinstance(retry_count, bool) or not isinstance(retry_count, int) or retry_count < 0:
            raise ValueError(f"retry_count must be an integer >= 0, got {retry_count!r}")
        if retry_interval < 0:
            raise ValueError(f"retry_interval must be >= 0 seconds, got {retry_interval!r}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self.retry_count = retry_count
        self.retry_interval = retry_interval
        self._params = topology.connection_parameters(url, connect_timeout)
        self._broker = topology.broker_address(self._params)
        self._log = logger or logging.getLogger("tengine.bus.publisher")
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._link_failed = False  # True after a failed connect or a lost link: log "reconnected"

    # ---------------------------------------------------------------- public

    def publish(self, event: Event) -> None:
        """Deliver ``event`` (persistent, confirmed) or raise PublishFailed after the retries."""
        body = event.to_json()  # a bad event fails here, before any attempt: retrying cannot fix it
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event.key,
            type=event.event_type_name,
        )
        attempts = self.retry_count + 1
        with self._lock:
            if self._closed.is_set():
                raise PublishFailed(f"publisher is closed; {event.event_type_name} "
                                    f"key={event.key} not sent")
            last_error = "none"
            attempt = 0
            while attempt < attempts:
                attempt += 1
                try:
                    channel = self._ensure_channel()
                    channel.basic_publish(
                        exchange=topology.EXCHANGE_NAME,
                        routing_key=topology.ROUTING_KEY,
                        body=body,
                        properties=properties,
                        mandatory=True,  # an unroutable message comes back as UnroutableError
                    )
                    return
                except _RETRYABLE as exc:
                    last_error = topology.describe_error(exc)
                    self._after_failure(exc, last_error)
                    self._log.warning("publish failed %s", kv(
                        event=event.event_type_name, key=event.key,
                        attempt=f"{attempt}/{attempts}", error=last_error))
                except BaseException:
                    # Unexpected: the connection state is unknown, start afresh next time.
                    self._drop_connection()
                    raise
                if attempt < attempts and self._closed.wait(self.retry_interval):
                    last_error = "publisher closed while retrying"
                    break
            self._log.error("gave up %s", kv(
                event=event.event_type_name, key=event.key, attempts=attempt, error=last_error))
            raise PublishFailed(
                f"gave up publishing {event.event_type_name} key={event.key} to {self._broker} "
                f"after {attempt} attempt(s): {last_error}"
            )

    def close(self) -> None:
        """Stop retrying (a publish in progress gives up after its current attempt) and
        disconnect."""
        self._closed.set()
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- connection

    def _ensure_channel(self) -> BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            self._drop_connection()
            try:
                self._connection = pika.BlockingConnection(self._params)
            except BaseException:
                self._link_failed = True
                raise
            if self._link_failed:
                self._log.info("reconnected %s", kv(broker=self._broker))
                self._link_failed = False
            else:
                self._log.info("connected %s", kv(broker=self._broker))
        if self._channel is None or not self._channel.is_open:
            channel = self._connection.channel()
            channel.confirm_delivery()  # publisher confirms, always
            topology.declare(channel)
            self._channel = channel
        return self._channel

    def _after_failure(self, exc: BaseException, error: str) -> None:
        """A lost link drops the connection; a channel-level refusal only the channel."""
        connection_lost = isinstance(exc, (pika.exceptions.AMQPConnectionError, OSError)) or (
            self._connection is not None and not self._connection.is_open
        )
        if connection_lost:
            if self._connection is not None:  # we had a link and lost it (not a failed connect)
                self._log.warning("disconnected %s", kv(broker=self._broker, error=error))
            self._link_failed = True
            self._drop_connection()
        else:
            # Nack, unroutable, channel closed: a fresh channel re-declares the topology.
            self._drop_channel()

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and channel.is_open:
            try:
                channel.close()
            except _RETRYABLE as exc:  # it is being discarded; a failure to close changes nothing
                self._log.debug("channel close failed %s", kv(error=topology.describe_error(exc)))

    def _drop_connection(self) -> None:
        self._channel = None
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except _RETRYABLE as exc:  # it is being discarded; a failure to close changes nothing
                self._log.debug("connection close failed %s",
                                kv(error=topology.describe_error(exc)))
