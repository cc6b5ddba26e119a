"""A logger's messages kept for a test to read: ``with recording("test.x") as log: ...``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Recorded(logging.Handler):
    """Every message of the logger it is added to, at any level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def having(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


@contextmanager
def recording(name: str) -> Iterator[Recorded]:
    """The messages of logger ``name`` (set to DEBUG) while the block runs."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    handler = Recorded()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
