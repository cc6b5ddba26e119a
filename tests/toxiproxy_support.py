"""Real TCP upstreams on 127.0.0.1 and helpers for the toxiproxy tests (no mocks).

- ``TcpServer(on_client)``: accepts in a thread, runs ``on_client(sock)`` per client in a thread.
- ``echo``, ``send_then(payload, close)``: the two upstream behaviours the tests need.
- ``round_trip``, ``read_until_end``, ``wait_until``: measure with deadlines, never sleep-and-hope.
- fixtures ``server`` (our toxiproxy server, per module), ``client`` (toxiproxy-python on it)
  and ``echo`` (an echo upstream): a test module imports them by name.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from toxiproxy import Toxiproxy

from harness.links import ToxiproxyServer, start_fallback_server

LOCAL = "127.0.0.1"


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
            try:
                client.close()
            except OSError:
                pass


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


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.01)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ToxiproxyServer]:
    """Our fallback toxiproxy server for one module; it must stop cleanly and log no error."""
    server = start_fallback_server()
    yield server
    process = server.process
    server.stop(keep_log=True)
    assert process.returncode == 0  # stopped cleanly on SIGTERM
    log = server.log_path.read_text()
    server.log_path.unlink()
    assert "Traceback" not in log, log[-3000:]  # no error hidden in the server


@pytest.fixture
def client(server: ToxiproxyServer) -> Iterator[Toxiproxy]:
    client = Toxiproxy()
    client.update_api_consumer(server.host, server.port)
    yield client
    client.destroy_all()


@pytest.fixture
def echo() -> Iterator[TcpServer]:
    upstream = echo_server()
    yield upstream
    upstream.close()
