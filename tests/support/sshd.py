"""A small real ssh server on 127.0.0.1 for the ssh transport's tests (paramiko's server side).

`MiniSshd` accepts password and public-key logins, runs each exec request with `/bin/sh -c`
and sends back stdout, stderr and the exit status, as sshd does. It records what happened
(`events`) and can misbehave on purpose: close the connection as soon as the command arrives
(`drop_after_exec`), or call `on_exec` (e.g. to black-hole the link) when a command arrives.

`BlackHoleProxy` forwards TCP between a client and the server until `swallow()`: from then on
it reads and drops everything both ways and closes nothing, as a pulled cable looks to TCP
peers behind a proxy.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def make_key(path: Path, passphrase: str | None = None) -> paramiko.PKey:
    """A new ed25519 key in OpenSSH format at `path` (encrypted with `passphrase` if given)."""
    key = ed25519.Ed25519PrivateKey.generate()
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH, encryption))
    path.chmod(0o600)
    return paramiko.PKey.from_path(path, passphrase.encode() if passphrase else None)


def public_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


class _Interface(paramiko.ServerInterface):
    def __init__(self, sshd: MiniSshd) -> None:
        self.sshd = sshd
        self.command: str | None = None
        self.exec_requested = threading.Event()

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = username == self.sshd.user and password == self.sshd.password
        self.sshd.events.append(f"auth password {'ok' if ok else 'refused'}")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == self.sshd.user and key == self.sshd.authorized_key
        self.sshd.events.append(f"auth publickey {'ok' if ok else 'refused'}")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            self.sshd.events.append("session")
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.command = command.decode()
        self.sshd.events.append(f"exec {self.command}")
        self.exec_requested.set()
        return True


class MiniSshd:
    def __init__(self, host_key: paramiko.PKey, *, user: str = "job", password: str = "pw",
                 authorized_key: paramiko.PKey | None = None) -> None:
        self.host_key = host_key
        self.user = user
        self.password = password
        self.authorized_key = authorized_key
        self.drop_after_exec = False
        self.on_exec: Callable[[], None] | None = None
        self.events: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._transports: list[paramiko.Transport] = []
        self._closed = False
        threading.Thread(target=self._accept, name="mini-sshd", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        self._transports.append(transport)
        transport.add_server_key(self.host_key)
        interface = _Interface(self)
        try:
            transport.start_server(server=interface)
        except (paramiko.SSHException, EOFError, OSError):
            return
        channel = transport.accept(timeout=30)
        if channel is None or not interface.exec_requested.wait(30):
            transport.close()
            return
        if self.on_exec is not None:
            self.on_exec()
        if self.drop_after_exec:
            transport.close()
            return
        done = subprocess.run(["/bin/sh", "-c", interface.command or ""], capture_output=True,
                              timeout=60, check=False)
        try:
            channel.sendall(done.stdout)
            channel.sendall_stderr(done.stderr)
            channel.send_exit_status(done.returncode)
            channel.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the client went away
        self.events.append(f"exit {done.returncode}")

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for transport in self._transports:
            transport.close()


class BlackHoleProxy:
    """127.0.0.1:<port> -> upstream; `swallow()` turns it into a black hole."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.swallowing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="black-hole-proxy", daemon=True).start()

    def swallow(self) -> None:
        self.swallowing.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                if not self.swallowing.is_set():
                    _shutdown(target)
                return
            if self.swallowing.is_set():
                continue  # dropped: nothing arrives, nothing closes
            try:
                target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            _shutdown(sock)
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
