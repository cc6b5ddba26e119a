"""How the driver reaches a server: run one shell command line there and get its outcome.

`Transport.run(command, timeout=...)` returns a CommandResult (exit code, stdout, stderr) when the
command ran to its end, whatever its exit code. When the command could not be run or its outcome
could not be learnt it raises a TransportError subclass that says which:

| error | the command ran? | retryable |
|---|---|---|
| CannotConnect | no: nothing was sent | yes |
| AuthFailed | no | never |
| ConnectionLost | maybe: the request was sent, the answer lost | yes (the watcher is idempotent) |
| CommandTimeout | maybe: no answer in time | no |

`LocalTransport` runs `/bin/sh -c <command>` on this machine; the ssh transport (next issue) keeps
the same interface, so the driver does not change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


class TransportError(Exception):
    """The command's outcome is not known from the server. `request_sent` says whether the
    command may have run; `retryable` whether trying again may help."""

    retryable = False
    request_sent = False


class CannotConnect(TransportError):
    retryable = True


class AuthFailed(TransportError):
    retryable = False


class ConnectionLost(TransportError):
    retryable = True
    request_sent = True


class CommandTimeout(TransportError):
    retryable = False
    request_sent = True


class Transport(Protocol):
    server_name: str
    # Where the watcher keeps its state on that server, and how to call it there.
    watcher_state_dir: str
    watcher_command: str

    def run(self, command: str, *, timeout: float) -> CommandResult: ...


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
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
