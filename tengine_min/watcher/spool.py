"""Spooling a script's stdout and stderr with bounded memory.

Each stream is read from its pipe in large chunks and written to its spool file (up to an optional
cap); only the first and the last ``EXCERPT_BYTES`` stay in memory, for the finished event, with
the exact count of the bytes between them. The pump never blocks on one pipe while the other fills:
it waits on both (and on the script's exit) with poll.

A write to a spool file that fails (a full disk: ENOSPC, EDQUOT, EIO, ...) ends the spooling of
that stream only: the pipe is still read to the end, so the script never blocks on it, the head
and tail are still kept for the event, and the bytes not written count as ``spool_dropped_bytes``;
``spool_error`` says why the file is incomplete. One ``spool write failed`` line is logged.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..logfmt import kv

EXCERPT_BYTES = 64 * 1024  # head and tail kept for the event, per stream
READ_CHUNK = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # asked of the kernel; fewer wake-ups for big outputs
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass
class StreamSpool:
    """One output stream: its spool file, its head and tail, and its byte counts."""

    name: str
    path: Path
    cap: int | None = None  # bytes kept in the spool file; None = all
    total_bytes: int = 0
    spooled_bytes: int = 0
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    spool_error: str | None = None  # why the spool file stopped short (e.g. the disk is full)
    log: logging.Logger | None = None  # the watcher log, for the "spool write failed" line
    job_id: str | None = None
    _fd: int = -1

    def open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError as exc:  # NFS may report a failed write (a full disk) only here
                if self.spool_error is None:
                    self._write_failed(exc, note="the spool file may be incomplete")

    def feed(self, data: bytes | memoryview) -> None:
        """Account for one chunk: spool what the cap allows, update head and tail."""
        view = memoryview(data)
        self.total_bytes += len(view)
        self._spool(view)
        if len(self.head) < EXCERPT_BYTES:
            take = EXCERPT_BYTES - len(self.head)
            self.head += view[:take]
            view = view[take:]
        if len(view) >= EXCERPT_BYTES:
            self.tail = bytearray(view[-EXCERPT_BYTES:])
        elif len(view):
            self.tail += view
            if len(self.tail) > EXCERPT_BYTES:
                del self.tail[: len(self.tail) - EXCERPT_BYTES]

    def _spool(self, view: memoryview) -> None:
        if self.spool_error is not None:
            return  # the file stopped short already; the bytes count as spool_dropped_bytes
        room = len(view)
        if self.cap is not None:
            room = max(0, min(room, self.cap - self.spooled_bytes))
        chunk = view[:room]
        while len(chunk):
            try:
                written = os.write(self._fd, chunk)
            except OSError as exc:
                self._write_failed(exc)
                return
            self.spooled_bytes += written
            chunk = chunk[written:]

    def _write_failed(self, exc: OSError, note: str = "the output is still read and its head "
                      "and tail kept; the spool file stays incomplete") -> None:
        """Stop spooling this stream for good (a later write would leave a hole in the file)."""
        self.spool_error = str(exc)
        if self.log is not None:
            self.log.warning("spool write failed %s", kv(
                job_id=self.job_id, stream=self.name, path=self.path, error=self.spool_error,
                errno=errno.errorcode.get(exc.errno or 0), spooled_bytes=self.spooled_bytes,
                note=note))

    @property
    def spool_dropped_bytes(self) -> int:
        """Bytes kept out of the spool file: by the output cap, or after a failed write."""
        return self.total_bytes - self.spooled_bytes

    @property
    def dropped_bytes(self) -> int:
        """Bytes between the head and the tail, which the event does not carry."""
        return self.total_bytes - len(self.head) - len(self.tail)

    def summary(self) -> dict:
        return {
            "log": str(self.path),
            "total_bytes": self.total_bytes,
            "spooled_bytes": self.spooled_bytes,
            "spool_dropped_bytes": self.spool_dropped_bytes,
            "spool_error": self.spool_error,
            "head": self.head.decode("utf-8", errors="replace"),
            "tail": self.tail.decode("utf-8", errors="replace"),
            "dropped_bytes": self.dropped_bytes,
        }


def enlarge_pipe(fd: int) -> None:
    """Ask for a bigger pipe buffer; a smaller one still works, only with more wake-ups."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)


def _drain(fd: int, spool: StreamSpool) -> None:
    """Read what is in the pipe now, without waiting for writers that may still hold it open.

    Bounded, so a grandchild that keeps writing cannot hold the watchdog here.
    """
    os.set_blocking(fd, False)
    budget = 4 * PIPE_SIZE
    while budget > 0:
        try:
            data = os.read(fd, READ_CHUNK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            raise
        if not data:
            return
        spool.feed(data)
        budget -= len(data)


def pump(streams: dict[int, StreamSpool], exit_fd: int | None,
         has_exited: Callable[[], bool]) -> None:
    """Copy every pipe in ``streams`` ({fd: spool}) until the script has exited.

    ``exit_fd`` is a pidfd that becomes readable when the script exits (None: fall back to
    calling ``has_exited()`` every 100 ms). After the exit, what is already in the pipes is read
    and the pump returns: a background grandchild still holding them does not keep the job
    "running" (Tengine's watchdog also finished at the script's own exit). The descriptors stay
    the caller's to close (the watchdog closes them right after, so such a grandchild then gets
    SIGPIPE rather than fill a pipe nobody reads).
    """
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    if exit_fd is not None:
        poller.register(exit_fd, select.POLLIN)
    not_at_end = dict(streams)
    exited = False
    while not exited:
        timeout_ms = None if exit_fd is not None else 100
        for fd, _event in poller.poll(timeout_ms):
            if fd == exit_fd:
                exited = True
                continue
            data = os.read(fd, READ_CHUNK)
            if data:
                not_at_end[fd].feed(data)
            else:  # EOF: every writer closed it; keep waiting for the exit itself
                poller.unregister(fd)
                del not_at_end[fd]
        if exit_fd is None and has_exited():
            exited = True
    for fd, spool in not_at_end.items():
        _drain(fd, spool)
