"""Real TCP upstreams on 127.0.0.1 and socket helpers, for the toxiproxy and link tests (no
mocks); the fixtures that start our toxiproxy server are in tests/conftest.py.

- ``TcpServer(on_client)``: accepts in a thread, runs ``on_client(sock)`` per client in a thread.
- ``echo_server``, ``sending_server(payload, close)``: the two upstream behaviours the tests need.
- ``round_trip``, ``read_until_end``: measure with deadlines, never sleep-and-hope.
- ``dead_amqp_url``: an AMQP URL where nothing listens, refused at once (a broker that is down).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from tengine_min.ports import free_port

LOCAL = "127.0.0.1"
POLL = 0.01  # s between looks while waiting: a proxy on this machine answers within ms


class TcpServer:
    """A listening socket on 127.0.0.1 that hands each client to ``on_client`` in a thread."""

    def __init__(self, on_client: Callable[[socket.socket], None]) -> None:
        self.on_client = on_client
        self.listener = socket.create_server((LOCAL, 0))
        self.port = self.listener.getsockname()[1]
        self.received = bytearray()  # what echo clients sent, for "was it delivered?" checks
        self.accepted = 0
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{LOCAL}:{self.port}"

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self.on_client(client)
        except OSError:
            pass
        finally:
            client.close()

    def close(self) -> None:
        self.listener.close()
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.close()


def echo_server() -> TcpServer:
    server: TcpServer

    def echo(client: socket.socket) -> None:
        while data := client.recv(65536):
            server.received += data
            client.sendall(data)

    server = TcpServer(echo)
    return server


def sending_server(payload: bytes, close: bool) -> TcpServer:
    """Sends ``payload`` on accept; then closes at once, or waits for the client to close."""

    def send(client: socket.socket) -> None:
        client.sendall(payload)
        if not close:
            while client.recv(65536):
                pass

    return TcpServer(send)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOCAL, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += more
    return data


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to come back from an echo upstream."""
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def read_until_end(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, list[int], str]:
    """Everything until the peer ends the stream: (data, size of each read, how it ended:
    "eof", "reset" or "timeout")."""
    sock.settimeout(timeout)
    data, reads = bytearray(), []
    end = "eof"
    try:
        while more := sock.recv(65536):
            data += more
            reads.append(len(more))
    except ConnectionResetError:
        end = "reset"
    except TimeoutError:
        end = "timeout"
    return bytes(data), reads, end


def is_refused(port: int) -> bool:
    try:
        socket.create_connection((LOCAL, port), timeout=2.0).close()
    except ConnectionRefusedError:
        return True
    return False


def dead_amqp_url() -> str:
    """An AMQP URL where nothing listens, so a connection is refused at once."""
    return f"amqp://guest:guest@{LOCAL}:{free_port()}/%2F"
