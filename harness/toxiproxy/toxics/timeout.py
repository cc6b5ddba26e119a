"""timeout: stop all data; close the connection after ``timeout`` ms (0: never close).

As Toxiproxy's ``toxics/timeout.go``: the data that arrives meanwhile is dropped, not held, and
removing the toxic from a live connection closes that connection (its ``Cleanup``). So a
blackhole ends, for the connections it caught, in a close; new connections flow again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from .base import Stub, Toxic


@dataclass
class TimeoutToxic(Toxic):
    type_name: ClassVar[str] = "timeout"

    timeout: int = 0  # ms; 0: hold the connection open forever

    async def pipe(self, stub: Stub) -> None:
        if self.timeout > 0:
            try:
                async with asyncio.timeout(self.timeout / 1000):
                    await self._drop_until_end(stub)
            except TimeoutError:
                pass
        else:
            await self._drop_until_end(stub)
        stub.close()

    async def _drop_until_end(self, stub: Stub) -> None:
        while await stub.receive() is not None:
            stub.drop()

    def cleanup(self, stub: Stub) -> None:
        stub.drop()
        stub.close()
