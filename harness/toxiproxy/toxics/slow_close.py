"""slow_close: pass data on, but hold the end of the stream for ``delay`` milliseconds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from .base import Stub, Toxic


@dataclass
class SlowCloseToxic(Toxic):
    type_name: ClassVar[str] = "slow_close"

    delay: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        while await stub.receive() is not None:
            await stub.forward()
        await asyncio.sleep(self.delay / 1000)
        stub.close()
