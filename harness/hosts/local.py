"""The local backend: virtual servers made of Linux namespaces on this machine (needs root).

```python
with LocalBackend() as backend:          # destroy_all() on exit, even when the test fails
    h1 = backend.create("h1")            # netns + veth + pid/mount/uts ns + sshd, answering
    h1.run("ps -e")                      # inside the host
    h1.partition(); h1.heal()            # pull / plug the cable
    h1.pause(); h1.resume()              # hang it (every process stopped) / let it go on
    h1.down(); h1.up()                   # power off / on; the disk (home, state dir) survives
```
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .base import Backend, Host, HostError
from .cleanup import remove_leftovers
from .lock import HostsLock
from .namespace import Filesystem, PidNamespace
from .network import PREFIX, Bridge, HostLink, netns_name, subnet_from_env, veth_name
from .sshd import SSH_PORT, Sshd, TestUser, ensure_test_user
from .system import require_local_backend_environment

log = logging.getLogger(__name__)
HOST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_exposed_paths() -> list[Path]:
    """What the test user must reach inside a host to run this repo's `tengine-watcher`."""
    return [Path(sys.prefix), Path(sys.base_prefix), REPO_ROOT]


class LocalHost(Host):
    """One namespace-made server. Create it with `LocalBackend.create`."""

    def __init__(self, *, name: str, disk: Path, index: int, address: str, prefixlen: int,
                 user: TestUser, expose: Sequence[Path]):
        self.name = name
        self.address = address
        self.ssh_port = SSH_PORT
        self.user = user.name
        self.password = user.password
        self.state_dir = f"{user.home}/.tengine-watcher"  # the watcher's default, per host
        self.disk = disk  # the host's files as the harness sees them
        self.link = HostLink(netns_name(name), veth_name(index), address, prefixlen)
        self.namespace = PidNamespace(self.link.netns, name, disk / "log" / "init.log")
        self.sshd = Sshd(disk, name, address, user)
        self.key_file = self.sshd.client_key_file
        self.filesystem = Filesystem(self.sshd.home, user.home, expose)
        self.is_up = False
        self.partitioned = False
        self.paused = False
        self.destroyed = False

    @property
    def host_key(self) -> str:  # type: ignore[override]
        return self.sshd.host_key

    @property
    def home_on_disk(self) -> Path:
        """The user's home inside the host (holding `state_dir`), as a path of the harness."""
        return self.sshd.home

    def start(self) -> None:
        self.link.create()
        self.sshd.prepare()
        self._boot()

    def _boot(self) -> None:
        self.namespace.start(self.filesystem)
        self.is_up = True
        self.sshd.start(self.namespace)
        self.sshd.wait_listening()
        # A link coming up opens its bridge port again, so a partitioned host keeps its cable
        # out until heal(): not one frame may pass meanwhile.
        if not self.partitioned:
            self.link.set_cable(True)
            self.sshd.wait_answering()

    def run(self, cmd: str | Sequence[str], *, user: str | None = None, timeout: float = 30.0,
            check: bool = False, input: str | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self._require_alive()
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return self.namespace.run(argv, user=user, timeout=timeout, check=check, input=input,
                                  env=env)

    def down(self) -> None:
        self._require_alive()
        if not self.is_up:
            raise HostError(f"host {self.name} is already down")
        # Cable first: a powered-off server sends nothing, not even the RSTs of dying sockets.
        self.link.set_cable(False)
        self.namespace.kill()  # SIGKILL ends stopped processes too
        self.is_up = False
        self.paused = False

    def up(self) -> None:
        self._require_alive()
        if self.is_up:
            raise HostError(f"host {self.name} is already up")
        self._boot()

    def partition(self) -> None:
        self._require_alive()
        if self.partitioned:
            raise HostError(f"host {self.name} is already partitioned")
        self.link.set_port(False)
        self.partitioned = True

    def heal(self) -> None:
        self._require_alive()
        if not self.partitioned:
            raise HostError(f"host {self.name} is not partitioned")
        self.partitioned = False
        if self.is_up:  # a powered-off host stays dark until up()
            # Rebooted while partitioned, its cable was left out (see _boot): plug it first,
            # since a link coming up resets the port to forwarding anyway.
            self.link.set_cable(True)
            self.link.set_port(True)
            self.sshd.wait_answering()

    def pause(self) -> None:
        self._require_alive()
        if not self.is_up:
            raise HostError(f"host {self.name} is down: nothing to pause")
        if self.paused:
            raise HostError(f"host {self.name} is already paused")
        self.namespace.stop_all()
        self.paused = True

    def resume(self) -> None:
        self._require_alive()
        if not self.paused:
            raise HostError(f"host {self.name} is not paused")
        self.namespace.continue_all()
        self.paused = False

    def pids(self) -> list[int]:
        return self.namespace.pids()

    def destroy(self) -> None:
        """Remove everything of the host, trying every step even if one fails."""
        errors = []
        for step in (self.namespace.kill, self.link.destroy,
                     lambda: shutil.rmtree(self.disk, ignore_errors=True)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - teardown reports all failures at the end
                errors.append(str(exc))
        self.is_up = False
        self.destroyed = True
        if errors:
            raise HostError(f"removing host {self.name} left things behind: "
                            + "; ".join(errors))

    def _require_alive(self) -> None:
        if self.destroyed:
            raise HostError(f"host {self.name} was destroyed")


class LocalBackend(Backend):
    """Makes `LocalHost`s on one bridge. Fails at once, saying why, when not root.

    Its first `create` takes the hosts lock (waiting up to `lock_timeout` s for another run to
    finish) and removes what crashed runs left; `destroy_all` gives the lock back.
    """

    def __init__(self, subnet: str | None = None, *, expose: Sequence[Path] | None = None,
                 lock_timeout: float = 300.0):
        require_local_backend_environment()
        self.lock = HostsLock()
        self.lock_timeout = lock_timeout
        self.subnet = subnet_from_env(subnet)
        self.bridge = Bridge(self.subnet)
        # Services of the harness's namespace (broker, proxies) listen here for the hosts.
        self.gateway = str(self.bridge.gateway)
        self.expose = list(expose) if expose is not None else default_exposed_paths()
        self.hosts: dict[str, LocalHost] = {}
        self.work_dir: Path | None = None
        self._user: TestUser | None = None
        self._count = 0

    def create(self, name: str) -> LocalHost:
        if not HOST_NAME.fullmatch(name):
            raise HostError(f"host name {name!r} is not valid: use 1-31 lowercase letters, "
                            "digits and '-', starting with a letter or digit")
        if name in self.hosts:
            raise HostError(f"host {name!r} already exists in this backend")
        if not self.lock.held:
            self.lock.acquire(self.lock_timeout)
            for line in remove_leftovers():
                log.warning("removed a leftover of a crashed harness run: %s", line)
        if not self.bridge.created:
            self.bridge.create()
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=PREFIX))
        if self._user is None:
            self._user = ensure_test_user()
        self._count += 1
        host = LocalHost(name=name, disk=self.work_dir / name, index=self._count,
                         address=str(self.bridge.next_address()),
                         prefixlen=self.subnet.prefixlen, user=self._user, expose=self.expose)
        try:
            host.start()
        except BaseException:
            with contextlib.suppress(HostError):
                host.destroy()  # nothing half-made stays behind
            raise
        self.hosts[name] = host
        return host

    def destroy_all(self) -> None:
        errors = []
        for host in list(self.hosts.values()):
            try:
                host.destroy()
            except HostError as exc:
                errors.append(str(exc))
        self.hosts.clear()
        try:
            self.bridge.destroy()
        except HostError as exc:
            errors.append(str(exc))
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None
        self.lock.release()
        if errors:
            raise HostError("teardown left things behind (run `python -m harness.hosts "
                            "cleanup`): " + "; ".join(errors))
