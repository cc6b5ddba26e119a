"""The watcher log: ``<state dir>/log/watcher.log``, one line per fact, each with ``job_id=``.

Every command and every watchdog of the host appends to the same file; logfmt's handler writes
each line with one ``O_APPEND`` write so lines of different processes never interleave.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..logfmt import AppendLineHandler, kv, setup_file_logger

LOGGER_NAME = "tengine.watcher"
LEVEL_ENV = "TENGINE_WATCHER_LOG_LEVEL"  # DEBUG by default: heartbeats are kept, grep may filter


class JobIdFilter(logging.Filter):
    """Appends ``job_id=<id>`` to records that lack it (e.g. the bus Publisher's lines)."""

    def __init__(self, job_id: str):
        super().__init__()
        self.job_id = job_id

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "job_id=" not in message:
            record.msg = f"{message} {kv(job_id=self.job_id)}"
            record.args = None
        return True


def log_path(state_dir: Path) -> Path:
    return state_dir / "log" / "watcher.log"


def open_log(state_dir: Path, job_id: str | None) -> logging.Logger:
    """The watcher logger of this process, tagging every line with ``job_id``."""
    level = os.environ.get(LEVEL_ENV, "DEBUG").upper()
    if level not in logging.getLevelNamesMapping():
        level = "DEBUG"
    path = log_path(state_dir).resolve()
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):  # one process, one state dir: drop another dir's file
        if isinstance(old, AppendLineHandler) and old.path != path:
            logger.removeHandler(old)
            old.close()
    logger = setup_file_logger(LOGGER_NAME, path, level)
    logger.propagate = False  # the file is the record; nothing on the command's stderr
    for handler in logger.handlers:
        for old_filter in [f for f in handler.filters if isinstance(f, JobIdFilter)]:
            handler.removeFilter(old_filter)
        if job_id is not None:
            # On the handler, so child loggers' records (the publisher's) are tagged too.
            handler.addFilter(JobIdFilter(job_id))
    return logger


def quiet_logger(name: str) -> logging.Logger:
    """A logger that drops everything: for helpers whose lines the caller re-states itself."""
    logger = logging.getLogger(name)
    logger.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger
