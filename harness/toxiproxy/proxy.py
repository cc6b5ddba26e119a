"""One TCP proxy: its listener, its connections, and the toxics every connection runs through.

After Toxiproxy's ``proxy.go`` and ``toxic_collection.go``:
- enabling listens (port 0 picks a free port, and ``listen`` then names it: re-enabling binds the
  same port again); disabling closes the listener (new connections are refused) and closes both
  sockets of every live connection;
- each accepted client gets a fresh connection to ``upstream`` (dialled per client; a failed dial
  closes the client) and two links: upstream (client -> server) and downstream (server -> client);
- a toxic added, updated or removed applies at once to the live links of its direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from .link import Link
from .toxics.base import DOWNSTREAM, STREAMS, UPSTREAM, ProxyToxic, Toxic

log = logging.getLogger("harness.toxiproxy")


class ProxyError(Exception):
    """An API-level failure with its HTTP status (Toxiproxy's ApiError)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def split_address(address: str, what: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> (host, port); a clear ProxyError (400) if not."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ProxyError(f"bad request body: {what} address {address!r} is not host:port", 400)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(address: str) -> socket.socket:
    """A listening TCP socket on ``address`` (empty host: all IPv4 interfaces)."""
    host, port = split_address(address, "listen")
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise ProxyError(f"listen tcp {address}: {error}", 500) from error
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go does on Linux
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise ProxyError(f"listen tcp {address}: {error.strerror or error}", 500) from error
    return sock


class ToxicCollection:
    """The toxics of one proxy, per direction in order, and the live links they apply to."""

    def __init__(self) -> None:
        self.chains: dict[str, list[ProxyToxic]] = {stream: [] for stream in STREAMS}
        self.links: set[Link] = set()
        self._lock = asyncio.Lock()  # one change at a time, as Toxiproxy's collection mutex

    def all(self) -> list[ProxyToxic]:
        return [*self.chains[UPSTREAM], *self.chains[DOWNSTREAM]]

    def find(self, name: str) -> ProxyToxic | None:
        return next((toxic for toxic in self.all() if toxic.name == name), None)

    def _links_of(self, stream: str) -> list[Link]:
        return [link for link in self.links if link.direction == stream]

    async def add(self, toxic: ProxyToxic) -> None:
        async with self._lock:
            if self.find(toxic.name) is not None:
                raise ProxyError("toxic already exists", 409)
            # Chain and link list change together, so a link started meanwhile gets it once.
            self.chains[toxic.stream].append(toxic)
            await asyncio.gather(*(link.add_toxic(toxic) for link in self._links_of(toxic.stream)))

    async def update(self, name: str, toxic: Toxic, toxicity: float) -> ProxyToxic:
        async with self._lock:
            found = self.find(name)
            if found is None:
                raise ProxyError("toxic not found", 404)
            found.toxic, found.toxicity = toxic, toxicity
            links = self._links_of(found.stream)
            await asyncio.gather(*(link.update_toxic(found) for link in links))
            return found

    async def remove(self, name: str) -> None:
        async with self._lock:
            found = self.find(name)
            if found is None:
                raise ProxyError("toxic not found", 404)
            await self._remove(found)

    async def reset(self) -> None:
        async with self._lock:
            for toxic in self.all():
                await self._remove(toxic)

    async def _remove(self, toxic: ProxyToxic) -> None:
        self.chains[toxic.stream].remove(toxic)
        await asyncio.gather(*(link.remove_toxic(toxic) for link in self._links_of(toxic.stream)))


class Connection:
    """One accepted client and its connection to the upstream: two links."""

    def __init__(self, proxy: Proxy, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        peer = client[1].get_extra_info("peername")
        self.name = join_address(*peer[:2]) if peer else "?"
        toxics = proxy.toxics
        self.links = [
            Link(f"{self.name} upstream", UPSTREAM, list(toxics.chains[UPSTREAM]), client[0],
                 upstream[1], self._link_finished, self.reset_sockets),
            Link(f"{self.name} downstream", DOWNSTREAM, list(toxics.chains[DOWNSTREAM]),
                 upstream[0], client[1], self._link_finished, self.reset_sockets),
        ]
        self.closed = False

    def start(self) -> None:
        self.proxy.connections.add(self)
        self.proxy.toxics.links.update(self.links)
        for link in self.links:
            link.start()

    def _link_finished(self, link: Link) -> None:
        if all(each.finished for each in self.links):
            self.close()

    def reset_sockets(self) -> None:
        """SO_LINGER 0 on both sockets: their close sends RST, not FIN."""
        for writer in (self.client_writer, self.upstream_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # OSError: already closed
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        """Close both sockets now and forget the connection."""
        if self.closed:
            return
        self.closed = True
        for link in self.links:
            link.stop()
            self.proxy.toxics.links.discard(link)
        self.client_writer.close()
        self.upstream_writer.close()
        self.proxy.connections.discard(self)
        log.info("proxy=%s client=%s connection closed", self.proxy.name, self.name)


class Proxy:
    """A named TCP proxy from ``listen`` to ``upstream``."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._dialling: set[asyncio.StreamWriter] = set()  # clients waiting for their upstream

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [t.to_json() for t in self.toxics.all()]}

    async def start(self) -> None:
        """Listen (a ProxyError 500 if the address cannot be bound)."""
        if self.enabled:
            return
        sock = bind_listener(self.listen)
        host, port = sock.getsockname()[:2]
        self._server = await asyncio.start_server(self._accept, sock=sock)
        self.listen = join_address(host, port)
        self.enabled = True
        log.info("proxy=%s listen=%s upstream=%s started", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening and close every connection (both of its sockets)."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._dialling):
            writer.close()
        for connection in list(self.connections):
            connection.close()
        if server is not None:
            await server.wait_closed()
        log.info("proxy=%s listen=%s stopped", self.name, self.listen)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Change fields; a new listen or upstream restarts the proxy (dropping connections)."""
        if listen != self.listen or upstream != self.upstream:
            split_address(listen, "listen")
            split_address(upstream, "upstream")
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled:
            await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            writer.close()
            return
        self._dialling.add(writer)
        try:
            host, port = split_address(self.upstream, "upstream")
            upstream = await asyncio.open_connection(host, port)
        except (OSError, ProxyError) as error:
            log.error("proxy=%s upstream=%s unable to open connection to upstream: %s",
                      self.name, self.upstream, error)
            writer.close()
            return
        finally:
            self._dialling.discard(writer)
        if not self.enabled or writer.is_closing():  # disabled while we dialled
            writer.close()
            upstream[1].close()
            return
        connection = Connection(self, (reader, writer), upstream)
        connection.start()
        log.info("proxy=%s client=%s upstream=%s accepted", self.name, connection.name,
                 self.upstream)
