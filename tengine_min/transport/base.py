"""What a transport does: run one shell command line on a server and get its outcome.

`Transport.run(command, timeout=...)` returns a CommandResult (exit code, stdout, stderr) when the
command ran to its end, whatever its exit code. When the command could not be run or its outcome
could not be learnt it raises a TransportError subclass that says which:

| error | the command ran? | retryable |
|---|---|---|
| CannotConnect | no: nothing was sent | yes |
| AuthFailed | no | never |
| ConnectionLost | maybe: the request was sent, the answer lost | yes (the watcher is idempotent) |
| CommandTimeout | maybe: no answer in time | no |

Two transports implement it: `local.LocalTransport` (`/bin/sh -c <command>` on this machine) and
`ssh.SshTransport` (a job host over ssh).
"""

from __future__ import annotations

from dataclasses import dataclass
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
