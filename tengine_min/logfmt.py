"""One-line key=value log records, shared by every tengine_min process.

A record is one fact: ``<iso time> <LEVEL> <logger name> <message>`` where the message is a
short phrase followed by ``key=value`` pairs built with :func:`kv`, e.g.::

    2024-05-01T10:00:00.123456+00:00 WARNING tengine.watcher publish failed job_id=j1 attempt=3/31

Records never span lines (newlines are escaped), so a person or a harness can grep them.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

# Characters that force a value into double quotes so the record can be split back into pairs.
_NEEDS_QUOTES = set(' "=\\\t\n\r')


def format_value(value: object) -> str:
    """Render one value: bare when it is a plain word, else double-quoted with escapes."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text and not (_NEEDS_QUOTES & set(text)):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def kv(**fields: object) -> str:
    """``kv(job_id="j1", error="Connection refused")`` -> ``job_id=j1 error="Connection refused"``.

    Keys keep the order given. Empty or None values are written as ``""`` so every pair is visible.
    """
    return " ".join(f"{key}={format_value(value)}" for key, value in fields.items())


class _LineFormatter(logging.Formatter):
    """``<iso time UTC> <LEVEL> <name> <message>``, newlines of tracebacks escaped."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="microseconds")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line.replace("\r", "\\r").replace("\n", "\\n")


class AppendLineHandler(logging.Handler):
    """Writes each record with ONE ``os.write`` on an ``O_APPEND`` descriptor.

    Several processes (e.g. watchdogs of one host) may append to the same file: a single append
    write per record keeps their lines whole, where a buffered stream could split long ones.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", errors="backslashreplace")
            with self._fd_lock:
                if self._fd >= 0:
                    os.write(self._fd, data)
        except Exception:  # noqa: BLE001 - logging must never take the process down
            self.handleError(record)

    def close(self) -> None:
        with self._fd_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        super().close()


def setup_file_logger(name: str, path: str | Path,
                      level: int | str = logging.INFO) -> logging.Logger:
    """Return logger ``name`` writing one-line records to ``path`` (created with its folder).

    Calling it again for the same name and path reuses the handler instead of doubling lines.
    """
    path = Path(path).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the log folder {path.parent}: {exc.strerror}") from exc
    logger = logging.getLogger(name)
    logger.setLevel(level)
    for handler in logger.handlers:
        if isinstance(handler, AppendLineHandler) and handler.path == path:
            return logger
    handler = AppendLineHandler(path)
    handler.setFormatter(_LineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    return logger
