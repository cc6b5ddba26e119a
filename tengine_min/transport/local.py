"""The transport to this machine: command lines run with /bin/sh (servers with
`transport = "local"`, and the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from .base import CannotConnect, CommandResult, CommandTimeout


def local_watcher_command() -> str:
    """The `tengine-watcher` of this installation (beside this Python, e.g. .venv/bin)."""
    return str(Path(sys.executable).parent / "tengine-watcher")


class LocalTransport:
    """Runs command lines on this machine with /bin/sh, in their own session so a timeout can
    stop the whole command (the watchdog it starts detaches into a session of its own)."""

    def __init__(self, server_name: str, watcher_state_dir: str | Path, *,
                 watcher_command: str | None = None) -> None:
        self.server_name = server_name
        self.watcher_state_dir = str(watcher_state_dir)
        self.watcher_command = watcher_command or local_watcher_command()

    def run(self, command: str, *, timeout: float) -> CommandResult:
        try:
            process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as exc:
            raise CannotConnect(f"cannot run /bin/sh on {self.server_name}: "
                                f"{exc.strerror or exc}") from exc
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise CommandTimeout(f"no answer from {self.server_name} within {timeout:g} s") \
                from None
        return CommandResult(process.returncode, _text(stdout), _text(stderr))


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
