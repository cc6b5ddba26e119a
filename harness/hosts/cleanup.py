"""Removing what a crashed harness run left behind: everything whose name starts with `PREFIX`.

Only the holder of the hosts lock may do it (then no other run is active, so whatever is left
is a crashed run's): `cleanup()` takes the lock itself; a backend does it when it starts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import tempfile
from pathlib import Path

from ..waiting import wait_for
from .base import HostError
from .lock import HostsLock
from .network import BRIDGE, PREFIX, delete_link, leftover_links, leftover_netns
from .system import POLL, require_local_backend_environment, tool


def netns_pids(netns: str) -> list[int]:
    """Processes in a network namespace; the hosts' pid namespaces all live in one."""
    return [int(p) for p in tool(["ip", "netns", "pids", netns], what="list processes").split()]


def _emptied(netns: str) -> bool:
    """No process is left in `netns`."""
    return not netns_pids(netns)


def leftover_dirs() -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*"))


def cleanup(*, timeout: float = 0.0) -> list[str]:
    """Take the hosts lock (waiting up to `timeout` s), then `remove_leftovers()`."""
    require_local_backend_environment()
    lock = HostsLock()
    lock.acquire(timeout)
    try:
        return remove_leftovers()
    finally:
        lock.release()


def remove_leftovers() -> list[str]:
    """Kill, unlink and delete every leftover; one line per thing removed. Hold the lock!"""
    removed = []
    for netns in leftover_netns():
        pids = netns_pids(netns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(functools.partial(_emptied, netns), timeout=10,
                 what=f"the processes of {netns} to end", interval=POLL, error=HostError)
        tool(["ip", "netns", "del", netns], what=f"remove netns {netns}")
        removed.append(f"netns {netns}" + (f" (killed {len(pids)} processes)" if pids else ""))
    links = leftover_links()
    # Host veths go with their netns; the bridge last so its ports are gone first.
    for name in sorted(links, key=lambda n: n == BRIDGE):
        if delete_link(name):
            removed.append(f"link {name}")
    for folder in leftover_dirs():
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            raise HostError(f"could not remove {folder}")
        removed.append(f"dir {folder}")
    return removed
