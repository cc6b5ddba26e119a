"""Host down: the server is powered off (every process of it dies, its cable is out first, so not
even the RSTs of dying sockets get out); its end powers it on again (docs/hosts.md)."""

from __future__ import annotations

from harness.hosts.base import Host

from .base import Nemesis


class HostDown(Nemesis):
    kind = "host-down"

    def __init__(self, host: Host) -> None:
        super().__init__(name="server powered off", target=host.name, subject=host,
                         source=host.name, how="every process killed, cable out")
        self.host = host

    def invoke(self) -> None:
        self.host.down()

    def teardown(self) -> None:
        self.host.up()
