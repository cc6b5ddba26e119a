"""How the console hands command events to the bus.

`Bus` is anything with `publish(event)` that raises on failure; `BrokerBus` is the real one: a
bus Publisher (persistent messages, confirms) opened on first use and shared by the request
threads (Publisher serializes its callers). The broker's URL is looked up when a publisher is
opened, and again after a failure, so a console started before the state dir's private broker
finds it once it runs. Tests inject an in-process bus instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from ..bus.publisher import Publisher
from ..events.envelope import Event


class Bus(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver the event or raise (PublishFailed, ValueError for a bad URL, ...)."""

    def close(self) -> None: ...


class BrokerBus:
    def __init__(self, url_of: Callable[[], str], *, retry_count: int, retry_interval: float,
                 log: logging.Logger) -> None:
        self.url_of = url_of
        self.retry_count = retry_count
        self.retry_interval = retry_interval
        self.log = log
        self._publisher: Publisher | None = None
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(self.url_of(), retry_count=self.retry_count,
                                            retry_interval=self.retry_interval, logger=self.log)
            publisher = self._publisher
        try:
            publisher.publish(event)
        except Exception:
            with self._lock:  # look the broker up again next time
                if self._publisher is publisher:
                    self._publisher = None
            publisher.close()
            raise

    def close(self) -> None:
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()
