"""Sending a recorded result as ``finished.process.job.tengine`` (by the watchdog or ``resend``).

One place for both, so a resend sends exactly what the watchdog would have sent (same key, same
properties, built from result.json). A lock file serialises the two; ``published.json`` marks the
broker's confirmation, so a result is never sent again once confirmed.

The lock file is created when the watchdog starts, since opening an existing file needs no room
on a full disk. If it still cannot be opened (it could not be created, or EIO), the result is
published without the lock rather than lost: then a resend at the same moment may send the
event a second time, with the same key.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from ..logfmt import kv
from .events import FINISHED, finished_fields, to_event
from .jobdir import JobDir, now_iso

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
AMQP_URL_ENV = "TENGINE_AMQP_URL"


class PublisherLike(Protocol):
    def publish(self, event: Any) -> None: ...
    def close(self) -> None: ...


# (url, retry_count=, retry_interval=, logger=, connect_timeout=) -> a publisher
PublisherFactory = Callable[..., PublisherLike]


def bus_publisher(url: str, *, retry_count: int, retry_interval: float,
                  logger: logging.Logger, connect_timeout: float = 5.0) -> PublisherLike:
    """The real publisher of the bus (imported late: the script starts before pika loads)."""
    from ..bus.publisher import Publisher

    return Publisher(url, retry_count=retry_count, retry_interval=retry_interval, logger=logger,
                     connect_timeout=connect_timeout)


def default_amqp_url() -> str:
    return os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL


def broker_label(url: str) -> str:
    """``host:port`` of an AMQP URL, for log lines (never the password)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 5672}"
    except ValueError:
        return "?"


@dataclass(frozen=True)
class PublishSettings:
    amqp_url: str
    retry_count: int = 30
    retry_interval: float = 1.0


class PublishBusy(Exception):
    """Another process (the watchdog) is publishing this result right now."""


def create_publish_lock(jobdir: JobDir) -> None:
    """Create the job's publish lock file, if it can be (best effort: see the module doc)."""
    with contextlib.suppress(OSError):
        open(jobdir.publish_lock_path, "a").close()


def _open_lock(jobdir: JobDir, log: logging.Logger) -> IO[str] | None:
    """The publish lock file, opened; None (logged) when it cannot be: a full disk."""
    try:
        return open(jobdir.publish_lock_path, "a")
    except OSError as exc:
        log.warning("publish lock not taken %s", kv(
            job_id=jobdir.job_id, path=jobdir.publish_lock_path, error=str(exc),
            note="publishing without it; a resend at the same moment could send the event "
                 "twice, with the same key"))
        return None


def publish_result(jobdir: JobDir, log: logging.Logger, settings: PublishSettings,
                   factory: PublisherFactory, *, by: str, wait_for_lock: bool = True,
                   unrecorded: dict[str, Any] | None = None) -> bool:
    """Publish the job's recorded result unless already published; True once it is confirmed.

    On failure after all retries the result stays in the job dir, unpublished, and False is
    returned. ``wait_for_lock=False`` raises PublishBusy instead of waiting for another publisher.
    ``unrecorded``: the result itself, when it could not be written to result.json (full disk).
    """
    job_id = jobdir.job_id
    lock = _open_lock(jobdir, log)  # None on a full disk: a result is worth more than the lock
    with lock if lock is not None else contextlib.nullcontext():
        if lock is not None:
            flags = fcntl.LOCK_EX | (0 if wait_for_lock else fcntl.LOCK_NB)
            try:
                fcntl.flock(lock, flags)
            except BlockingIOError:
                raise PublishBusy(
                    f"job {job_id}: another process is publishing its result") from None
        done = jobdir.published
        if done is not None:
            log.info("already published %s", kv(job_id=job_id, key=done.get("key"),
                                                 by=done.get("by"), requested_by=by))
            return True
        request, started = jobdir.request, jobdir.started
        result = jobdir.result if unrecorded is None else unrecorded
        if request is None or started is None or result is None:
            raise RuntimeError(f"job {job_id} has no recorded result to publish")
        fields = finished_fields(request, started, result)
        publisher = None
        try:
            publisher = factory(settings.amqp_url, retry_count=settings.retry_count,
                                retry_interval=settings.retry_interval, logger=log)
            publisher.publish(to_event(fields))
        except Exception as exc:  # noqa: BLE001 - PublishFailed after all retries, or no publisher
            log.error("result not published %s", kv(
                job_id=job_id, event=FINISHED, key=fields["key"],
                broker=broker_label(settings.amqp_url), error=f"{type(exc).__name__}: {exc}",
                kept=jobdir.file("result.json") if unrecorded is None else None))
            return False
        finally:
            if publisher is not None:
                # closing a dead connection must not hide the outcome
                with contextlib.suppress(Exception):
                    publisher.close()
        try:
            jobdir.write("published.json", {"key": fields["key"], "event": FINISHED,
                                            "published_at": now_iso(), "by": by,
                                            "broker": broker_label(settings.amqp_url)})
        except OSError as exc:  # a full disk: the event is out all the same
            log.warning("publish not recorded %s", kv(
                job_id=job_id, key=fields["key"], path=jobdir.file("published.json"),
                error=str(exc), note="a resend would send it again, with the same key"))
        log.info("published %s", kv(event=FINISHED, key=fields["key"], job_id=job_id,
                                    level=fields["level"], exit_status=result["exit_status"],
                                    by=by))
        return True
