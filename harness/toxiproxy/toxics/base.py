"""The toxic interface: how a toxic sees one direction of one connection, chunk by chunk.

After Toxiproxy's ``toxics/toxic.go``. A link (one direction of one proxied connection) is a
chain of stages joined by bounded channels::

    socket reader -> [noop] -> [toxic 1] -> ... -> [toxic n] -> socket writer

Each stage runs one toxic's ``pipe(stub)``. The toxic takes chunks with ``stub.receive()`` and
decides what becomes of them: pass them on (``forward``), delay them (sleep first), split them
(``forward_part``), drop them (``drop``), hold them (not receive more), or end the stream
(``close``, and ``request_reset`` first for a TCP RST).

A stage is interrupted when the chain changes under a live link (a toxic added after it, or it
removed or updated): its task is cancelled and the chunk it held (``stub.held``) is passed on
unchanged, so no data is lost, as Toxiproxy's "don't drop any data on the floor".

``toxicity`` is the chance that a toxic applies to a given link: it is drawn once when the link
is made (and again when the toxic is updated); a link that loses the draw runs a noop instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

UPSTREAM = "upstream"  # client -> server
DOWNSTREAM = "downstream"  # server -> client
STREAMS = (UPSTREAM, DOWNSTREAM)


class BadAttributes(ValueError):
    """A toxic's attributes are not what its type takes (HTTP 400)."""


@dataclass
class Chunk:
    """Bytes read from a socket in one read, with the loop time they were read at."""

    data: bytes
    timestamp: float


class Channel:
    """A bounded FIFO of chunks between two stages that can be closed like a Go channel.

    ``get`` returns the chunks in order, then ``None`` forever once the channel is closed and
    empty. ``put`` waits while the channel is full (that is the backpressure to the sender).
    Both are safe to cancel: a cancelled ``put`` put nothing, a cancelled ``get`` took nothing.
    """

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = max(1, capacity)
        self.items: deque[Chunk] = deque()
        self.closed = False
        self._waiters: list[asyncio.Future[None]] = []

    async def put(self, chunk: Chunk) -> None:
        while len(self.items) >= self.capacity and not self.closed:
            await self._changed()
        if not self.closed:  # nobody reads a closed channel any more: drop
            self.items.append(chunk)
            self._notify()

    async def get(self) -> Chunk | None:
        while not self.items and not self.closed:
            await self._changed()
        if self.items:
            chunk = self.items.popleft()
            self._notify()
            return chunk
        return None

    def take_all(self) -> list[Chunk]:
        """Everything waiting in the channel, taken at once (used when re-joining a chain)."""
        items = list(self.items)
        self.items.clear()
        self._notify()
        return items

    def close(self) -> None:
        self.closed = True
        self._notify()

    async def _changed(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Stub:
    """One toxic's place in one link: its input, its output, its per-connection state."""

    def __init__(self, input: Channel, output: Channel, state: Any = None) -> None:
        self.input = input
        self.output = output
        self.state = state  # per connection, kept across interrupts (limit_data counts in it)
        self.held: Chunk | None = None  # received, not yet passed on
        self.closed = False  # this stage ended the stream
        self.wants_reset = False  # end the connection with RST rather than FIN

    async def receive(self) -> Chunk | None:
        """The next chunk, now held by this stage; ``None`` once the stream has ended."""
        chunk = await self.input.get()
        self.held = chunk
        return chunk

    async def forward(self) -> None:
        """Pass the held chunk on."""
        if self.held is not None:
            await self.output.put(self.held)
            self.held = None

    async def forward_part(self, size: int) -> None:
        """Pass the first ``size`` bytes of the held chunk on and keep holding the rest."""
        held = self.held
        if held is None:
            return
        await self.output.put(Chunk(held.data[:size], held.timestamp))
        rest = held.data[size:]
        self.held = Chunk(rest, held.timestamp) if rest else None

    def drop(self) -> None:
        """Throw the held chunk away."""
        self.held = None

    def request_reset(self) -> None:
        """Make the coming close a TCP reset (SO_LINGER 0) on both sockets of the connection."""
        self.wants_reset = True

    def close(self) -> None:
        """End the stream here: everything after this stage sees the end."""
        if not self.closed:
            self.closed = True
            self.output.close()


class Toxic:
    """Base of every toxic type. Subclasses are dataclasses whose fields are the attributes.

    Every attribute is an integer (as in Toxiproxy, where they are Go int64/int fields);
    attributes left out default to 0, unknown ones are ignored.
    """

    type_name: ClassVar[str] = ""
    buffer_size: ClassVar[int] = 1  # capacity of the channel that feeds this toxic

    async def pipe(self, stub: Stub) -> None:
        """Move chunks from ``stub.input`` to ``stub.output``; return when the stream ended."""
        raise NotImplementedError

    def new_state(self) -> Any:
        """Per-connection state, made once per link (None for stateless toxics)."""
        return None

    def cleanup(self, stub: Stub) -> None:
        """Called on each live link when the toxic is removed, after its stage was stopped."""

    def validate(self) -> None:
        """Raise BadAttributes when the attributes cannot work."""

    def attributes(self) -> dict[str, int]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_attributes(cls, attributes: object, base: Toxic | None = None) -> Toxic:
        """A toxic from JSON attributes; fields not given keep ``base``'s value (else 0)."""
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise BadAttributes(f"attributes of a {cls.type_name} toxic must be a JSON object, "
                                f"got {type(attributes).__name__}")
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.name in attributes:
                value = attributes[field.name]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise BadAttributes(
                        f"attribute {field.name!r} of a {cls.type_name} toxic must be an integer,"
                        f" got {value!r}")
                values[field.name] = value
            elif base is not None:
                values[field.name] = getattr(base, field.name)
        toxic = cls(**values)
        toxic.validate()
        return toxic


@dataclass
class NoopToxic(Toxic):
    """Passes everything through: the head of every chain, and a toxic that lost its draw."""

    type_name: ClassVar[str] = "noop"

    async def pipe(self, stub: Stub) -> None:
        while await stub.receive() is not None:
            await stub.forward()
        stub.close()


@dataclass
class ProxyToxic:
    """A toxic as attached to a proxy: its name, direction, toxicity and the toxic itself."""

    name: str
    stream: str
    toxicity: float
    toxic: Toxic

    @property
    def type_name(self) -> str:
        return self.toxic.type_name

    def to_json(self) -> dict[str, Any]:
        return {"attributes": self.toxic.attributes(), "name": self.name,
                "type": self.type_name, "stream": self.stream, "toxicity": self.toxicity}
