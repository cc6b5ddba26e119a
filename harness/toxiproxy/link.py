"""One direction of one proxied connection: socket reader -> toxic chain -> socket writer.

After Toxiproxy's ``link.go``. The chain always starts with a hidden noop stage; toxics are
appended in the order they were added. A toxic added, updated or removed while the connection
is live changes this link's chain in place (the stages around it are interrupted and re-joined).

The writer ends the direction when the chain ends: it closes its destination socket entirely
(no half-close, as Toxiproxy), which ends the other direction's reader, and so the connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from .toxics.base import Channel, Chunk, NoopToxic, ProxyToxic, Stub

READ_SIZE = 32 * 1024  # as Go's io.Copy buffer
FLUSH_TIMEOUT = 5.0  # s to pass on a held chunk when a stage is interrupted (as Toxiproxy)

log = logging.getLogger("harness.toxiproxy")
NOOP = NoopToxic()


class Stage:
    """One toxic (or the head noop) running in one link."""

    def __init__(self, link: Link, toxic: ProxyToxic | None, stub: Stub) -> None:
        self.link = link
        self.toxic = toxic  # None: the hidden noop at the head of the chain
        self.stub = stub
        self.task: asyncio.Task[None] | None = None
        self.applies = True
        self.draw()

    def draw(self) -> None:
        """Decide, for this link, whether the toxic applies (its toxicity is the chance)."""
        self.applies = self.toxic is None or random.random() < self.toxic.toxicity

    def start(self) -> None:
        if not self.link.finished and not self.stub.closed:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        toxic = self.toxic.toxic if self.toxic is not None and self.applies else NOOP
        try:
            await toxic.pipe(self.stub)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a toxic ends the connection rather than hanging it
            log.exception("toxic=%s link=%s failed; closing the stream", toxic.type_name,
                          self.link.name)
            self.stub.close()

    async def stop(self) -> None:
        """Interrupt the toxic; what it held stays in ``stub.held``."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def flush_held(self, output: Channel | None = None) -> None:
        """Pass the held chunk on unchanged (to ``output``, default the stage's own)."""
        held, self.stub.held = self.stub.held, None
        if held is None or self.stub.closed:
            return
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT):
                await (output or self.stub.output).put(held)
        except TimeoutError:
            log.warning("link=%s dropped %d held bytes: the next stage did not take them",
                        self.link.name, len(held.data))


class Link:
    """One direction (upstream: client -> server, downstream: server -> client)."""

    def __init__(self, name: str, direction: str, toxics: list[ProxyToxic],
                 source: asyncio.StreamReader, dest: asyncio.StreamWriter,
                 on_finished: Callable[[Link], None], reset_sockets: Callable[[], None]) -> None:
        self.name = name
        self.direction = direction
        self.source = source
        self.dest = dest
        self.on_finished = on_finished
        self.reset_sockets = reset_sockets
        self.finished = False
        self.head = Channel()  # reader -> noop
        self.tail = Channel()  # last stage -> writer
        self.stages: list[Stage] = []
        feed = self.head
        chain: list[ProxyToxic | None] = [None, *toxics]  # None: the hidden noop head
        for index, toxic in enumerate(chain):
            # The channel out of stage i feeds toxics[i] (chain[i + 1]), sized for it.
            nxt = Channel(toxics[index].toxic.buffer_size) if index < len(toxics) else self.tail
            state = toxic.toxic.new_state() if toxic is not None else None
            self.stages.append(Stage(self, toxic, Stub(feed, nxt, state)))
            feed = nxt
        self._io_tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._io_tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]
        for stage in self.stages:
            stage.start()

    def stop(self) -> None:
        """Cancel everything of this link (the connection is gone)."""
        self.finished = True
        for task in self._io_tasks:
            task.cancel()
        self.head.close()  # closed channels take nothing more: no change of chain waits on them
        for stage in self.stages:
            stage.stub.output.close()
            if stage.task is not None:
                stage.task.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await self.source.read(READ_SIZE):
                await self.head.put(Chunk(data, loop.time()))
        except (ConnectionError, OSError):
            pass  # the source went away: that is the end of the stream
        finally:
            self.head.close()

    async def _write(self) -> None:
        try:
            while (chunk := await self.tail.get()) is not None:
                self.dest.write(chunk.data)
                await self.dest.drain()
        except (ConnectionError, OSError):
            pass  # the destination went away
        # Not reached when cancelled: then the connection is already being torn down.
        if any(stage.stub.wants_reset for stage in self.stages):
            self.reset_sockets()
            self.dest.transport.abort()
        else:
            self.dest.close()
        self.finished = True
        self.on_finished(self)

    def _stopped_meanwhile(self) -> bool:
        """Whether stop() ran while this task awaited: asked again after each await (a plain
        `self.finished` there looks, to mypy, as false as it was before the await)."""
        return self.finished

    def _stage_of(self, toxic: ProxyToxic) -> int | None:
        for index, stage in enumerate(self.stages):
            if stage.toxic is toxic:
                return index
        return None

    async def add_toxic(self, toxic: ProxyToxic) -> None:
        """Append a toxic to the live chain."""
        if self.finished:
            return
        last = self.stages[-1]
        await last.stop()
        await last.flush_held()  # what it held goes straight on, past the new toxic
        if self._stopped_meanwhile() or last.stub.closed:
            return
        feed = Channel(toxic.toxic.buffer_size)
        stage = Stage(self, toxic, Stub(feed, last.stub.output, toxic.toxic.new_state()))
        last.stub.output = feed
        self.stages.append(stage)
        stage.start()
        last.start()

    async def update_toxic(self, toxic: ProxyToxic) -> None:
        """Restart a toxic's stage with its new attributes (and a new toxicity draw)."""
        index = self._stage_of(toxic)
        if index is None or self.finished:
            return
        stage = self.stages[index]
        await stage.stop()
        await stage.flush_held()
        stage.draw()
        stage.start()

    async def remove_toxic(self, toxic: ProxyToxic) -> None:
        """Take a toxic out of the live chain and join its neighbours."""
        index = self._stage_of(toxic)
        if index is None or self.finished:
            return
        stage, previous = self.stages[index], self.stages[index - 1]
        await stage.stop()
        if self._stopped_meanwhile():
            return
        if stage.applies:  # a link that lost the toxicity draw never had this toxic
            toxic.toxic.cleanup(stage.stub)
        if stage.stub.closed:
            return  # the cleanup ended the stream (timeout does)
        await previous.stop()
        if self._stopped_meanwhile():
            return
        # Keep the order: what the removed stage held, what waits for it, what the one before
        # it held. An end of stream among them ends this link's stream.
        await stage.flush_held()
        feed = stage.stub.input
        for chunk in feed.take_all():
            await stage.stub.output.put(chunk)
        if feed.closed:
            stage.stub.close()
            return
        await previous.flush_held(stage.stub.output)
        previous.stub.output = stage.stub.output
        self.stages.pop(index)
        previous.start()
