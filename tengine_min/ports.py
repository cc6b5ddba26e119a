"""A TCP port nothing listens on, for a server about to start (the broker, the console, the
toxiproxy server, a test's upstream): ``free_port()``.

By default the kernel picks the port (one of its ephemeral ports). A port that is kept and used
again later, such as the broker's (stored in its state dir so that a restart brings back the same
node), is drawn from a range ``within`` instead: outside the ephemeral range no outgoing
connection can be holding it when the server starts again.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection

LOCALHOST = "127.0.0.1"
ATTEMPTS = 200  # candidates tried before giving up


class NoFreePort(RuntimeError):
    """No port could be found; the message says where it looked."""


def free_port(host: str = LOCALHOST, *, exclude: Collection[int] = (),
              within: tuple[int, int] | None = None) -> int:
    """A port on ``host`` that a listener could bind right now and that is not in ``exclude``
    (ports already chosen for something else). ``within=(low, high)`` draws it from
    ``low <= port < high``; without it the kernel picks one."""
    if within is not None and not 0 < within[0] < within[1] <= 65536:
        raise ValueError(f"within={within!r}: not a range (low, high) of ports, low < high")
    for _ in range(ATTEMPTS):
        port = random.randrange(*within) if within is not None else _kernel_port(host)
        if port not in exclude and _can_listen(host, port):
            return port
    where = f"in {within[0]}..{within[1] - 1}" if within is not None else "from the kernel"
    raise NoFreePort(f"no free port on {host} {where} after {ATTEMPTS} tries"
                     + (f" (excluding {sorted(exclude)})" if exclude else ""))


def _kernel_port(host: str) -> int:
    with socket.socket() as probe:
        try:
            probe.bind((host, 0))
        except OSError as exc:
            raise NoFreePort(f"cannot listen on {host}: {exc.strerror}") from exc
        return probe.getsockname()[1]


def _can_listen(host: str, port: int) -> bool:
    # SO_REUSEADDR as the servers set it: a port left in TIME_WAIT can be listened on again.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
