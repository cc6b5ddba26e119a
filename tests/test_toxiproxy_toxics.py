"""Each toxic's effect, measured on real TCP streams through our server (a subprocess),
driven with toxiproxy-python. Tolerances are generous: the machine is shared and noisy."""

from __future__ import annotations

import itertools
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer

from harness.waiting import wait_for
from support.tcp import (
    POLL,
    TcpServer,
    connect,
    is_refused,
    read_until_end,
    recv_exactly,
    round_trip,
    sending_server,
)

FAST = 0.15  # s: a round trip on loopback without toxics is far below this
_names = itertools.count()


def proxy_to(client: Toxiproxy, upstream: TcpServer):
    return client.create(upstream=upstream.address, name=f"toxics_{next(_names)}",
                         listen="127.0.0.1:0")


def port_of(proxy) -> int:
    return int(proxy.listen.rpartition(":")[2])


def test_latency_delays_every_chunk_on_a_live_connection_until_removed(client, echo):
    proxy = proxy_to(client, echo)
    sock = connect(port_of(proxy))
    assert round_trip(sock) < FAST

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    delayed = [round_trip(sock) for _ in range(3)]
    assert all(0.3 <= took < 1.5 for took in delayed), delayed

    proxy.destroy_toxic("latency_downstream")
    assert round_trip(sock) < FAST


def test_latency_counts_from_arrival_so_chunks_in_flight_do_not_add_up(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    sock = connect(port_of(proxy))
    start = time.monotonic()
    for index in range(5):  # five messages 50 ms apart, all in flight at once
        sock.sendall(bytes([65 + index]))
        time.sleep(0.05)
    assert recv_exactly(sock, 5) == b"ABCDE"
    took = time.monotonic() - start
    assert 0.5 <= took < 1.2, took  # ~0.25 + 0.3; one after the other would be 1.5


def test_latency_and_jitter_upstream_and_downstream_add_up(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 200, "jitter": 50})
    proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 200})
    sock = connect(port_of(proxy))
    took = [round_trip(sock) for _ in range(3)]
    assert all(0.35 <= t < 1.5 for t in took), took


def test_stream_direction_decides_which_way_is_delayed(client):
    greeter = sending_server(b"hello", close=False)  # the server speaks first
    try:
        proxy = proxy_to(client, greeter)
        proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 800})
        start = time.monotonic()
        sock = connect(port_of(proxy))
        assert recv_exactly(sock, 5) == b"hello"
        assert time.monotonic() - start < 0.5  # server -> client is not delayed
        proxy.destroy_toxic("latency_upstream")
        proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 500})
        start = time.monotonic()
        sock = connect(port_of(proxy))
        assert recv_exactly(sock, 5) == b"hello"
        assert time.monotonic() - start >= 0.5
    finally:
        greeter.close()


def test_bandwidth_bounds_the_rate(client):
    payload = bytes(60_000)
    source = sending_server(payload, close=True)
    try:
        proxy = proxy_to(client, source)
        proxy.add_toxic(type="bandwidth", attributes={"rate": 40})  # 40 KB/s: 1.5 s expected
        start = time.monotonic()
        data, _reads, end = read_until_end(connect(port_of(proxy)), timeout=10)
        took = time.monotonic() - start
        assert (data, end) == (payload, "eof")
        assert 1.2 <= took <= 2.8, took
        # ... and without it the same transfer is quick.
        proxy.destroy_toxic("bandwidth_downstream")
        start = time.monotonic()
        data, _, _ = read_until_end(connect(port_of(proxy)))
        assert data == payload and time.monotonic() - start < 0.5
    finally:
        source.close()


def test_timeout_zero_stops_data_without_closing_and_removal_closes(client, echo):
    proxy = proxy_to(client, echo)
    held = connect(port_of(proxy))
    assert round_trip(held) < FAST
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    proxy.add_toxic(type="timeout", stream="downstream", attributes={"timeout": 0})

    held.sendall(b"lost")
    data, _, end = read_until_end(held, timeout=1.0)
    assert (data, end) == (b"", "timeout")  # nothing came, nothing closed
    assert bytes(echo.received) == b"ping"  # the data was dropped, not delivered

    # As Toxiproxy's timeout toxic: taking it away closes the connections it held...
    proxy.destroy_toxic("timeout_upstream")
    proxy.destroy_toxic("timeout_downstream")
    _, _, end = read_until_end(held, timeout=5.0)
    assert end in ("eof", "reset")
    # ... and new connections flow again.
    assert round_trip(connect(port_of(proxy))) < FAST


def test_timeout_n_closes_the_connection_after_n_ms(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="timeout", attributes={"timeout": 500})
    start = time.monotonic()
    sock = connect(port_of(proxy))
    sock.sendall(b"dropped")
    data, _, end = read_until_end(sock, timeout=5.0)
    took = time.monotonic() - start
    assert (data, end) == (b"", "eof")
    assert 0.45 <= took < 2.0, took


def test_reset_peer_resets_after_its_timeout(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 200})
    sock = connect(port_of(proxy))
    start = time.monotonic()
    sock.sendall(b"reset toxic payload\n")
    data, _, end = read_until_end(sock, timeout=5.0)
    assert (data, end) == (b"", "reset")  # ECONNRESET, not a clean close
    assert 0.18 <= time.monotonic() - start < 2.0


