"""The HTTP API of our toxiproxy server, through toxiproxy-python (and its APIConsumer for the
error answers the high-level client never provokes): each call, its status and JSON shape."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys

import pytest
import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from support.tcp import connect, echo_server, is_refused, recv_exactly, sending_server
from tengine_min.ports import free_port

_names = itertools.count()


def unique(prefix: str = "api") -> str:
    return f"{prefix}_{next(_names)}"


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def error_of(raised: pytest.ExceptionInfo) -> dict:
    return json.loads(raised.value.args[0])


def test_version_answers_json(client):
    assert client.running()
    assert "version" in json.loads(client.version())


def test_create_show_and_list_a_proxy(client, echo):
    name = unique()
    proxy = client.create(upstream=echo.address, name=name, listen="127.0.0.1:0")
    assert proxy.name == name and proxy.upstream == echo.address and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and port_of(proxy.listen) > 0  # port chosen

    shown = APIConsumer.get(f"/proxies/{name}").json()
    assert shown == {"name": name, "listen": proxy.listen, "upstream": echo.address,
                     "enabled": True, "toxics": []}
    assert client.proxies()[name].listen == proxy.listen
    sock = connect(port_of(proxy.listen))
    sock.sendall(b"through")
    assert recv_exactly(sock, 7) == b"through"


def test_create_answers_201_and_a_taken_name_409(client, echo):
    name = unique()
    response = APIConsumer.post("/proxies", json={"name": name, "upstream": echo.address,
                                                  "listen": "127.0.0.1:0"})
    assert response.status_code == 201
    with pytest.raises(ProxyExists) as raised:
        APIConsumer.post("/proxies", json={"name": name, "upstream": echo.address,
                                           "listen": "127.0.0.1:0"})
    assert error_of(raised) == {"error": "proxy already exists", "status": 409}
    with pytest.raises(ProxyExists):
        client.create(upstream=echo.address, name=name)


@pytest.mark.parametrize("body, message", [
    ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
    ({"name": "x"}, "missing required field: upstream"),
    ({"name": "x", "upstream": "no-port"}, "upstream address 'no-port' is not host:port"),
    ({"name": "x", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:99999"}, "listen address"),
    ({"name": 7, "upstream": "127.0.0.1:1"}, "field 'name' must be a str"),
    ({"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}, "field 'enabled' must be a bool"),
])
def test_create_with_bad_input_answers_400_and_creates_nothing(client, body, message):
    with pytest.raises(InvalidToxic) as raised:
        APIConsumer.post("/proxies", json=body)
    error = error_of(raised)
    assert error["status"] == 400 and message in error["error"]
    assert client.proxies() == {}


def test_create_with_a_body_that_is_not_json_answers_400(client):
    with pytest.raises(InvalidToxic) as raised:
        APIConsumer.post("/proxies", data=b"{not json")
    assert error_of(raised)["error"].startswith("bad request body")
    with pytest.raises(InvalidToxic) as raised:
        APIConsumer.post("/proxies", data=b"")
    assert error_of(raised)["error"] == "bad request body: EOF"


def test_create_on_a_taken_port_answers_500_and_creates_nothing(client, echo):
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        response = APIConsumer.post("/proxies", json={"name": unique(), "upstream": echo.address,
                                                      "listen": listen})
        assert response.status_code == 500
        assert "address already in use" in response.json()["error"].lower()
        assert client.proxies() == {}
    finally:
        taken.close()


def test_a_proxy_created_disabled_listens_once_enabled(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen=f"127.0.0.1:{free_port()}",
                          enabled=False)
    assert proxy.enabled is False
    assert is_refused(port_of(proxy.listen))
    proxy.enable()
    assert client.get_proxy(proxy.name).enabled is True
    sock = connect(port_of(proxy.listen))
    sock.sendall(b"up")
    assert recv_exactly(sock, 2) == b"up"


def test_update_changes_upstream_for_new_connections(client):
    one, two = sending_server(b"one", close=True), sending_server(b"two", close=True)
    try:
        proxy = client.create(upstream=one.address, name=unique(), listen="127.0.0.1:0")
        assert recv_exactly(connect(port_of(proxy.listen)), 3) == b"one"
        response = APIConsumer.post(f"/proxies/{proxy.name}", json={"upstream": two.address})
        assert response.status_code == 200
        assert response.json()["upstream"] == two.address
        assert response.json()["listen"] == proxy.listen  # kept: only upstream changed
        assert recv_exactly(connect(port_of(proxy.listen)), 3) == b"two"
        # PATCH does the same (Toxiproxy 2.6 prefers it).
        response = requests.patch(f"http://{APIConsumer.host}:{APIConsumer.port}"
                                  f"/proxies/{proxy.name}", json={"upstream": one.address})
        assert response.status_code == 200 and response.json()["upstream"] == one.address
        assert recv_exactly(connect(port_of(proxy.listen)), 3) == b"one"
    finally:
        one.close()
        two.close()


def test_update_of_a_missing_proxy_answers_404(client):
    with pytest.raises(NotFound) as raised:
        APIConsumer.post("/proxies/nothing_here", json={"enabled": False})
    assert error_of(raised) == {"error": "proxy not found", "status": 404}


def test_delete_answers_204_closes_the_listener_then_404(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    response = requests.delete(f"http://{APIConsumer.host}:{APIConsumer.port}"
                               f"/proxies/{proxy.name}")
    assert response.status_code == 204 and response.content == b""
    assert is_refused(port_of(proxy.listen))
    with pytest.raises(NotFound):
        APIConsumer.get(f"/proxies/{proxy.name}")
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxic_add_with_defaults_list_show(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    answer = APIConsumer.post(f"/proxies/{proxy.name}/toxics",
                              json={"type": "latency", "attributes": {"latency": 5}})
    assert answer.status_code == 200
    expected = {"name": "latency_downstream", "type": "latency", "stream": "downstream",
                "toxicity": 1.0, "attributes": {"latency": 5, "jitter": 0}}
    assert answer.json() == expected
    proxy.add_toxic(type="timeout", stream="upstream", name="cut_up", toxicity=0.5,
                    attributes={"timeout": 10})
    listed = APIConsumer.get(f"/proxies/{proxy.name}/toxics").json()
    assert [t["name"] for t in listed] == ["cut_up", "latency_downstream"]  # upstream first
    assert APIConsumer.get(f"/proxies/{proxy.name}/toxics/latency_downstream").json() == expected
    assert client.get_proxy(proxy.name) is not None
    toxics = proxy.toxics()
    assert toxics["cut_up"].attributes == {"timeout": 10} and toxics["cut_up"].toxicity == 0.5
    assert APIConsumer.get(f"/proxies/{proxy.name}").json()["toxics"] == listed


def test_every_toxic_type_is_known_with_its_attributes(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},
        "limit_data": {"bytes": 0},
        "noop": {},  # registered in Toxiproxy too
    }
    for type_name, attributes in expected.items():
        given = {"average_size": 1} if type_name == "slicer" else {}
        answer = APIConsumer.post(f"/proxies/{proxy.name}/toxics",
                                  json={"type": type_name, "stream": "upstream",
                                        "attributes": given}).json()
        assert answer["attributes"] == attributes, type_name


def test_toxic_errors(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    url = f"/proxies/{proxy.name}/toxics"
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(ProxyExists) as raised:
        proxy.add_toxic(type="latency", attributes={"latency": 2})
    assert error_of(raised) == {"error": "toxic already exists", "status": 409}

    cases = [
        ({"type": "nonsense"}, "invalid toxic type"),
        ({}, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"},
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "name": "l2", "attributes": {"latency": "1s"}},
         "bad request body: attribute 'latency' of a latency toxic must be an integer, got '1s'"),
        ({"type": "latency", "name": "l3", "attributes": {"latency": 1.5}}, "must be an integer"),
        ({"type": "latency", "name": "l4", "attributes": [1]}, "must be a JSON object"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, "average_size must be at least 1"),
        ({"type": "latency", "name": "l5", "toxicity": "high"}, "field 'toxicity' must be a float"),
    ]
    for body, message in cases:
        with pytest.raises(InvalidToxic) as raised:
            APIConsumer.post(url, json=body)
        error = error_of(raised)
        assert error["status"] == 400 and message in error["error"], (body, error)
    assert list(proxy.toxics()) == ["latency_downstream"]  # nothing half-added

    with pytest.raises(NotFound) as raised:
        APIConsumer.post("/proxies/missing/toxics", json={"type": "latency"})
    assert error_of(raised) == {"error": "proxy not found", "status": 404}


def test_toxic_update_merges_attributes_and_toxicity(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    proxy.add_toxic(type="latency", name="lag", attributes={"latency": 100, "jitter": 10})
    for method in ("POST", "PATCH"):
        response = requests.request(method, f"http://{APIConsumer.host}:{APIConsumer.port}"
                                    f"/proxies/{proxy.name}/toxics/lag",
                                    json={"attributes": {"latency": 7}})
        assert response.status_code == 200
        assert response.json()["attributes"] == {"latency": 7, "jitter": 10}
    response = APIConsumer.post(f"/proxies/{proxy.name}/toxics/lag", json={"toxicity": 0.25})
    assert response.json()["toxicity"] == 0.25
    assert response.json()["attributes"] == {"latency": 7, "jitter": 10}
    with pytest.raises(InvalidToxic):
        APIConsumer.post(f"/proxies/{proxy.name}/toxics/lag",
                         json={"attributes": {"jitter": "x"}})
    assert proxy.toxics()["lag"].attributes == {"latency": 7, "jitter": 10}
    with pytest.raises(NotFound):
        APIConsumer.post(f"/proxies/{proxy.name}/toxics/nope", json={"toxicity": 1})


def test_toxic_delete_answers_204_then_404(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    proxy.add_toxic(type="bandwidth", attributes={"rate": 100})
    assert proxy.destroy_toxic("bandwidth_downstream") is True
    assert proxy.toxics() == {}
    with pytest.raises(NotFound) as raised:
        proxy.destroy_toxic("bandwidth_downstream")
    assert error_of(raised) == {"error": "toxic not found", "status": 404}
    with pytest.raises(NotFound):
        APIConsumer.get(f"/proxies/{proxy.name}/toxics/bandwidth_downstream")


def test_populate_creates_keeps_and_replaces(client, echo):
    other = echo_server()
    try:
        first = {"name": unique("pop"), "listen": f"127.0.0.1:{free_port()}",
                 "upstream": echo.address}
        second = {"name": unique("pop"), "listen": f"127.0.0.1:{free_port()}",
                  "upstream": echo.address, "enabled": False}
        response = APIConsumer.post("/populate", json=[first, second])
        assert response.status_code == 201
        made = {p["name"]: p for p in response.json()["proxies"]}
        assert made[first["name"]]["enabled"] is True and made[second["name"]]["enabled"] is False

        # The same again changes nothing: a live connection survives it.
        live = connect(port_of(first["listen"]))
        APIConsumer.post(f"/proxies/{first['name']}/toxics", json={"type": "latency"})
        response = APIConsumer.post("/populate", json=[first, second])
        assert response.status_code == 201
        assert [t["name"] for t in response.json()["proxies"][0]["toxics"]] == [
            "latency_downstream"]
        live.sendall(b"still")
        assert recv_exactly(live, 5) == b"still"

        # Another upstream replaces the proxy (a new one: no toxics).
        changed = dict(first, upstream=other.address)
        response = APIConsumer.post("/populate", json=[changed])
        assert response.json()["proxies"][0]["upstream"] == other.address
        assert response.json()["proxies"][0]["toxics"] == []
    finally:
        other.close()


@pytest.mark.parametrize("body, message", [
    ([{"name": "ok", "upstream": "127.0.0.1:1"}, {"upstream": "127.0.0.1:1"}],
     "missing required field: name at proxy 2"),
    ([{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "a", "upstream": "127.0.0.1:2"}],
     "duplicate proxy name 'a'"),
    ({"name": "a"}, "populate takes a JSON array"),
])
def test_populate_with_bad_input_answers_400_and_changes_nothing(client, body, message):
    with pytest.raises(InvalidToxic) as raised:
        APIConsumer.post("/populate", json=body)
    assert message in error_of(raised)["error"]
    assert client.proxies() == {}


def test_reset_answers_204(client, echo):
    proxy = client.create(upstream=echo.address, name=unique(), listen="127.0.0.1:0")
    proxy.add_toxic(type="latency")
    proxy.disable()
    response = APIConsumer.post("/reset")
    assert response.status_code == 204
    assert client.get_proxy(proxy.name).enabled and proxy.toxics() == {}


def test_browsers_unknown_paths_and_wrong_methods_are_refused(server):
    base = f"http://{server.host}:{server.port}"
    response = requests.get(f"{base}/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403
    assert requests.get(f"{base}/nowhere").status_code == 404
    assert requests.delete(f"{base}/version").status_code == 405
    assert requests.put(f"{base}/proxies").status_code == 405


def test_keep_alive_serves_several_requests_on_one_connection(server):
    base = f"http://{server.host}:{server.port}"
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{base}/version").status_code == 200
        assert session.post(f"{base}/reset").status_code == 204
        assert session.get(f"{base}/proxies").json() == {}


def test_the_server_refuses_a_taken_port_with_a_clear_error(server):
    result = subprocess.run(
        [sys.executable, "-m", "harness.toxiproxy", "--host", server.host,
         "--port", str(server.port)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"cannot listen on {server.host}:{server.port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_populates_from_a_config_file(tmp_path, echo):
    config = tmp_path / "toxiproxy.json"
    listen = f"127.0.0.1:{free_port()}"
    config.write_text(json.dumps([{"name": "from_config", "listen": listen,
                                   "upstream": echo.address}]))
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.toxiproxy", "-host", "127.0.0.1", "-port", "0",
         "-config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        base = line.strip().rpartition(" ")[2]
        assert requests.get(f"{base}/proxies/from_config").json()["listen"] == listen
        sock = connect(port_of(listen))
        sock.sendall(b"cfg")
        assert recv_exactly(sock, 3) == b"cfg"
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_a_bad_config_file_stops_the_server_with_a_clear_error(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps([{"name": "no_upstream"}]))
    result = subprocess.run(
        [sys.executable, "-m", "harness.toxiproxy", "--port", "0", "--config", str(config)],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "missing required field: upstream at proxy 1" in result.stderr
    assert "Traceback" not in result.stderr
