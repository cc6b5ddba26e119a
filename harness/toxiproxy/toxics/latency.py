"""latency: delay every chunk by ``latency`` +/- ``jitter`` milliseconds."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import ClassVar

from .base import Stub, Toxic


@dataclass
class LatencyToxic(Toxic):
    type_name: ClassVar[str] = "latency"
    buffer_size: ClassVar[int] = 1024  # chunks in flight, so latency does not cap throughput

    latency: int = 0  # ms
    jitter: int = 0  # ms

    def delay(self) -> float:
        """One draw of the delay in seconds: latency + uniform [-jitter, jitter)."""
        delay_ms = self.latency
        if self.jitter > 0:
            delay_ms += random.randrange(2 * self.jitter) - self.jitter
        return delay_ms / 1000

    async def pipe(self, stub: Stub) -> None:
        loop = asyncio.get_running_loop()
        while (chunk := await stub.receive()) is not None:
            # Count from when the chunk was read, so chunks in flight do not add up.
            sleep = self.delay() - (loop.time() - chunk.timestamp)
            if sleep > 0:
                await asyncio.sleep(sleep)
            # A latency toxic further down the chain then adds its delay on top of this one.
            chunk.timestamp += max(sleep, 0.0)
            await stub.forward()
        stub.close()
