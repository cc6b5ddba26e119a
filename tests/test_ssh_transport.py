"""The ssh transport against a real ssh server on 127.0.0.1 (paramiko's server side, running
each command with /bin/sh): logins, host key pinning, and every failure class with its reason.
The integration tests (tests/integration/test_ssh_driver.py) do the same against OpenSSH."""

from __future__ import annotations

import errno
import socket
import threading
import time
from dataclasses import replace

import paramiko
import pytest

from support.sshd import BlackHoleProxy, MiniSshd, make_key, public_line
from tengine_min.resources import Credential, Server
from tengine_min.transport.base import (
    AuthFailed,
    CannotConnect,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
)
from tengine_min.transport.ssh import (
    BadHostKey,
    SshTransport,
    UnknownHost,
    describe_os_error,
    known_hosts_name,
    pinned_host_keys,
)

FAST = dict(connect_timeout=2.0, banner_timeout=2.0, auth_timeout=2.0,
            keepalive_interval=0.3, keepalive_timeout=0.7)


@pytest.fixture
def keys(tmp_path):
    return {"host": make_key(tmp_path / "host_key"), "other": make_key(tmp_path / "other_key"),
            "client": make_key(tmp_path / "id_ed25519"),
            "client_file": tmp_path / "id_ed25519"}


@pytest.fixture
def sshd(keys):
    server = MiniSshd(keys["host"], authorized_key=keys["client"])
    yield server
    server.close()


def server_for(port: int, host_key: str, **extra) -> Server:
    return Server("s1", transport="ssh", address="127.0.0.1", port=port, host_key=host_key,
                  **{**FAST, **extra})


PASSWORD = Credential("c1", type="ssh_password", username="job", password="pw")


def transport(server: Server, credential: Credential = PASSWORD, **kw) -> SshTransport:
    return SshTransport(server, credential, watcher_command="tengine-watcher", **kw)


def test_runs_a_command_with_a_password(sshd, keys):
    result = transport(server_for(sshd.port, public_line(keys["host"]))).run(
        "echo out; echo err >&2; exit 3", timeout=10)
    assert result == CommandResult(3, "out\n", "err\n")
    assert sshd.events[:3] == ["auth password ok", "session",
                               "exec echo out; echo err >&2; exit 3"]


def test_runs_a_command_with_a_key_file(sshd, keys):
    credential = Credential("c2", type="ssh_public_key", username="job",
                            private_key_file=str(keys["client_file"]))
    result = transport(server_for(sshd.port, public_line(keys["host"])), credential).run(
        "echo $((6 * 7))", timeout=10)
    assert result == CommandResult(0, "42\n", "")
    assert "auth publickey ok" in sshd.events


def test_an_encrypted_key_needs_its_passphrase(sshd, keys, tmp_path):
    key = make_key(tmp_path / "locked", passphrase="s3cret")
    sshd.authorized_key = key
    server = server_for(sshd.port, public_line(keys["host"]))
    locked = Credential("c3", type="ssh_public_key", username="job",
                        private_key_file=str(tmp_path / "locked"))
    with pytest.raises(AuthFailed) as caught:
        transport(server, locked).run("true", timeout=10)
    assert str(caught.value).startswith(f"credential c3: cannot use the private key "
                                        f"{tmp_path / 'locked'}: the key is encrypted")
    assert sshd.events == []  # refused before connecting
    unlocked = replace(locked, passphrase="s3cret")
    assert transport(server, unlocked).run("echo ok", timeout=10).stdout == "ok\n"


def test_a_wrong_password_is_an_authentication_failure_never_retried(sshd, keys):
    wrong = replace(PASSWORD, password="nope")
    with pytest.raises(AuthFailed) as caught:
        transport(server_for(sshd.port, public_line(keys["host"])), wrong).run("true",
                                                                               timeout=10)
    assert str(caught.value) == "authentication failed for credential c1 on server s1"
    assert not caught.value.retryable and not caught.value.request_sent
    assert not any(e.startswith("exec") for e in sshd.events)


