"""Processes inside a host: a long-lived init with its own pid, mount and uts namespaces.

The init is started as
``ip netns exec tgh-<name> unshare --pid --fork --mount-proc --mount --uts -- python hostinit.py``:
it is pid 1 of the host, reaps orphans like a real init, and holds the namespaces open. Every
command of the host then enters them with ``nsenter -t <init> -p -m -n -u``. Killing the init
makes the kernel kill every other process of the pid namespace: that is a host's power-off.

The mount namespace gives the host a filesystem of its own where it matters:
- fresh tmpfs on /run (sshd's privilege separation dir /run/sshd lives there), /var/log (sshd's
  login records) and /root (the harness's own home is not the host's business);
- the test user's home is the host's disk dir, bound over the user's home: every host has its
  own ``~/.ssh`` and ``~/.tengine-watcher``, and it survives a power cycle;
- paths the test user must reach (the venv with `tengine-watcher`, its Python, the repo) but
  cannot because an ancestor is closed (pyenv under /root, mode 700) are re-exposed: the closed
  ancestor is covered by a tmpfs that others may traverse, and only the needed path is bound
  back into it. The real filesystem is not changed.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..waiting import wait_for
from .base import HostError
from .system import POLL

HOST_INIT = Path(__file__).with_name("hostinit.py")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def host_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment, as a login on a real server has: nothing of the harness leaks in."""
    return {"PATH": HOST_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(extra or {})}


def closed_ancestor(path: Path) -> Path | None:
    """The outermost ancestor of `path` that other users cannot traverse, if any."""
    for ancestor in reversed(path.parents):  # "/" first
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


@dataclass
class Filesystem:
    """The mounts that make a host's filesystem its own (see the module docstring)."""

    home_source: Path
    home_target: Path
    expose: Sequence[Path] = field(default_factory=list)

    def script(self) -> str:
        """A shell script, run as root inside the new mount namespace, that sets it all up."""
        q = shlex.quote
        hide = {Path("/root"): "0700"}
        needed: list[Path] = []
        for raw in self.expose:
            path = Path(os.path.realpath(raw))
            blocked = closed_ancestor(path)
            if blocked is None:
                continue
            if blocked == Path("/"):
                raise HostError(f"cannot expose {path} to the test user: / is not traversable")
            if not os.stat(path).st_mode & stat.S_IXOTH:
                raise HostError(f"cannot expose {path} to the test user: it is closed itself "
                                f"(mode {oct(os.stat(path).st_mode & 0o777)}); chmod o+rx it")
            hide[blocked] = "0711"
            needed.append(path)
        # A path inside another one comes along with it.
        needed = [p for p in dict.fromkeys(needed) if not any(o in p.parents for o in needed)]
        # Outermost first, and nothing already covered by an outer one.
        covers = sorted(hide, key=lambda p: len(p.parts))
        covers = [p for p in covers if not any(o in p.parents for o in covers if o != p)]
        lines = ["set -e",
                 "mount -t tmpfs -o mode=0755,size=64m tgh-run /run",
                 "mkdir -m 0755 /run/sshd",
                 "mount -t tmpfs -o mode=0755,size=64m tgh-log /var/log"]
        for i, path in enumerate(needed):  # park them before their ancestor is covered
            lines += [f"mkdir -p /run/tgh-stage/{i}",
                      f"mount --bind {q(str(path))} /run/tgh-stage/{i}"]
        for cover in covers:
            lines.append(f"mount -t tmpfs -o mode={hide[cover]},size=1m tgh-hide "
                         f"{q(str(cover))}")
        for i, path in enumerate(needed):
            lines += [f"mkdir -p {q(str(path))}", f"mount --move /run/tgh-stage/{i} {q(str(path))}"]
        lines.append(f"mount --bind {q(str(self.home_source))} {q(str(self.home_target))}")
        return "\n".join(lines) + "\n"


