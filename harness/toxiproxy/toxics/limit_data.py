"""limit_data: pass the first ``bytes`` bytes of the stream, then close the connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Chunk, Stub, Toxic


@dataclass
class LimitDataState:
    transmitted: int = 0  # bytes passed on this connection, kept across interrupts


@dataclass
class LimitDataToxic(Toxic):
    type_name: ClassVar[str] = "limit_data"

    bytes: int = 0

    def new_state(self) -> LimitDataState:
        return LimitDataState()

    async def pipe(self, stub: Stub) -> None:
        state: LimitDataState = stub.state
        while state.transmitted < self.bytes or self.bytes <= 0:
            chunk = await stub.receive()
            if chunk is None:
                break
            size = min(len(chunk.data), max(self.bytes - state.transmitted, 0))
            if size < len(chunk.data):  # whatever is past the limit is dropped
                stub.held = Chunk(chunk.data[:size], chunk.timestamp) if size else None
            state.transmitted += size  # counted first: an interrupt passes the held part on
            await stub.forward()
            if self.bytes <= 0:
                break  # a limit of 0 closes on the first data, as Toxiproxy does
        stub.close()
