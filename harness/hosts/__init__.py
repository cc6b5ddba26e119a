"""Virtual servers for the harness: each a host with its own address, processes and real sshd.

`LocalBackend` makes them from Linux namespaces (root needed); `Host` and `Backend` are the
interface a Docker backend can implement too. Leftovers of a crashed run:
``python -m harness.hosts cleanup``.
"""

from .base import Backend, Host, HostError
from .local import LocalBackend, LocalHost

__all__ = ["Backend", "Host", "HostError", "LocalBackend", "LocalHost"]
