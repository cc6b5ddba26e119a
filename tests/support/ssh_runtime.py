"""A whole runtime whose jobs run over ssh: a namespaced job host with the real OpenSSH sshd
(harness.hosts), a private RabbitMQ node on the bridge's gateway address (so the host's watchers
reach it), a resources file naming the host several ways, and a real `tengine core`.

The core runs in a mount namespace of its own where /etc/nsswitch.conf says `hosts: files`, so
an unknown host name fails to resolve without a DNS query leaving the machine; every other name
in these tests is an IP address.

Helpers for the faults: `stop_sshd` / `start_sshd` (the host's sshd alone, the host stays up),
`arm_watcher_failpoint` (a failpoint of the watcher on the host), and the host's watcher log.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.hosts import LocalBackend
from harness.hosts.local import LocalHost
from harness.hosts.sshd import read_banner
from harness.waiting import wait_for
from tengine_min import failpoints
from tengine_min.broker import Broker

from .runtime import FAST_SETTINGS, POLL, Runtime, matching_lines

# The ssh settings the tests need short: a silent cut is noticed within 0.5 + 1.5 s.
SSH_TIMEOUTS = """ssh_connect_timeout = 2
ssh_banner_timeout = 3
ssh_auth_timeout = 3
ssh_keepalive_interval = 0.5
ssh_keepalive_timeout = 1.5
"""

# Heartbeats every 2 s: the core's host monitor (one check per heartbeat interval, down after 3)
# then needs 6 s of silence, longer than the short cuts these tests make on purpose.
SETTINGS = FAST_SETTINGS.replace("heartbeat_interval = 1\n", "heartbeat_interval = 2\n") \
    .replace("heartbeat_expiry = 10\n", "heartbeat_expiry = 20\n")
assert SETTINGS != FAST_SETTINGS

JOB_SCRIPT = """#!/bin/sh
sleep "${1:-0}"
exit "${2:-0}"
"""


class SshRuntime(Runtime):
    """A Runtime whose core resolves host names from /etc/hosts only (see the module doc)."""

    def core_command(self) -> list[str]:
        """unshare and sh exec: the process started becomes the core (the same pid)."""
        nsswitch = self.root / "nsswitch.conf"
        nsswitch.write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount --bind "$0" /etc/nsswitch.conf && exec "$@"', str(nsswitch),
                *super().core_command()]


class SshWorld:
    """The host, the broker, the runtime; `close()` removes them all, whatever failed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend = LocalBackend()
        self.broker: Broker | None = None
        self.broker_dir: Path | None = None
        self.rt: SshRuntime | None = None
        try:
            self.host: LocalHost = self.backend.create("h1")
            self.broker_dir = Path(tempfile.mkdtemp(prefix="tengine-it-ssh-broker-",
                                                    dir="/tmp"))
            self.broker = Broker(self.broker_dir, bind_host=self.backend.gateway)
            self.broker.start()
            self.rt = SshRuntime(root, self.broker.url, settings=SETTINGS)
            self._prepare_host()
        except BaseException:
            self.close()
            raise

    # -- set-up --

    def _prepare_host(self) -> None:
        user = pwd.getpwnam(self.host.user)
        home = self.host.home_on_disk
        bin_dir = home / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "job.sh").write_text(JOB_SCRIPT)
        (bin_dir / "job.sh").chmod(0o755)
        (bin_dir / "not_executable.sh").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "not_executable.sh").chmod(0o644)
        self.watcher_dir.mkdir(exist_ok=True)
        for path in (bin_dir, *bin_dir.iterdir(), self.watcher_dir):
            os.chown(path, user.pw_uid, user.pw_gid)

    def write_resources(self, wrong_key_file: Path) -> Path:
        host = self.host
        watcher = Path(sys.prefix) / "bin" / "tengine-watcher"
        common = (f'transport = "ssh"\naddress = "{host.address}"\n'
                  f'host_key = "{host.host_key}"\nwatcher_command = "{watcher}"\n'
                  + SSH_TIMEOUTS)
        text = "\n".join([
            f"[servers.s1]\n{common}",
            f"[servers.s1_retry]\n{common}ssh_retry_count = 3\nssh_retry_interval = 1\n",
            f"[servers.closed]\n{common}ssh_port = 2222\n",
            f"[servers.closed_retry]\n{common}ssh_port = 2222\nssh_retry_count = 2\n"
            f"ssh_retry_interval = 0.2\n",
            f'[servers.badname]\n{common.replace(host.address, "bad.invalid")}',
            f'[credentials.key]\ntype = "ssh_public_key"\nusername = "{host.user}"\n'
            f'private_key_file = "{host.key_file}"\n',
            f'[credentials.password]\ntype = "ssh_password"\nusername = "{host.user}"\n'
            f'password = "{host.password}"\n',
            f'[credentials.wrong_key]\ntype = "ssh_public_key"\nusername = "{host.user}"\n'
            f'private_key_file = "{wrong_key_file}"\n',
            f'[credentials.wrong_password]\ntype = "ssh_password"\nusername = "{host.user}"\n'
            f'password = "not-{host.password}"\n',
        ])
        path = self.rt.state_dir / "resources.toml"
        path.write_text(text)
        return path

    # -- the host's watcher --

    @property
    def watcher_dir(self) -> Path:
        """The watcher's state dir on the host's disk (~/.tengine-watcher inside)."""
        return self.host.home_on_disk / ".tengine-watcher"

    @property
    def watcher_log(self) -> Path:
        return self.watcher_dir / "log" / "watcher.log"

    def watcher_log_lines(self, pattern: str) -> list[str]:
        return matching_lines(self.watcher_log, pattern)

    def wait_watcher_log(self, pattern: str, timeout: float = 30, count: int = 1) -> list[str]:
        return wait_for(lambda: len(found := self.watcher_log_lines(pattern)) >= count and found,
                        timeout=timeout,
                        what=f"{count} watcher log line(s) on h1 matching {pattern!r}",
                        interval=POLL)

    def arm_watcher_failpoint(self, name: str, action: str = "pause") -> None:
        """Arm a failpoint of the watcher on the host (its files belong to the ssh user)."""
        failpoints.arm(self.watcher_dir, name, action)
        user = pwd.getpwnam(self.host.user)
        folder = failpoints.failpoints_dir(self.watcher_dir)
        for path in (folder, *folder.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)

    def wait_watcher_failpoint(self, name: str, timeout: float = 30) -> None:
        failpoints.wait_hit(self.watcher_dir, name, timeout)

    def let_watcher_go(self, name: str) -> None:
        """Disarm first, so a retried command passes the point; then release the paused one."""
        failpoints.disarm(self.watcher_dir, name)
        failpoints.release(self.watcher_dir, name)

    # -- sshd alone --

    def stop_sshd(self) -> None:
        """The host's sshd listener stops (the host stays up): new connections are refused."""
        sshd = self.host.sshd
        pid = int(sshd.pid_file.read_text().split()[0])
        self.host.run(["kill", str(pid)], check=True)
        wait_for(lambda: read_banner(self.host.address, 22) is None, timeout=10,
                 what="sshd of h1 to stop answering", interval=POLL)

    def start_sshd(self) -> None:
        sshd = self.host.sshd
        sshd.start(self.host.namespace)
        sshd.wait_listening()
        sshd.wait_answering()

    def sshd_running(self) -> bool:
        return read_banner(self.host.address, 22) is not None

    # -- teardown --

    def close(self) -> None:
        errors = []
        for step in (lambda: self.rt and self.rt.close(), self._stop_broker,
                     self.backend.destroy_all):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step is tried; all reported
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            raise AssertionError("teardown left things behind: " + "; ".join(errors))

    def _stop_broker(self) -> None:
        if self.broker is not None:
            try:
                self.broker.stop()
            finally:
                shutil.rmtree(self.broker_dir, ignore_errors=True)
        elif self.broker_dir is not None:
            shutil.rmtree(self.broker_dir, ignore_errors=True)


def make_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)
    return path
