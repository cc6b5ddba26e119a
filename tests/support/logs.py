"""A logger's messages kept for a test to read: ``with recording("test.x") as log: ...``."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Recorded(logging.Handler):
    """Every message of ``logger`` (it is added to it), at any level; safe to read from another
    thread than the one logging, and to wait on."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logger
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(record.getMessage())
            self._changed.notify_all()

    def having(self, text: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if text in line]

    def matching(self, pattern: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if re.search(pattern, line)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """The lines matching ``pattern`` once there are ``count``; AssertionError (with every
        line so far) after ``timeout`` s. Woken by each new line, not polling."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if re.search(pattern, line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout} s waiting for {count} line(s) matching "
                        f"{pattern!r}; lines so far: {self.lines}")
                self._changed.wait(left)


@contextmanager
def recording(name: str) -> Iterator[Recorded]:
    """The messages of logger ``name`` (set to DEBUG) while the block runs."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    handler = Recorded(logger)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