class PidNamespace:
    """A host's init and the pid, mount and uts namespaces it holds open, inside a netns."""

    def __init__(self, netns: str, hostname: str, log_file: Path):
        self.netns = netns
        self.hostname = hostname
        self.log_file = log_file
        self.init_pid: int | None = None
        self._pid_ns: str | None = None  # the namespace's identity, safe against pid reuse
        self._holder: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.init_pid is not None

    def start(self, filesystem: Filesystem, *, timeout: float = 10.0) -> None:
        if self.running:
            raise HostError(f"{self.hostname}: already running (init pid {self.init_pid})")
        with open(self.log_file, "ab") as log:
            self._holder = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "--pid", "--fork", "--mount-proc",
                 "--mount", "--uts", "--", sys.executable, "-I", "-S", str(HOST_INIT),
                 self.hostname],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, cwd="/",
                start_new_session=True)  # not in the harness's process group: ^C is not a fault
        try:
            self._await_ready(timeout)
            children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children")
            self.init_pid = int(children.read_text().split()[0])
            self._pid_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
            self.run(["sh", "-c", filesystem.script()], check=True, timeout=timeout)
        except BaseException:
            self.kill()
            raise

    def _await_ready(self, timeout: float) -> None:
        assert self._holder is not None and self._holder.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._holder.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        line = self._holder.stdout.readline() if ready else b""
        self._holder.stdout.close()
        if line.strip() != b"ready":
            raise HostError(f"{self.hostname}: the host's init did not start within {timeout:g} s"
                            f" (see {self.log_file})")

    def command(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        """`argv` as a command line that runs it inside the host (as `user` if given)."""
        if self.init_pid is None:
            raise HostError(f"{self.hostname}: host is down, cannot run {list(argv)}")
        prefix = ["nsenter", "-t", str(self.init_pid), "-p", "-m", "-n", "-u", "--"]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        return prefix + list(argv)

    def run(self, argv: Sequence[str], *, user: str | None = None, timeout: float = 30.0,
            check: bool = False, input: str | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = host_environment(env)
        line = self.command(argv, user=user)
        try:
            done = subprocess.run(line, check=False, capture_output=True, text=True,
                                  timeout=timeout,
                                  input=input, env=environment, cwd="/",
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise HostError(f"{self.hostname}: {list(argv)} did not finish within "
                            f"{timeout:g} s") from exc
        if check and done.returncode != 0:
            raise HostError(f"{self.hostname}: {list(argv)} failed with exit status "
                            f"{done.returncode}: {(done.stderr or done.stdout).strip()}")
        return done

    def spawn(self, argv: Sequence[str], *, log_file: Path, timeout: float = 10.0) -> None:
        """Start a daemon inside the host, detached (``setsid -f``) so the host's init adopts
        it; its stdout and stderr go to `log_file`, never to a pipe that would keep us waiting."""
        line = self.command(["setsid", "-f", *argv])
        with open(log_file, "ab") as log:
            try:
                done = subprocess.run(line, check=False, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=log, env=host_environment(), cwd="/",
                                      timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise HostError(f"{self.hostname}: starting {list(argv)} did not return within "
                                f"{timeout:g} s") from exc
        if done.returncode != 0:
            raise HostError(f"{self.hostname}: cannot start {list(argv)}: exit status "
                            f"{done.returncode} (see {log_file})")

    def pids(self) -> list[int]:
        """Every process of the pid namespace, as pids of the harness's namespace."""
        if self._pid_ns is None:
            return []
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry.name}/ns/pid") == self._pid_ns:
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile, or a zombie
                continue
        return sorted(found)

    def stop_all(self, *, timeout: float = 10.0) -> None:
        """SIGSTOP every process of the namespace, until none is left running: a process forked
        meanwhile is stopped on the next round."""

        def all_stopped() -> bool:
            running = [pid for pid in self.pids() if _state(pid) not in ("T", "Z", "X", "")]
            for pid in running:
                _signal(pid, signal.SIGSTOP)
            return not running

        wait_for(all_stopped, timeout=timeout,
                 what=f"every process of host {self.hostname} to be stopped", interval=POLL,
                 error=HostError)

    def continue_all(self) -> None:
        """SIGCONT every process of the namespace."""
        for pid in self.pids():
            _signal(pid, signal.SIGCONT)

    def kill(self, *, timeout: float = 10.0) -> None:
        """Kill the init, so the kernel kills every process of the namespace; wait for all."""
        if self.init_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        elif self._holder is not None and self._holder.poll() is None:
            self._holder.kill()  # init never came up: the holder is all there is
        if self._pid_ns is not None:
            wait_for(lambda: not self.pids(), timeout=timeout,
                     what=f"every process of host {self.hostname} to end", interval=POLL,
                     error=HostError)
        if self._holder is not None:
            try:
                self._holder.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait(timeout=timeout)
        self.init_pid = None
        self._pid_ns = None
        self._holder = None


def _state(pid: int) -> str:
    """The state letter of a process (``R``, ``S``, ``T`` stopped, ``Z`` zombie ...), or ""
    when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]  # after the command name, which may hold spaces


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.kill(pid, sig)