def test_slicer_delivers_in_small_pieces(client):
    payload = bytes(range(256)) + bytes(range(44))
    source = sending_server(payload, close=False)
    try:
        proxy = proxy_to(client, source)
        proxy.add_toxic(type="slicer", attributes={
            "average_size": 10, "size_variation": 4, "delay": 20_000})
        start = time.monotonic()
        sock = connect(port_of(proxy))
        data = recv_exactly(sock, len(payload))
        took = time.monotonic() - start
        assert data == payload  # in order, nothing lost
        assert took >= 0.3, took  # ~30 pieces, 20 ms apart
        # Read piece by piece: with 20 ms between pieces reads rarely merge them.
        sock2 = connect(port_of(proxy))
        reads = []
        while sum(reads) < len(payload):
            reads.append(len(sock2.recv(65536)))
        assert len(reads) >= 10, reads
    finally:
        source.close()


def test_limit_data_closes_after_exactly_n_bytes(client):
    payload = bytes(range(250)) * 20  # 5000 bytes, and the server keeps the line open
    source = sending_server(payload, close=False)
    try:
        proxy = proxy_to(client, source)
        proxy.add_toxic(type="limit_data", attributes={"bytes": 1000})
        data, _, end = read_until_end(connect(port_of(proxy)), timeout=5.0)
        assert end == "eof"
        assert data == payload[:1000]
    finally:
        source.close()


def test_slow_close_delays_the_close(client):
    source = sending_server(b"bye", close=True)
    try:
        proxy = proxy_to(client, source)
        start = time.monotonic()
        data, _, end = read_until_end(connect(port_of(proxy)))
        assert (data, end) == (b"bye", "eof") and time.monotonic() - start < 0.3

        proxy.add_toxic(type="slow_close", attributes={"delay": 600})
        start = time.monotonic()
        data, _, end = read_until_end(connect(port_of(proxy)))
        took = time.monotonic() - start
        assert (data, end) == (b"bye", "eof")
        assert 0.6 <= took < 2.0, took
    finally:
        source.close()


def test_disable_refuses_new_connections_and_closes_live_ones(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    live = connect(port_of(proxy))
    assert round_trip(live) < 0.5

    proxy.disable()
    assert is_refused(port_of(proxy))
    _, _, end = read_until_end(live, timeout=5.0)
    assert end in ("eof", "reset")

    proxy.enable()  # same port again, toxics kept
    assert round_trip(connect(port_of(proxy))) < 0.5
    assert list(proxy.toxics()) == ["latency_downstream"]


def test_down_context_takes_the_proxy_down_for_the_block(client, echo):
    proxy = proxy_to(client, echo)
    with proxy.down():
        assert is_refused(port_of(proxy))
    assert round_trip(connect(port_of(proxy))) < FAST


def test_reset_endpoint_enables_everything_and_removes_toxics(client, echo):
    first, second = proxy_to(client, echo), proxy_to(client, echo)
    live = connect(port_of(first))
    first.add_toxic(type="latency", attributes={"latency": 400})
    first.add_toxic(type="bandwidth", stream="upstream", attributes={"rate": 1})
    second.disable()
    assert round_trip(live) >= 0.4

    assert client.reset() is True
    assert round_trip(live) < FAST  # the live connection too
    proxies = client.proxies()
    assert all(p.enabled for p in proxies.values())
    assert first.toxics() == {} and second.toxics() == {}
    assert round_trip(connect(port_of(second))) < FAST


def test_toxicity_zero_never_applies(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", toxicity=0.0, attributes={"latency": 1000})
    for _ in range(3):
        assert round_trip(connect(port_of(proxy))) < 0.5


def test_toxicity_is_drawn_once_per_connection(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", toxicity=0.5, attributes={"latency": 250})
    socks = [connect(port_of(proxy)) for _ in range(16)]
    delayed = []
    for sock in socks:
        took = [round_trip(sock), round_trip(sock)]
        hit = [t >= 0.25 for t in took]
        assert hit[0] == hit[1], took  # one connection: always, or never
        delayed.append(hit[0])
    assert any(delayed) and not all(delayed), delayed  # 2 in 65536 to fail by chance


def test_updating_a_toxic_changes_live_connections(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", name="slow", attributes={"latency": 400, "jitter": 0})
    sock = connect(port_of(proxy))
    assert round_trip(sock) >= 0.4
    APIConsumer.post(f"/proxies/{proxy.name}/toxics/slow", json={"attributes": {"latency": 0}})
    assert round_trip(sock) < FAST


def test_a_toxic_removed_between_others_keeps_data_in_order(client, echo):
    proxy = proxy_to(client, echo)
    proxy.add_toxic(type="latency", name="first", attributes={"latency": 100})
    proxy.add_toxic(type="slicer", name="middle", attributes={"average_size": 3, "delay": 1000})
    proxy.add_toxic(type="latency", name="last", attributes={"latency": 100})
    sock = connect(port_of(proxy))
    payload = bytes(range(200))
    sock.sendall(payload)
    proxy.destroy_toxic("middle")  # while data is in the chain
    assert recv_exactly(sock, len(payload)) == payload
    assert round_trip(sock) >= 0.2
    wait_for(lambda: list(proxy.toxics()) == ["first", "last"], timeout=5.0,
             what="two toxics left", interval=POLL)


def test_a_client_whose_upstream_refuses_is_closed(client):
    nowhere = TcpServer(lambda sock: None)
    address = nowhere.address
    nowhere.close()  # nothing listens there now
    proxy = client.create(upstream=address, name=f"toxics_{next(_names)}", listen="127.0.0.1:0")
    data, _, end = read_until_end(connect(port_of(proxy)), timeout=5)
    assert data == b"" and end in ("eof", "reset")
