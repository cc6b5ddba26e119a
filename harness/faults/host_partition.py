"""Host partition: the server's cable is pulled (nothing reaches it or leaves it) while its
processes run on; its end plugs the cable back in (docs/hosts.md)."""

from __future__ import annotations

from harness.hosts.base import Host

from .base import Nemesis


class HostPartition(Nemesis):
    kind = "host-partition"

    def __init__(self, host: Host) -> None:
        super().__init__(name="server partitioned", target=host.name, subject=host,
                         source=host.name, how="cable pulled, processes run on")
        self.host = host

    def invoke(self) -> None:
        self.host.partition()

    def teardown(self) -> None:
        self.host.heal()
