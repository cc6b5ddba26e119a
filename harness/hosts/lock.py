"""One harness run at a time owns the hosts' network (bridge, subnet, `tgh-` names).

Two test processes on one machine (two pytest runs, a scenario run during the unit tests) would
otherwise fight over the same bridge and addresses. A backend holds an exclusive `flock` on
the lock file from its first host until `destroy_all()`; another run waits for it, with a deadline.
The kernel drops the lock when its process dies, so a crashed run never blocks the next one,
and whoever holds the lock knows that any `tgh-` leftovers are a crashed run's.
"""

from __future__ import annotations

import fcntl
import os
import time

from .base import HostError

LOCK_ENV = "TENGINE_HARNESS_LOCK"
DEFAULT_LOCK_FILE = "/run/tengine-harness-hosts.lock"


class HostsLock:
    """The lock file is `path`, else $TENGINE_HARNESS_LOCK, else `DEFAULT_LOCK_FILE`."""

    def __init__(self, path: str | None = None):
        self.path = path or os.environ.get(LOCK_ENV) or DEFAULT_LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to `timeout` seconds for the run that holds it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise HostError(f"another harness run (pid {holder}) holds the hosts "
                                    f"({self.path}); waited {timeout:g} s for it to finish") \
                        from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd = None
