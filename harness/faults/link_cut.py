"""Link cut: the link's proxy refuses new connections and closes the live ones (Toxiproxy's
disabled proxy); its end enables the proxy again."""

from __future__ import annotations

from harness.links import Link

from .base import Nemesis


class LinkCut(Nemesis):
    kind = "link-cut"

    def __init__(self, link: Link, protocol: str, *, source: str) -> None:
        super().__init__(name=f"{protocol} link cut (refused/reset)", target=link.name,
                         subject=link, source=source, how="refused, live connections closed")
        self.link = link

    def invoke(self) -> None:
        self.link.cut()

    def teardown(self) -> None:
        self.link.enable()
