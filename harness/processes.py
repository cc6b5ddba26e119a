"""The processes the harness and the integration tests start, and what they leave behind.

- `ManagedProcess`: one process (a core, a console) with its log file, signals, a clean stop
  (SIGCONT, SIGTERM, then SIGKILL after a deadline) and the tail of its log.
- `processes_mentioning(folder)`: the live processes whose command line or environment names a
  folder (a cluster's work dir, a runtime's root, a broker's dir), found without anyone's
  bookkeeping, so a teardown can check that nothing survived it; `kill_all` ends them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

import psutil

STOP_TIMEOUT = 15.0  # s for a process to end on SIGTERM before SIGKILL
KILL_TIMEOUT = 10.0  # s for a killed process to be gone


class ProcessError(RuntimeError):
    """A process was asked for something it cannot do now (a signal while it is not running)."""


class ManagedProcess:
    """A process (core, console) with its log, signals and a clean stop."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path,
                 state_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.state_dir = state_dir
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C at the terminal reaches the harness, which stops us in order.
            self.popen = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it has ended (negative: the signal that ended it), else None."""
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is None or not self.alive():
            raise ProcessError(f"{self.name} is not running (exit code {self.returncode})")
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGCONT (it may be paused), SIGTERM, then SIGKILL after `timeout`: the exit code
        (None when it was never started)."""
        if self.popen is None or not self.alive():
            return self.returncode
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                return self.returncode
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(KILL_TIMEOUT)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"

    # as a failpoint target: the core's points take its state dir
    @property
    def failpoint_state_dir(self) -> Path:
        return self.state_dir

    @property
    def failpoint_owner(self) -> tuple[int, int] | None:
        return None


def processes_mentioning(folder: Path | str) -> list[psutil.Process]:
    """Live processes (not zombies, not this one) whose command line or environment names
    `folder`."""
    needle = str(folder)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if needle in " ".join(proc.cmdline()) or any(needle in value for value in
                                                          proc.environ().values()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def kill_all(processes: Iterable[psutil.Process], timeout: float = KILL_TIMEOUT) -> None:
    """SIGKILL each of `processes` and wait up to `timeout` s for them to be gone."""
    procs = list(processes)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout)
