"""A small HTTP/1.1 server on asyncio streams, with h11 doing the protocol (keep-alive too).

It hands each request to one async handler and writes back what the handler returns. Only
bodies with a Content-Length are taken (every Toxiproxy client sends one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

import h11

MAX_BODY = 1024 * 1024  # bytes; a Toxiproxy request is a few hundred
READ_SIZE = 64 * 1024

log = logging.getLogger("harness.toxiproxy")


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BodyTooLarge(Exception):
    pass


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           handler: Handler) -> None:
    """Answer requests on one client connection until either side closes it."""
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            try:
                request = await _read_request(conn, reader)
            except h11.RemoteProtocolError as error:
                await _send(conn, writer, Response(error.error_status_hint,
                                                   f"bad request: {error}\n".encode(),
                                                   "text/plain; charset=utf-8"))
                return
            except BodyTooLarge:
                await _send(conn, writer, Response(413, b"request body too large\n",
                                                   "text/plain; charset=utf-8"))
                return
            if request is None:
                return
            await _send(conn, writer, await handler(request))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (ConnectionError, OSError, h11.LocalProtocolError):
        pass  # the client went away mid-answer
    finally:
        writer.close()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
    """The next whole request, or None when the client closed the connection."""
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(READ_SIZE))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise BodyTooLarge()
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            target = urlsplit(request.target.decode("ascii", "replace"))
            headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                       for name, value in request.headers}
            return Request(request.method.decode("ascii"), unquote(target.path), headers,
                           bytes(body))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
    if conn.our_state is not h11.SEND_RESPONSE:
        return
    headers = list(response.headers.items())
    if response.status != 204:  # a 204 has no body, and says nothing of its length
        headers.append(("Content-Length", str(len(response.body))))
    if response.body:
        headers.append(("Content-Type", response.content_type))
    reason = HTTPStatus(response.status).phrase.encode()
    writer.write(conn.send(h11.Response(status_code=response.status, headers=headers,
                                        reason=reason)))
    if response.body:
        writer.write(conn.send(h11.Data(data=response.body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
