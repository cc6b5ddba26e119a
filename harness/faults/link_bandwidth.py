"""Link bandwidth: each direction chosen capped at kbps KB/s (Toxiproxy's bandwidth toxic); its
end removes the bandwidth toxics."""

from __future__ import annotations

from harness.links import Link

from .base import Nemesis


class LinkBandwidth(Nemesis):
    kind = "link-bandwidth"

    def __init__(self, link: Link, protocol: str, *, source: str, kbps: int,
                 stream: str = "both") -> None:
        super().__init__(name=f"{protocol} link slow (bandwidth)", target=link.name,
                         subject=link, source=source, how=f"{kbps} KB/s, {stream}",
                         params={"kbps": kbps, "stream": stream})
        self.link = link
        self.kbps, self.stream = kbps, stream

    def invoke(self) -> None:
        self.link.bandwidth(self.kbps, self.stream)

    def teardown(self) -> None:
        self.link.remove_toxics("bandwidth")
