"""Link latency: every chunk delayed by ms +/- jitter in the directions chosen (Toxiproxy's
latency toxic); its end removes the latency toxics."""

from __future__ import annotations

from harness.links import Link

from .base import Nemesis


class LinkLatency(Nemesis):
    kind = "link-latency"

    def __init__(self, link: Link, protocol: str, *, source: str, ms: int, jitter: int = 0,
                 stream: str = "both") -> None:
        super().__init__(name=f"{protocol} link slow (latency)", target=link.name,
                         subject=link, source=source,
                         how=f"{ms} ms +/- {jitter} ms, {stream}",
                         params={"ms": ms, "jitter": jitter, "stream": stream})
        self.link = link
        self.ms, self.jitter, self.stream = ms, jitter, stream

    def invoke(self) -> None:
        self.link.latency(self.ms, self.jitter, self.stream)

    def teardown(self) -> None:
        self.link.remove_toxics("latency")