def test_a_wrong_key_is_an_authentication_failure(sshd, keys, tmp_path):
    make_key(tmp_path / "stranger")
    credential = Credential("c4", type="ssh_public_key", username="job",
                            private_key_file=str(tmp_path / "stranger"))
    with pytest.raises(AuthFailed, match=r"^authentication failed for credential c4 on server "
                                         r"s1$"):
        transport(server_for(sshd.port, public_line(keys["host"])), credential).run(
            "true", timeout=10)


def test_a_host_key_that_is_not_the_pinned_one_is_refused(sshd, keys):
    with pytest.raises(BadHostKey) as caught:
        transport(server_for(sshd.port, public_line(keys["other"]))).run("true", timeout=10)
    message = str(caught.value)
    assert message.startswith(f"host key of server s1 (127.0.0.1:{sshd.port}) does not match "
                              f"the pinned one: it offered ssh-ed25519 "
                              f"{keys['host'].fingerprint}, expected ssh-ed25519 "
                              f"{keys['other'].fingerprint}")
    assert not caught.value.retryable
    assert sshd.events == []  # no password was sent to an impostor


def test_host_keys_from_a_known_hosts_line_and_file(sshd, keys, tmp_path):
    name = f"[127.0.0.1]:{sshd.port}"
    line = f"{name} {public_line(keys['host'])}"
    assert transport(server_for(sshd.port, line)).run("echo a", timeout=10).stdout == "a\n"
    hashed = paramiko.HostKeys.hash_host(name)
    assert transport(server_for(sshd.port, f"{hashed} {public_line(keys['host'])}")).run(
        "echo b", timeout=10).stdout == "b\n"
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"elsewhere {public_line(keys['other'])}\n{line}\n")
    by_file = replace(server_for(sshd.port, None), host_key_file=str(known_hosts))
    assert transport(by_file).run("echo c", timeout=10).stdout == "c\n"
    known_hosts.write_text(f"elsewhere {public_line(keys['host'])}\n")
    with pytest.raises(BadHostKey, match=f"{known_hosts} has no key for "
                                         rf"\[127.0.0.1\]:{sshd.port}"):
        transport(by_file).run("true", timeout=10)
    with pytest.raises(BadHostKey, match="the known_hosts line names elsewhere, not"):
        transport(server_for(sshd.port, f"elsewhere {public_line(keys['host'])}")).run(
            "true", timeout=10)


def test_pinned_keys_and_known_hosts_names(keys):
    assert known_hosts_name(Server("a", address="10.0.0.5")) == "10.0.0.5"
    assert known_hosts_name(Server("a", address="10.0.0.5", port=2222)) == "[10.0.0.5]:2222"
    with pytest.raises(ValueError, match=r"^server a has no address to look up in known_hosts$"):
        known_hosts_name(Server("a"))  # not "None", a name no known_hosts line has
    pinned = pinned_host_keys(Server("a", address="h", host_key=public_line(keys["host"])))
    assert pinned == {"ssh-ed25519": keys["host"]}
    with pytest.raises(ValueError, match="cannot read the ssh-ed25519 key"):
        pinned_host_keys(Server("a", address="h", host_key="ssh-ed25519 AAAAC3Nza"))


def test_a_closed_port_cannot_connect_and_may_be_retried(keys):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # closed once the block ends
    with pytest.raises(CannotConnect) as caught:
        transport(server_for(port, public_line(keys["host"]))).run("true", timeout=10)
    assert str(caught.value) == (f"cannot connect to server s1 (127.0.0.1:{port}): "
                                 f"connection refused")
    assert caught.value.detail == "connection refused"
    assert caught.value.retryable and not caught.value.request_sent


def test_an_unknown_host_name_is_never_retried(keys, monkeypatch):
    # No lookup leaves the machine in a test: the resolver's answer for an unknown name.
    def resolver(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    server = replace(server_for(22, public_line(keys["host"])), address="bad.example")
    with pytest.raises(UnknownHost) as caught:
        transport(server).run("true", timeout=10)
    assert str(caught.value) == "unknown host name for server s1: bad.example"
    assert isinstance(caught.value, CannotConnect) and not caught.value.retryable


def test_os_errors_are_named_as_a_person_says_them():
    assert describe_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "x")) == \
        "connection refused"
    assert describe_os_error(TimeoutError()) == "timed out"
    assert describe_os_error(OSError(errno.EHOSTUNREACH, "x")) == "no route to host"
    assert describe_os_error(OSError(errno.ECONNRESET, "x")) == "connection reset"


