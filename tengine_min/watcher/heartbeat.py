"""The watchdog's heartbeat: ``job.heartbeat.tengine`` every few seconds while the script runs."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..logfmt import kv
from .events import to_event
from .log import quiet_logger
from .publish import PublisherFactory, PublishSettings, broker_label

__all__ = ["HEARTBEAT_CONNECT_TIMEOUT", "Heartbeat"]

HEARTBEAT_CONNECT_TIMEOUT = 5.0  # longest a heartbeat may hold up the finished event


def _root_cause(exc: BaseException) -> str:
    """The cause of a failed heartbeat, without the publisher's "gave up ..." wrapping: a
    heartbeat is never retried, and "gave up" in the log is kept for the finished event."""
    text = str(exc)
    if " attempt(s): " in text:
        return text.split(" attempt(s): ", 1)[1]
    return f"{type(exc).__name__}: {text}"


class Heartbeat(threading.Thread):
    """Sends ``job.heartbeat.tengine`` every ``interval`` s with no retry (Tengine: retry 0).

    Runs beside the pump, so a slow or absent broker never delays the script. It also notices
    the broker going away and coming back, which a long job would otherwise never show in the
    log: ``disconnected`` on the first failed heartbeat, ``reconnected`` on the next good one.
    """

    def __init__(self, interval: float, make_fields: Callable[[], dict[str, Any]],
                 settings: PublishSettings, factory: PublisherFactory, log: logging.Logger,
                 job_id: str):
        super().__init__(name="heartbeat", daemon=True)
        self.interval = interval
        self.make_fields = make_fields
        self.settings = settings
        self.factory = factory
        self.log = log
        self.job_id = job_id
        self.sent = 0
        self._stop_event = threading.Event()
        self._connected: bool | None = None  # None: not tried yet

    def run(self) -> None:
        publisher = None
        broker = broker_label(self.settings.amqp_url)
        quiet = quiet_logger("tengine.watcher.heartbeat_publisher")  # its lines are re-stated below
        timeout = max(0.5, min(HEARTBEAT_CONNECT_TIMEOUT, self.interval))
        while not self._stop_event.is_set():
            fields = self.make_fields()
            try:
                if publisher is None:
                    publisher = self.factory(self.settings.amqp_url, retry_count=0,
                                             retry_interval=0.0, logger=quiet,
                                             connect_timeout=timeout)
                publisher.publish(to_event(fields))
            except Exception as exc:  # noqa: BLE001 - any failure: the next beat tries again
                error = _root_cause(exc)
                self.log.debug("heartbeat not sent %s", kv(job_id=self.job_id, key=fields["key"],
                                                           error=error))
                if self._connected is not False:
                    self.log.warning("disconnected %s", kv(job_id=self.job_id, broker=broker,
                                                           via="heartbeat", error=error))
                self._connected = False
            else:
                self.sent += 1
                self.log.debug("heartbeat %s", kv(job_id=self.job_id, key=fields["key"]))
                if self._connected is False:
                    self.log.info("reconnected %s", kv(job_id=self.job_id, broker=broker,
                                                       via="heartbeat"))
                self._connected = True
            self._stop_event.wait(self.interval)
        if publisher is not None:
            with contextlib.suppress(Exception):  # closing a dead connection: nothing to tell
                publisher.close()

    def stop(self) -> None:
        """Stop beating; wait (bounded) for a heartbeat in flight so it cannot land after the
        finished event and turn the core's event row back into a heartbeat."""
        self._stop_event.set()
        if self.is_alive():
            self.join(HEARTBEAT_CONNECT_TIMEOUT + 1.0)
        if self.is_alive():
            self.log.warning("heartbeat still in flight %s",
                             kv(job_id=self.job_id, note="finished event sent anyway"))
