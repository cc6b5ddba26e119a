"""A virtual server of a cluster, as scenarios use it: its host, its two links, its watcher log,
the scripts a test puts on it, and its jobs' watchdogs as targets of process faults.

Everything a test does on a server goes through here and is recorded in the history; the
faults on it (power off, partition, pause, a link cut) go through `cluster.faults`.
"""

from __future__ import annotations

import json
import pwd
import signal
from pathlib import Path, PurePosixPath

from harness.hosts.base import Host
from harness.links import Link

from .history import History, Operation
from .logs import LogLines, WatcherLog
from .observers import JobView
from .waiting import wait_for

GATED_SCRIPT = """#!/bin/sh
while [ ! -e "$HOME/go" ]; do sleep 0.1; done
echo done
"""


class Server:
    """A virtual server of the cluster: its host, its two links and its watcher.

    `ssh` is the link core -> the server's sshd, `amqp` the link the server's watchers -> the
    broker (harness.links)."""

    def __init__(self, host: Host, ssh: Link, amqp: Link, *, history: History,
                 known_hosts: Path) -> None:
        self.host = host
        self.name = host.name
        self.ssh = ssh
        self.amqp = amqp
        self.history = history
        self.log = WatcherLog(host, known_hosts, self.state_dir_on_disk / "log" / "watcher.log")

    def __repr__(self) -> str:
        return f"Server({self.name}, {self.host.address})"

    @property
    def state_dir_on_disk(self) -> Path:
        """The watcher state dir of this server (``~/.tengine-watcher``), seen from here."""
        return Path(self.host.home_on_disk) / PurePosixPath(self.host.state_dir).name

    # -- what a person reads on the server --

    def watcher_log(self, job: JobView | str) -> LogLines:
        """The watcher log lines about `job`, read on the server over ssh (testinfra)."""
        return self.log.lines_for(job)

    def wait_watcher_log(self, job: JobView | str, fact: str, timeout: float = 30.0) -> LogLines:
        return self.log.wait_for(job, fact, timeout=timeout, history=self.history)

    def file_size(self, path: str) -> int:
        """The size of a file on the server, as its user sees it (``stat -c %s``)."""
        done = self.host.run(["stat", "-c", "%s", path], user=self.host.user, check=True)
        return int(done.stdout)

    # -- what a test puts there --

    def install_script(self, name: str, text: str, mode: str = "755") -> str:
        """Put a script into the server user's home (as a person would over ssh) with `mode`;
        returns its path for a job, ``$HOME/<name>``."""
        path = f"$HOME/{name}"
        self.host.run(f'cat > "{path}" && chmod {mode} "{path}"', user=self.host.user,
                      input=text, check=True)
        self.history.add(Operation(action="install", path=path, value=mode, source=self.name))
        return path

    def install_gated_job(self) -> str:
        """A long job that ends when the test says so (`let_the_script_end`): a script in the
        server user's home that waits for a file there. Returns its path for the job."""
        return self.install_script("gated.sh", GATED_SCRIPT)

    def let_the_script_end(self) -> None:
        self.host.run('touch "$HOME/go"', user=self.host.user, check=True)
        self.history.add(Operation(action="end_script", path="$HOME/gated.sh",
                                   source=self.name))

    # -- targets on the server --

    def watchdog(self, job: JobView | str) -> Watchdog:
        """The watchdog of `job` on this server, for `cluster.faults.kill/pause/resume`."""
        return Watchdog(self, job)

    # as a failpoint target: the watcher's points take its state dir, and it runs as the user
    @property
    def failpoint_state_dir(self) -> Path:
        return self.state_dir_on_disk

    @property
    def failpoint_owner(self) -> tuple[int, int] | None:
        user = pwd.getpwnam(self.host.user)
        return user.pw_uid, user.pw_gid


class Watchdog:
    """The watchdog of one job on its server (the process that runs the job's script and
    reports on it). Its pid, inside the server, is read from the job dir; signals are sent
    inside the server."""

    name = "watchdog"

    def __init__(self, server: Server, job: JobView | str) -> None:
        self.server = server
        self.job_id = job.id if isinstance(job, JobView) else job
        self.job_path = job.name_path if isinstance(job, JobView) else job
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"Watchdog({self.job_path} on {self.server.name})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Watchdog) and other.server is self.server
                and other.job_id == self.job_id)

    def __hash__(self) -> int:
        return hash((self.server.name, self.job_id))

    @property
    def pid(self) -> int:
        """From the newest job dir of the job (one per attempt): its ``watchdog.json``."""
        if self._pid is None:
            jobs = self.server.state_dir_on_disk / "jobs"
            candidates = sorted((d for d in jobs.glob(f"{self.job_id}*")
                                 if d.name == self.job_id or d.name.startswith(f"{self.job_id}.")),
                                key=lambda d: d.stat().st_mtime)
            if not candidates:
                raise AssertionError(f"no job dir for {self.job_id} on {self.server.name} "
                                     f"(looked in {jobs})")
            self._pid = int(json.loads((candidates[-1] / "watchdog.json").read_text())["pid"])
        return self._pid

    def alive(self) -> bool:
        return self.server.host.run(["kill", "-0", str(self.pid)]).returncode == 0

    def signal(self, sig: signal.Signals) -> None:
        done = self.server.host.run(["kill", f"-{sig.name.removeprefix('SIG')}", str(self.pid)])
        if done.returncode != 0:
            raise AssertionError(f"kill -{sig.name} {self.pid} on {self.server.name} failed: "
                                 f"{done.stderr.strip()}")

    def wait(self, timeout: float) -> None:
        wait_for(lambda: not self.alive(), timeout=timeout,
                 what=f"the watchdog {self.pid} of {self.job_path} on {self.server.name} to end",
                 history=self.server.history)
