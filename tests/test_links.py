"""harness.links: finding or starting the toxiproxy server, and each Link verb on real TCP."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from harness.links import Link, LinkError, Links, start_fallback_server
from support.tcp import (
    TcpServer,
    connect,
    echo_server,
    is_refused,
    read_until_end,
    round_trip,
    sending_server,
)

FAST = 0.15


@pytest.fixture(scope="module")
def links() -> Iterator[Links]:
    with Links() as links:
        yield links


@pytest.fixture
def link(links: Links, echo: TcpServer, request: pytest.FixtureRequest) -> Iterator[Link]:
    link = links.link(request.node.name[:40], "127.0.0.1:0", echo.address)
    yield link
    link.destroy()


def test_links_starts_a_server_when_none_is_named(monkeypatch):
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    with Links() as links:
        expected = "toxiproxy-server" if shutil.which("toxiproxy-server") else "fallback"
        assert links.server.kind == expected
        process = links.server.process
        assert process is not None and process.poll() is None
    assert process.poll() == 0  # stopped, cleanly, with the Links


def test_a_link_carries_data_on_its_own_port(link, echo):
    assert link.port > 0 and link.listen == f"127.0.0.1:{link.port}"
    assert link.upstream == echo.address and link.enabled
    assert round_trip(connect(link.port)) < FAST


def test_cut_refuses_and_closes_then_heal_restores(link):
    live = connect(link.port)
    assert round_trip(live) < FAST
    link.cut()
    assert not link.enabled
    assert is_refused(link.port)
    _, _, end = read_until_end(live, timeout=5)
    assert end in ("eof", "reset")
    link.heal()
    assert link.enabled and round_trip(connect(link.port)) < FAST


def test_down_is_a_cut_for_the_block(link):
    with link.down() as same:
        assert same is link and is_refused(link.port)
    assert round_trip(connect(link.port)) < FAST


def test_blackhole_stops_data_without_closing(link, echo):
    held = connect(link.port)
    assert round_trip(held) < FAST
    link.blackhole()
    link.blackhole()  # twice is the same
    assert sorted(link.toxics()) == ["blackhole_downstream", "blackhole_upstream"]
    held.sendall(b"into the void")
    data, _, end = read_until_end(held, timeout=1.0)
    assert (data, end) == (b"", "timeout")  # nothing back, and still open
    assert b"void" not in echo.received
    fresh = connect(link.port)  # connecting works (the listener is up) but nothing flows
    fresh.sendall(b"x")
    assert read_until_end(fresh, timeout=0.5)[2] == "timeout"

    link.heal()
    assert link.toxics() == {}
    assert read_until_end(held, timeout=5)[2] in ("eof", "reset")  # Toxiproxy closes them
    assert round_trip(connect(link.port)) < FAST


def test_blackholed_removes_only_its_own_toxics(link):
    link.latency(1)
    with link.blackholed():
        assert set(link.toxics()) == {"blackhole_upstream", "blackhole_downstream",
                                      "latency_upstream", "latency_downstream"}
    assert set(link.toxics()) == {"latency_upstream", "latency_downstream"}
    assert round_trip(connect(link.port)) < 0.5


def test_latency_applies_both_ways_and_can_be_changed(link):
    sock = connect(link.port)
    link.latency(150)
    took = round_trip(sock)
    assert 0.3 <= took < 1.5, took  # 150 ms each way
    link.latency(0, stream="downstream")
    link.latency(0, stream="upstream")
    assert link.toxics()["latency_upstream"]["attributes"] == {"latency": 0, "jitter": 0}
    assert round_trip(sock) < FAST
    link.heal()
    assert link.toxics() == {}


def test_enable_undoes_a_cut_and_remove_toxics_one_type_keeping_the_others(link):
    link.latency(1)
    link.bandwidth(1000)
    link.cut()
    link.enable()
    assert link.enabled and round_trip(connect(link.port)) < 0.5
    assert set(link.toxics()) == {"latency_upstream", "latency_downstream",
                                  "bandwidth_upstream", "bandwidth_downstream"}  # kept
    link.remove_toxics("latency")
    assert set(link.toxics()) == {"bandwidth_upstream", "bandwidth_downstream"}
    link.remove_toxics("latency")  # none left of that type: nothing to do
    link.remove_toxics("bandwidth")
    assert link.toxics() == {}


def test_bandwidth_limits_in_kilobytes_per_second(links):
    payload = bytes(40_000)
    source = sending_server(payload, close=True)
    link = links.link("bandwidth_link", "127.0.0.1:0", source.address)
    try:
        link.bandwidth(40, stream="downstream")  # 40 KB/s: about 1 s
        start = time.monotonic()
        data, _, end = read_until_end(connect(link.port), timeout=10)
        took = time.monotonic() - start
        assert (data, end) == (payload, "eof")
        assert 0.75 <= took <= 2.2, took
    finally:
        link.destroy()
        source.close()


def test_link_reuses_a_matching_proxy_and_replaces_another(links, echo):
    first = links.link("reused", "127.0.0.1:0", echo.address)
    first.latency(5)
    first.cut()
    again = links.link("reused", "127.0.0.1:0", echo.address)
    assert again.listen == first.listen
    assert again.enabled and again.toxics() == {}  # reused, and healed
    other = echo_server()
    try:
        replaced = links.link("reused", "127.0.0.1:0", other.address)
        assert replaced.upstream == other.address
        round_trip(connect(replaced.port))
        assert other.received == b"ping"
    finally:
        replaced.destroy()
        other.close()


def test_bad_arguments_and_missing_proxies_give_clear_errors(links, echo):
    link = links.link("doomed", "127.0.0.1:0", echo.address)
    with pytest.raises(LinkError, match="stream must be 'upstream', 'downstream' or 'both'"):
        link.latency(10, stream="sideways")
    with pytest.raises(LinkError, match="upstream address 'nonsense' is not host:port"):
        links.link("bad", "127.0.0.1:0", "nonsense")
    link.destroy()
    with pytest.raises(LinkError, match=r"cut link 'doomed': .* refused: proxy not found"):
        link.cut()
    with pytest.raises(LinkError, match=r"link 'doomed'.*proxy not found"):
        link.blackhole()
    with pytest.raises(LinkError, match=r"link 'doomed'.*proxy not found"):
        link.destroy()


def test_heal_on_a_port_taken_meanwhile_is_a_clear_error(link):
    link.cut()
    squatter = socket.create_server(("127.0.0.1", link.port))
    try:
        taken = r"(?i)heal link .*answered 500: .*address already in use"
        with pytest.raises(LinkError, match=taken):
            link.heal()
    finally:
        squatter.close()
    link.heal()
    assert link.enabled


def test_toxiproxy_url_names_an_external_server_that_is_left_running(monkeypatch, echo):
    server = start_fallback_server()
    try:
        monkeypatch.setenv("TOXIPROXY_URL", server.url)
        with Links() as links:
            assert links.server.kind == "external" and links.url == server.url
            link = links.link("external_link", "127.0.0.1:0", echo.address)
            assert round_trip(connect(link.port)) < FAST
        # Our proxies are gone, the server is not.
        with Links() as links:
            assert links.call("list", lambda client: client.proxies()) == {}
        assert server.process.poll() is None
    finally:
        server.stop()


def test_toxiproxy_url_that_answers_nothing_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TOXIPROXY_URL", "http://127.0.0.1:1")
    with pytest.raises(LinkError, match=r"no toxiproxy answers at TOXIPROXY_URL="):
        Links().start()


def test_a_server_that_died_is_a_clear_error(echo):
    with Links() as links:
        link = links.link("orphan", "127.0.0.1:0", echo.address)
        links.server.process.kill()
        links.server.process.wait()
        with pytest.raises(LinkError, match="did not answer"):
            link.cut()
        links.server.log_path.unlink()  # a killed server keeps its log: not wanted here


def test_using_links_before_start_is_a_clear_error():
    with pytest.raises(LinkError, match="not started"):
        Links().link("x", "127.0.0.1:0", "127.0.0.1:1")


def test_the_fallback_server_stops_on_sigterm():
    server = start_fallback_server()
    process = server.process
    server.stop()
    assert process.returncode == 0  # a clean exit, not a kill
