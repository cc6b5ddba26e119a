"""Host pause: a hung server, every process of it stopped (SIGSTOP), its network up but nothing
answering; its end resumes them all (docs/hosts.md)."""

from __future__ import annotations

from harness.hosts.base import Host

from .base import Nemesis


class HostPause(Nemesis):
    kind = "host-pause"

    def __init__(self, host: Host) -> None:
        super().__init__(name="server paused", target=host.name, subject=host,
                         source=host.name, how="every process stopped")
        self.host = host

    def invoke(self) -> None:
        self.host.pause()

    def teardown(self) -> None:
        self.host.resume()
