"""slicer: cut each chunk into pieces of about ``average_size`` +/- ``size_variation`` bytes,
with ``delay`` microseconds between pieces."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import ClassVar

from .base import BadAttributes, Stub, Toxic


@dataclass
class SlicerToxic(Toxic):
    type_name: ClassVar[str] = "slicer"

    average_size: int = 0  # bytes
    size_variation: int = 0  # bytes, should be smaller than average_size
    delay: int = 0  # microseconds between pieces

    def validate(self) -> None:
        # Toxiproxy does not check these, and recurses forever (or panics) on them.
        if self.average_size < 1:
            raise BadAttributes(f"slicer average_size must be at least 1, got {self.average_size}")
        if self.size_variation < 0:
            raise BadAttributes(
                f"slicer size_variation must not be negative, got {self.size_variation}")

    def piece_sizes(self, total: int) -> list[int]:
        """Sizes of the pieces of a chunk of ``total`` bytes: halves, split again while a half
        is bigger than the average by more than the variation, each cut moved at random."""
        if total - self.average_size <= self.size_variation:
            return [total]
        shift = random.randint(-self.size_variation, self.size_variation)
        middle = min(max(total // 2 + shift, 1), total - 1)  # never an empty piece
        return self.piece_sizes(middle) + self.piece_sizes(total - middle)

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.receive()) is not None:
            sizes = self.piece_sizes(len(chunk.data))
            for index, size in enumerate(sizes):
                await stub.forward_part(size)
                if index < len(sizes) - 1 and self.delay > 0:
                    await asyncio.sleep(self.delay / 1_000_000)
        stub.close()
