"""tengine_min.ports.free_port: a port a server can listen on, chosen by the kernel or drawn
from a range, never one of those excluded; a clear error when there is none."""

from __future__ import annotations

import re
import socket

import pytest

from tengine_min.ports import NoFreePort, free_port


def listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


def test_the_kernels_port_can_be_listened_on():
    port = free_port()
    assert 0 < port < 65536
    listen(port).close()


def test_a_range_of_one_port_gives_that_port():
    port = free_port()
    assert free_port(within=(port, port + 1)) == port


def test_an_excluded_port_is_never_given():
    port = free_port()
    with pytest.raises(NoFreePort) as refused:
        free_port(exclude={port}, within=(port, port + 1))
    message = str(refused.value)
    assert f"no free port on 127.0.0.1 in {port}..{port}" in message
    assert f"excluding [{port}]" in message


def test_a_port_something_listens_on_is_never_given():
    with listen(0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(NoFreePort, match=f"in {port}..{port} after 200 tries"):
            free_port(within=(port, port + 1))


def test_a_host_that_is_not_this_machines_is_a_clear_error():
    with pytest.raises(NoFreePort, match=re.escape("cannot listen on 192.0.2.1: ")):
        free_port("192.0.2.1")


@pytest.mark.parametrize("within", [(0, 10), (30000, 30000), (40000, 30000), (1, 70000)])
def test_a_range_that_is_not_one_is_refused(within):
    with pytest.raises(ValueError, match=r"within=.*not a range"):
        free_port(within=within)
