"""The host monitor's probe: a server is up only when its ssh port answers with an sshd's
banner, not when something merely accepts the connection (a TCP proxy in front of a dead host)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tengine_min.core.monitors import tcp_probe
from tengine_min.ports import free_port
from tengine_min.resources import Server


@contextmanager
def listener(answer: bytes | None, *, close: bool = False) -> Iterator[int]:
    """A port whose connections get `answer` (None: nothing) and are then held open, or closed
    at once with `close`. Yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if answer:
                conn.sendall(answer)
            if close:
                conn.close()
            else:
                accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def ssh_server(port: int) -> Server:
    return Server("s1", transport="ssh", address="127.0.0.1", port=port)


def test_an_sshd_banner_is_an_answer():
    probe = tcp_probe(timeout=2)
    with listener(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") as port:
        assert probe(ssh_server(port)) is None


def test_lines_before_the_banner_are_allowed():
    probe = tcp_probe(timeout=2)
    with listener(b"welcome\r\nSSH-2.0-OpenSSH_9.2\r\n") as port:
        assert probe(ssh_server(port)) is None


def test_an_accepted_connection_without_a_banner_is_no_answer():
    """What a TCP proxy in front of a powered-off host does: accept, then say nothing."""
    probe = tcp_probe(timeout=0.5)
    with listener(None) as port:
        error = probe(ssh_server(port))
    assert error == f"127.0.0.1:{port}: connected, but no ssh banner in time"


def test_a_connection_closed_before_the_banner_is_no_answer():
    """What a TCP proxy does when it cannot reach the host: accept, then close."""
    probe = tcp_probe(timeout=2)
    with listener(None, close=True) as port:
        error = probe(ssh_server(port))
    assert error is not None and error.startswith(f"127.0.0.1:{port}: ")
    assert "closed before the ssh banner" in error or "reset" in error.lower(), error


def test_a_half_banner_is_no_answer():
    probe = tcp_probe(timeout=0.5)
    with listener(b"SSH-2.0-no end of line") as port:
        assert probe(ssh_server(port)) == f"127.0.0.1:{port}: connected, but no ssh banner " \
                                           f"in time"


def test_a_refused_connection_is_no_answer_and_local_servers_always_answer():
    port = free_port()  # nothing listens there
    probe = tcp_probe(timeout=2)
    error = probe(ssh_server(port))
    assert error is not None and "refused" in error.lower(), error
    assert probe(Server("local")) is None
