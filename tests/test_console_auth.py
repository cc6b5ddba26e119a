"""Access to the console: open on loopback, refused to start elsewhere without credentials,
token and basic auth accepted, wrong ones 401, cross-site state changes 403."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from support.console_world import make_world
from tengine_min.config import Settings
from tengine_min.console.app import create_app
from tengine_min.console.auth import credentials_ok, is_loopback
from tengine_min.console.settings import ConsoleConfigError, ConsoleSettings

TOKEN = "s3cret-token"


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False), ("::", False),
    ("console.example", False),
])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_the_default_is_loopback_without_credentials(tmp_path):
    settings = ConsoleSettings.from_env(Settings(state_dir=tmp_path), env={})
    assert (settings.host, settings.port, settings.has_credentials) == ("127.0.0.1", 8180,
                                                                        False)
    world = make_world(tmp_path)
    assert world.client.get("/api/executions").status_code == 200
    assert world.client.get("/executions").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "console.example"])
def test_another_address_without_credentials_refuses_to_start(tmp_path, host):
    settings = ConsoleSettings(runtime=Settings(state_dir=tmp_path), host=host)
    with pytest.raises(ConsoleConfigError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert host in message and "TENGINE_CONSOLE_TOKEN" in message
    assert "TENGINE_CONSOLE_USER" in message and "127.0.0.1" in message


def test_the_command_line_refuses_with_a_clear_error_and_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tengine_min.console", "--state-dir", str(tmp_path),
         "--host", "0.0.0.0", "--port", "18999"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "not a loopback address" in result.stderr and "Traceback" not in result.stderr


def test_half_a_user_and_a_bad_port_are_config_errors(tmp_path):
    runtime = Settings(state_dir=tmp_path)
    with pytest.raises(ConsoleConfigError, match="TENGINE_CONSOLE_PASSWORD"):
        ConsoleSettings(runtime=runtime, username="ops")
    with pytest.raises(ConsoleConfigError, match="TENGINE_CONSOLE_PORT"):
        ConsoleSettings.from_env(runtime, env={"TENGINE_CONSOLE_PORT": "eighty"})
    with pytest.raises(ConsoleConfigError, match="not a TCP port"):
        ConsoleSettings.from_env(runtime, env={"TENGINE_CONSOLE_PORT": "70000"})
    with pytest.raises(ConsoleConfigError, match="time zone"):
        ConsoleSettings(runtime=runtime, timezone="Mars/Olympus")


def test_a_token_is_required_and_checked(tmp_path):
    world = make_world(tmp_path, host="0.0.0.0", token=TOKEN)
    client = world.client
    missing = client.get("/api/executions")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "token" in missing.json()["detail"]
    assert client.get("/api/executions", headers={"Authorization": "Bearer wrong"}
                      ).status_code == 401
    assert client.get("/api/executions", headers={"Authorization": TOKEN}).status_code == 401
    assert client.get("/api/executions", headers=BEARER).status_code == 200
    assert client.get("/executions", headers=BEARER).status_code == 200
    assert client.get("/static/console.css").status_code == 401


def test_user_and_password_are_required_and_checked(tmp_path):
    world = make_world(tmp_path, host="0.0.0.0", username="ops", password="pa:ss")
    client = world.client
    missing = client.get("/events")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert client.get("/events", headers=basic("ops", "pa:ss")).status_code == 200
    assert client.get("/events", headers=basic("ops", "wrong")).status_code == 401
    assert client.get("/events", headers=basic("admin", "pa:ss")).status_code == 401
    assert client.get("/events", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert client.get("/events", headers=BEARER).status_code == 401  # no token configured


def test_configured_credentials_apply_on_loopback_too(tmp_path):
    world = make_world(tmp_path, token=TOKEN, username="ops", password="pw")
    assert world.client.get("/api/events").status_code == 401
    assert world.client.get("/api/events", headers=BEARER).status_code == 200
    assert world.client.get("/api/events", headers=basic("ops", "pw")).status_code == 200


def test_a_refused_request_changes_nothing(tmp_path):
    world = make_world(tmp_path, host="0.0.0.0", token=TOKEN)
    before = world.sim.dump()
    response = world.client.post("/api/jobnets/jn0004/run", json={},
                                 headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert world.sim.dump() == before


def test_a_state_change_from_another_site_is_refused(tmp_path):
    world = make_world(tmp_path)
    before = world.sim.dump()
    response = world.client.post("/jobnets/jn0004/run", data={},
                                 headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert "another site" in response.json()["detail"]
    assert world.sim.dump() == before
    same = world.client.post("/jobnets/jn0004/run", data={},
                             headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 303
    # Reading from another site is harmless and allowed.
    assert world.client.get("/api/events", headers={"Origin": "http://evil.example"}
                            ).status_code == 200


def test_credentials_ok_unit():
    settings = ConsoleSettings(runtime=Settings(state_dir="/nonexistent"), token=TOKEN)
    assert credentials_ok(f"bearer {TOKEN}", settings)  # the scheme is case-insensitive
    assert not credentials_ok(f"Bearer {TOKEN}x", settings)
    assert not credentials_ok(None, settings)
    open_settings = ConsoleSettings(runtime=Settings(state_dir="/nonexistent"))
    assert credentials_ok(None, open_settings)



def test_tengine_console_subcommand_refuses_the_same_way(tmp_path, capsys):
    import argparse

    from tengine_min.console.server import add_console_command

    parser = argparse.ArgumentParser(prog="tengine")
    add_console_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["console", "--state-dir", str(tmp_path), "--host", "10.9.8.7"])
    assert args.func(args) == 2
    assert "10.9.8.7, which is not a loopback address" in capsys.readouterr().err
