"""Tengine's AMQP topology (one durable direct exchange, one durable queue) and how to reach it.

Publishers and consumers both declare the topology (declaring is idempotent), so whichever starts
first creates it, and a broker that lost its data gets it back on the next connect.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel

EXCHANGE_NAME = "tengine_event_exchange"
QUEUE_NAME = "tengine_event_queue"
# Tengine binds the queue with its own name as routing key and publishes with it.
ROUTING_KEY = QUEUE_NAME

# Drop a connection the broker keeps blocked (memory/disk alarm) so the retry policy takes over,
# instead of blocking forever in basic_publish.
BLOCKED_CONNECTION_TIMEOUT = 30.0


def declare(channel: BlockingChannel) -> None:
    """Declare the exchange, the queue and the binding (no-op when they already exist)."""
    channel.exchange_declare(exchange=EXCHANGE_NAME, exchange_type="direct", durable=True)
    channel.queue_declare(queue=QUEUE_NAME, durable=True)
    channel.queue_bind(queue=QUEUE_NAME, exchange=EXCHANGE_NAME, routing_key=ROUTING_KEY)


def connection_parameters(url: str, connect_timeout: float) -> pika.URLParameters:
    """pika parameters for ``url``; options given in the URL's query (``?heartbeat=5``) win.

    One connection attempt per call: retrying is the caller's policy, counted and logged there.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ValueError(f"bad AMQP URL {redact(url)!r}: expected amqp://user:password@host:port/vhost")
    try:
        params = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:  # bad port, unknown or malformed query option
        raise ValueError(f"bad AMQP URL {redact(url)!r}: {exc}") from None
    given = parse_qs(parts.query)
    if "socket_timeout" not in given:
        params.socket_timeout = connect_timeout
    if "stack_timeout" not in given:
        params.stack_timeout = connect_timeout
    if "blocked_connection_timeout" not in given:
        params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT
    if "connection_attempts" not in given:
        params.connection_attempts = 1
    return params


def broker_address(params: pika.ConnectionParameters) -> str:
    """``host:port`` for log lines (never the password)."""
    return f"{params.host}:{params.port}"


def redact(url: str) -> str:
    """The URL with its password replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def describe_error(exc: BaseException) -> str:
    """The root cause of a pika error in one line, e.g. ``ConnectionRefusedError: [Errno 111] ...``.

    pika wraps a refused connect in three layers (AMQPConnectionError > workflow failure > connector
    error > the OSError); a person reading the log wants the innermost one.
    """
    seen = 0
    while seen < 10:
        seen += 1
        inner = None
        if isinstance(exc, pika.exceptions.AMQPConnectionError) and exc.args and isinstance(
            exc.args[0], BaseException
        ):
            inner = exc.args[0]
        elif group := getattr(exc, "exceptions", None):
            inner = group[-1]
        elif isinstance(wrapped := getattr(exc, "exception", None), BaseException):
            inner = wrapped
        if inner is None:
            break
        exc = inner
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
