"""bandwidth: limit a direction to ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy counts)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from .base import Stub, Toxic

SLICE_SECONDS = 0.1  # big chunks leave in pieces of 100 ms worth of bytes


@dataclass
class BandwidthToxic(Toxic):
    type_name: ClassVar[str] = "bandwidth"

    rate: int = 0  # KB/s; 0 or less: no limit

    async def pipe(self, stub: Stub) -> None:
        loop = asyncio.get_running_loop()
        debt = 0.0  # seconds this stream still owes; carried so timer error does not add up
        while (chunk := await stub.receive()) is not None:
            if self.rate <= 0:
                await stub.forward()
                continue
            debt += len(chunk.data) / (self.rate * 1000)
            slice_size = int(self.rate * 1000 * SLICE_SECONDS)
            while stub.held is not None and len(stub.held.data) > slice_size:
                await asyncio.sleep(SLICE_SECONDS)
                await stub.forward_part(slice_size)
                debt -= SLICE_SECONDS
            start = loop.time()
            if debt > 0:
                await asyncio.sleep(debt)
            debt -= loop.time() - start
            await stub.forward()
        stub.close()