def test_a_server_that_never_speaks_times_out_in_the_handshake(keys):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never sends a banner
        server = server_for(silent.getsockname()[1], public_line(keys["host"]),
                            banner_timeout=0.5)
        began = time.monotonic()
        with pytest.raises(CannotConnect) as caught:
            transport(server).run("true", timeout=10)
    assert time.monotonic() - began < 5
    assert caught.value.retryable
    assert str(caught.value).startswith("cannot connect to server s1")


def test_the_hook_runs_after_login_before_the_command(sshd, keys):
    seen: list[list[str]] = []
    result = transport(server_for(sshd.port, public_line(keys["host"])),
                       on_connected=lambda: seen.append(list(sshd.events))).run(
        "echo x", timeout=10)
    assert result.stdout == "x\n"
    assert seen == [["auth password ok"]]


def test_a_failing_hook_sends_nothing(sshd, keys):
    def cut() -> None:
        raise CannotConnect("cut by the test")

    with pytest.raises(CannotConnect, match="cut by the test"):
        transport(server_for(sshd.port, public_line(keys["host"])), on_connected=cut).run(
            "echo x", timeout=10)
    assert not any(e.startswith("exec") for e in sshd.events)


def test_a_connection_closed_after_the_command_was_sent_is_lost(sshd, keys):
    sshd.drop_after_exec = True
    with pytest.raises(ConnectionLost) as caught:
        transport(server_for(sshd.port, public_line(keys["host"]))).run("echo x", timeout=10)
    assert caught.value.request_sent and caught.value.retryable
    assert str(caught.value).startswith(f"connection to server s1 (127.0.0.1:{sshd.port}) lost "
                                        f"after the command was sent")


def test_a_silent_cut_after_the_command_is_noticed_within_the_keepalive_bound(sshd, keys):
    proxy = BlackHoleProxy(sshd.port)
    sshd.on_exec = proxy.swallow
    try:
        began = time.monotonic()
        with pytest.raises(ConnectionLost) as caught:
            transport(server_for(proxy.port, public_line(keys["host"]))).run(
                "sleep 3; echo late", timeout=30)
        took = time.monotonic() - began
    finally:
        proxy.close()
    # keepalive_interval 0.3 s + keepalive_timeout 0.7 s, plus the login
    assert took < 2.5, took
    assert "no answer to a keepalive within 0.7 s" in str(caught.value)


def test_a_silent_cut_while_paused_before_the_command_sends_nothing(sshd, keys):
    proxy = BlackHoleProxy(sshd.port)
    paused = threading.Event()

    def pause_and_cut() -> None:
        proxy.swallow()
        paused.wait(1.5)  # longer than the keepalive bound: the watch closes the link

    try:
        with pytest.raises(CannotConnect) as caught:
            transport(server_for(proxy.port, public_line(keys["host"])),
                      on_connected=pause_and_cut).run("echo x", timeout=30)
    finally:
        proxy.close()
    assert not caught.value.request_sent
    assert "connection lost before the command was sent" in str(caught.value)
    assert not any(e.startswith("exec") for e in sshd.events)


def test_no_exit_status_within_the_command_timeout(sshd, keys):
    began = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        transport(server_for(sshd.port, public_line(keys["host"]),
                             keepalive_interval=5.0)).run("sleep 4", timeout=1.0)
    assert time.monotonic() - began < 3
    assert str(caught.value) == "no answer from server s1 within 1 s"
    assert caught.value.request_sent and not caught.value.retryable


def test_a_local_credential_cannot_log_in(sshd, keys):
    with pytest.raises(AuthFailed, match="credential local is of type local, which cannot log "
                                         "in over ssh"):
        transport(server_for(sshd.port, public_line(keys["host"])),
                  Credential("local")).run("true", timeout=10)
