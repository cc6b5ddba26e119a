"""Who the core is: the host and pid in Tengine's source and sender names."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreIdentity:
    """Who the core is, for Tengine's source names `job:<host>/<pid>/<root id>/<vertex id>`."""

    host: str
    pid: int

    @classmethod
    def of_this_process(cls) -> CoreIdentity:
        return cls(socket.gethostname(), os.getpid())
