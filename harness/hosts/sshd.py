"""A private OpenSSH sshd per host, and the test account that logs in to it.

The system's sshd is never used or changed: each host runs ``/usr/sbin/sshd -D -f <own config>
-E <own log>`` inside its namespaces, with a host key of its own (kept across a power cycle,
like a real server's), its own pid file, and ``UsePAM no`` so a password is checked against
/etc/shadow directly.

One system user, `tengine-test`, serves every host. Its password is chosen at random per backend
(set with chpasswd); each host has its own key pair for it, because each host has its own home
(the host's disk, bound over the user's home inside the host), holding ``~/.ssh/authorized_keys``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..waiting import NotYet, wait_for
from .base import HostError
from .namespace import PidNamespace
from .system import POLL, SSHD, tool

TEST_USER = "tengine-test"
SSH_PORT = 22

T = TypeVar("T")


@dataclass(frozen=True)
class TestUser:
    name: str
    uid: int
    gid: int
    home: Path  # as in /etc/passwd; inside a host, the host's own home is mounted there
    password: str


def ensure_test_user(name: str = TEST_USER) -> TestUser:
    """Create the system user once if missing, and give it a fresh random password."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        tool(["useradd", "--system", "--create-home", "--shell", "/bin/bash", "--user-group",
              "--comment", "tengine harness test user", name], what=f"create user {name}")
        entry = pwd.getpwnam(name)
    if not os.path.isdir(entry.pw_dir):
        os.makedirs(entry.pw_dir, mode=0o755)  # the mount point of each host's home
    password = secrets.token_urlsafe(12)
    tool(["chpasswd"], input=f"{name}:{password}\n", what=f"set the password of {name}")
    return TestUser(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), password)


def generate_key(path: Path, comment: str) -> str:
    """An ed25519 key pair at `path` (kept if it exists); returns the public key line."""
    if not path.exists():
        tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
             what=f"generate key {path}")
    public = path.with_name(path.name + ".pub").read_text().split()
    return f"{public[0]} {public[1]}"


def read_banner(address: str, port: int, timeout: float = 0.5) -> str | None:
    """The sshd's identification line if it answers at address:port, else None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            data = conn.recv(256)
    except OSError:
        return None
    return data.decode("ascii", "replace").strip() if data.startswith(b"SSH-") else None


class Sshd:
    """One host's sshd: its files live in the host's disk dir, it runs inside the host."""

    def __init__(self, disk: Path, host_name: str, address: str, user: TestUser,
                 port: int = SSH_PORT):
        self.host_name = host_name
        self.address = address
        self.port = port
        self.user = user
        self.config = disk / "etc" / "sshd_config"
        self.host_key_file = disk / "etc" / "ssh_host_ed25519_key"
        self.pid_file = disk / "run" / "sshd.pid"
        self.log_file = disk / "log" / "sshd.log"
        self.home = disk / "home"  # seen as the user's home inside the host
        self.client_key_file = disk / "client" / "id_ed25519"
        self.host_key = ""
        self._log_offset = 0

    def prepare(self) -> None:
        """Keys, authorized_keys and config, written once per host."""
        for folder in (self.config.parent, self.pid_file.parent, self.log_file.parent,
                       self.client_key_file.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.host_key = generate_key(self.host_key_file, f"host key of {self.host_name}")
        client_key = generate_key(self.client_key_file, f"{self.user.name}@{self.host_name}")
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(client_key + "\n")
        for path in (self.home, ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, self.user.uid, self.user.gid)
        os.chmod(self.home, 0o755)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        self.config.write_text(self._config_text())

    def _config_text(self) -> str:
        return "\n".join([
            f"# sshd of harness host {self.host_name}; never the system's sshd",
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key_file}",
            f"PidFile {self.pid_file}",
            "AuthorizedKeysFile .ssh/authorized_keys",  # in the host's own home
            "UsePAM no",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin no",
            f"AllowUsers {self.user.name}",
            "StrictModes no",  # the home is a bind mount of a harness dir
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 100:30:200",  # scenarios open many connections at once
            "MaxSessions 50",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ])

    def start(self, namespace: PidNamespace) -> None:
        """Start sshd inside the host, detached so the host's init adopts it."""
        self.pid_file.unlink(missing_ok=True)
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        namespace.spawn([SSHD, "-D", "-f", str(self.config), "-E", str(self.log_file)],
                        log_file=self.log_file)

    def wait_listening(self, *, timeout: float = 10.0) -> None:
        """Until sshd logs that it listens (works even when the host's cable is pulled)."""
        def listening() -> bool:
            if not self.log_file.exists():
                return False
            with open(self.log_file, "rb") as log:
                log.seek(self._log_offset)
                return b"Server listening on" in log.read()
        self._wait(listening, timeout, "to listen")

    def wait_answering(self, *, timeout: float = 10.0) -> str:
        """Until sshd answers on address:port from the harness's namespace; its banner."""
        return self._wait(lambda: read_banner(self.address, self.port), timeout, "to answer")

    def _wait(self, condition: Callable[[], T | NotYet], timeout: float, what: str) -> T:
        try:
            return wait_for(condition, timeout=timeout,
                            what=f"sshd of {self.host_name} on {self.address}:{self.port} {what}",
                            interval=POLL, error=HostError)
        except HostError as exc:
            raise HostError(f"{exc}; last lines of {self.log_file}:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
