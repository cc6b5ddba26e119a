"""Link black hole: data is dropped both ways and nothing closes, like a pulled cable (a
timeout-0 toxic on each stream); its end removes it, and Toxiproxy then closes the
connections it held (docs/links.md)."""

from __future__ import annotations

from harness.links import Link

from .base import Nemesis


class LinkBlackhole(Nemesis):
    kind = "link-blackhole"

    def __init__(self, link: Link, protocol: str, *, source: str) -> None:
        super().__init__(name=f"{protocol} link black hole", target=link.name, subject=link,
                         source=source, how="data dropped both ways, nothing closes")
        self.link = link

    def invoke(self) -> None:
        self.link.blackhole()

    def teardown(self) -> None:
        self.link.unblackhole()
