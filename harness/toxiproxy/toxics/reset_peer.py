"""reset_peer: on the first data (or end) of the stream, wait ``timeout`` ms, then reset.

The connection is closed with SO_LINGER 0 on both sockets, so both peers get a TCP RST
("Connection reset by peer") rather than a FIN. The data that triggered it is dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from .base import Stub, Toxic


@dataclass
class ResetPeerToxic(Toxic):
    type_name: ClassVar[str] = "reset_peer"

    timeout: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        await stub.receive()
        stub.drop()
        await asyncio.sleep(self.timeout / 1000)
        stub.request_reset()
        stub.close()
