"""The logs a person reads: the watcher log on a server (over its sshd, with testinfra) and the
core's log file.

- `WatcherLog`: the watcher log of a server read over ssh with testinfra (paramiko backend, the
  host key pinned); from the server's disk when it cannot be reached. `LogLines`: its lines of
  one job, asked by their fact (`has("started")`).
- `CoreLog`: the core's log file, `matching(regex)` and `wait_for(regex)`; `ssh_attempt(...)`:
  the regex of its line about one ssh attempt of a job.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko

from .history import History
from .observers import JobView
from .waiting import wait_for


def pinned_testinfra_host(hostspec: str, *, known_hosts: Path, key_file: Path,
                          timeout: int = 5) -> Any:
    """A testinfra host over its paramiko backend, with the host key pinned (RejectPolicy and a
    known_hosts file) instead of the backend's default WarningPolicy, and the key file given
    explicitly. testinfra is a test dependency: imported here, when first needed."""
    import testinfra.host
    from testinfra.backend.paramiko import ParamikoBackend

    class PinnedParamikoBackend(ParamikoBackend):
        @functools.cached_property
        def client(self) -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(hostname=self.host.name, port=int(self.host.port or 22),
                           username=self.host.user, key_filename=str(key_file),
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                           allow_agent=False, look_for_keys=False)
            return client

    return testinfra.host.Host(PinnedParamikoBackend(hostspec, timeout=timeout))


_LOG_LINE = re.compile(r"^(\S+) (\S+) tengine\.watcher (.*)$")
_JOB_ID = re.compile(r"\bjob_id=([^\s.]+)")


@dataclass(frozen=True)
class LogLines:
    """Watcher log lines (of one job, or all), with the questions a scenario asks."""

    lines: tuple[str, ...]
    where: str  # which server and file, for messages

    def facts(self) -> list[str]:
        """The fact of each line: its words before the first key=value."""
        return [line_fact(line) for line in self.lines]

    def has(self, fact: str) -> bool:
        return fact in self.facts()

    def lacks(self, fact: str) -> bool:
        return not self.has(fact)

    def count(self, fact: str) -> int:
        return self.facts().count(fact)

    def __str__(self) -> str:
        return f"{self.where}:\n" + ("\n".join(self.lines) or "(no lines)")


def line_fact(line: str) -> str:
    """The fact of a watcher log line: its words before the first key=value."""
    match = _LOG_LINE.match(line)
    words = []
    for word in (match.group(3) if match else line).split():
        if "=" in word:
            break
        words.append(word)
    return " ".join(words)


def line_job(line: str) -> str:
    """The job id a watcher log line names (``job_id=<id>``, without an attempt suffix)."""
    match = _JOB_ID.search(line)
    return match.group(1) if match else ""


def line_time(line: str) -> float | None:
    """The wall time at the start of a watcher log line, or None."""
    match = _LOG_LINE.match(line)
    if not match:
        return None
    try:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class WatcherLog:
    """The watcher log of one server: read over the server's sshd with testinfra, as a person
    would `ssh` in and look; from the server's disk when it is down, cut off or hung (said so in
    `source`)."""

    def __init__(self, host: Any, known_hosts: Path, disk_path: Path | None = None) -> None:
        self.host = host
        self.known_hosts = known_hosts
        self.disk_path = disk_path  # the same file, seen from the harness (local backend)
        self.path = str(PurePosixPath(host.state_dir) / "log" / "watcher.log")
        self.source = ""

    def read(self) -> list[str]:
        reachable = getattr(self.host, "is_up", True) and not (
            getattr(self.host, "partitioned", False) or getattr(self.host, "paused", False))
        if reachable:
            shell = pinned_testinfra_host(
                f"{self.host.user}@{self.host.address}:{self.host.ssh_port}",
                known_hosts=self.known_hosts, key_file=Path(self.host.key_file))
            try:
                found = shell.file(self.path)
                self.source = f"ssh {self.host.user}@{self.host.address}:{self.path}"
                text = found.content_string if found.exists else ""
                return text.splitlines()
            except (paramiko.SSHException, OSError) as exc:
                self.source = f"(ssh failed: {exc})"
            finally:
                if "client" in shell.backend.__dict__:
                    shell.backend.client.close()
        if self.disk_path is not None:
            self.source = (f"disk of {self.host.name} (host down, cut off or hung): "
                           f"{self.disk_path}")
            try:
                return self.disk_path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                return []
        raise AssertionError(f"cannot read the watcher log of {self.host.name}: {self.source}")

    def lines_for(self, job: JobView | str) -> LogLines:
        """The lines about one job: ``job_id=<id>`` or ``job_id=<id>.<attempt>``."""
        job_id = job.id if isinstance(job, JobView) else job
        pattern = re.compile(rf"\bjob_id={re.escape(job_id)}(\.\d+)?(\s|$)")
        lines = tuple(line for line in self.read() if pattern.search(line))
        return LogLines(lines, f"watcher log of {self.host.name} ({self.source}), job {job_id}")

    def wait_for(self, job: JobView | str, fact: str, *, timeout: float = 30.0,
                 history: History | None = None) -> LogLines:
        return wait_for(lambda: (found := self.lines_for(job)).has(fact) and found,
                        timeout=timeout, what=f"a {fact!r} line in the watcher log of "
                                              f"{self.host.name}",
                        last_seen=lambda: str(self.lines_for(job)), history=history,
                        interval=0.3)


class CoreLog:
    """The core's log file (`<state dir>/log/core.log`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        try:
            return self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in self.lines() if regex.search(line)]

    def wait_for(self, pattern: str, *, timeout: float = 30.0, count: int = 1,
                 history: History | None = None) -> list[str]:
        return wait_for(lambda: len(found := self.matching(pattern)) >= count and found,
                        timeout=timeout, what=f"{count} core log line(s) matching {pattern!r}",
                        last_seen=lambda: "\n".join(self.lines()[-10:]), history=history)


def ssh_attempt(job: JobView | str, number: int | str, total: int, command: str | None = None,
                server: str = "s1") -> str:
    """A regex for the core log line of one ssh attempt of a job (docs/ssh.md), ``ssh attempt
    1/3 server=s1 job_id=<id> ... command=start outcome=...``; `number` may be a regex
    (``"[23]"``), and without `command` any command matches."""
    job_id = job.id if isinstance(job, JobView) else job
    return (rf"ssh attempt {number}/{total} server={server} job_id={job_id} .*"
            + (rf"command={command}\b" if command else ""))
