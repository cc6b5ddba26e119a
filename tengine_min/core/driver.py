"""The driver: carries out the kernel's StartJob / KillJob commands on the job hosts.

A small pool of threads takes commands from a queue. For each one it resolves the job's server
and credential in the resources, builds the `tengine-watcher` command line as Tengine built its
agent command (tengine-facts section 5), runs it through the server's transport, and reports the
outcome as ONE event (`started.process.job.tengine` {pid}, `start_failed.job.job.tengine`
{message}, `kill_sent.job.job.tengine`, `stop_failed.job.job.tengine` {message}), each carrying the
command's properties (with `driver_task_id`). `report` puts the event in the outbox; the kernel
handles it when it comes back through the queue. The driver never writes execution state.

Servers with `transport = "ssh"` are reached with the ssh transport (transport/ssh.py), one
fresh connection per attempt; `local` runs on this machine (transport/local.py). A failed attempt is
retried as the retry policy says (retry.py), and every attempt and its outcome is one line in
the core log, with the job id. A failure becomes a reason a person reads on the job and in the
error event (`transport_failure_reason`), e.g. "cannot connect to server s1 (10.0.0.5:22):
connection refused" or "connection lost after the start request was sent; the job may be
running on s1".

An outcome the store does not take (it is unreachable) is reported again, after 0.5 s doubling
up to 5 s, until it is taken or the driver stops; then it is logged as not recorded, and
`Kernel.recover()` at the next start deals with the open task. An exception no branch expects
(a bug, an error a library did not wrap) still ends the command with start_failed / stop_failed,
its reason saying "internal error in the driver: <type>: <message>", so the job does not hang in
starting or dying.

Failpoints: `driver.after_connect` (the transport is up and, for ssh, authenticated; the
command not yet sent) on every attempt of every command, then `driver.before_kill` at the same
point of a kill attempt.
"""

from __future__ import annotations

import logging
import queue
import re
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bus.topology import redact
from ..config import Settings
from ..events import names as ev
from ..events.envelope import Event
from ..failpoints import failpoint
from ..logfmt import kv
from ..model.environment import shell_exports
from ..resources import Credential, Resources, Server, UnknownResource
from ..store.db import store_unreachable
from ..transport.base import (
    CommandResult,
    CommandTimeout,
    ConnectionLost,
    Transport,
    TransportError,
)
from ..transport.local import LocalTransport
from ..transport.ssh import SshTransport
from .handlers.commands import Command, KillJob, StartJob
from .identity import CoreIdentity
from .retry import RetryPolicy, with_retries

_PID_LINE = re.compile(r"^PID=(\d+)\s*$", re.MULTILINE)
_SPAWN_ERROR = re.compile(r"^script (not found|not executable): (.*)$", re.MULTILINE)
EXCERPT = 2000  # characters of a command's output kept in a message
# Seconds before reporting an outcome again after the store refused it: first, then the cap.
REPORT_RETRY = (0.5, 5.0)

Report = Callable[[Event], None]


class DriverError(Exception):
    """A command that cannot be carried out before anything is sent (unknown server, ...)."""


def build_run_command(command: StartJob, *, watcher: str, state_dir: str, amqp_url: str,
                      server_name: str, settings: Settings) -> str:
    """`export MM_...=... && { <preparation> } && tengine-watcher run ... -- <script>`. The script
    is appended verbatim, so the host's shell expands it, as Tengine did."""
    if not command.script.strip():
        raise DriverError(f"job {command.name_path} has no script")
    words = [watcher, "run", "--job-id", command.watcher_job_id, "--state-dir", state_dir,
             "--amqp-url", amqp_url,
             "--heartbeat-interval", f"{settings.heartbeat_interval:g}",
             "--publish-retry-count", str(settings.publish_retry_count),
             "--publish-retry-interval", f"{settings.publish_retry_interval:g}",
             "--start-timeout", f"{settings.watcher_start_timeout:g}",
             "--server-name", server_name,
             "--execution-id", command.execution_id,
             "--root-jobnet-id", command.root_jobnet_id]
    if settings.output_cap is not None:
        words += ["--output-cap", str(settings.output_cap)]
    parts = []
    exports = shell_exports(command.env)
    if exports:
        parts.append(exports)
    if command.preparation and command.preparation.strip():
        # A block, not a subshell: what the snippet exports reaches the watcher and the script.
        parts.append("{ " + command.preparation.strip() + "\n}")
    parts.append(" ".join(shlex.quote(w) for w in words) + " -- " + command.script.strip())
    return " && ".join(parts)


def build_kill_command(command: KillJob, *, watcher: str, state_dir: str) -> str:
    words = [watcher, "kill", "--job-id", command.watcher_job_id, "--state-dir", state_dir,
             "--signals", ",".join(command.signals), "--interval", f"{command.interval:g}"]
    return " ".join(shlex.quote(w) for w in words)


def parse_pid(stdout: str) -> int | None:
    """The PID of the last `PID=<n>` line, or None."""
    found = _PID_LINE.findall(stdout)
    return int(found[-1]) if found else None


def start_failure_reason(result: CommandResult, server: str) -> str:
    """Why a start command that ran did not give a PID, as a person reads it."""
    stderr = _excerpt(result.stderr)
    spawn = _SPAWN_ERROR.search(result.stderr)
    if result.exit_code in (126, 127) and spawn:
        return f"script {spawn.group(1)} on {server}: {spawn.group(2).strip()}"
    if result.exit_code == 0:
        return (f"tengine-watcher on {server} answered without a PID "
                f"(stdout: {_excerpt(result.stdout) or 'empty'}); "
                f"whether the script started is unknown")
    if result.exit_code == 1 and "tengine-watcher run:" in result.stderr:
        return f"tengine-watcher run on {server} failed: {stderr}"
    return (f"the start command on {server} failed with exit status {result.exit_code}: "
            f"{stderr or 'no output on stderr'}")


def transport_failure_reason(error: TransportError, what: str, server: str) -> str:
    """The reason a start (`what="start"`) or kill (`"kill"`) that met `error` shows. Errors
    before anything was sent carry their own sentence (cannot connect, authentication failed,
    unknown host name, host key); after the request went out, what is unknown is said."""
    unknown = _unknown_after_send(what, server)
    if isinstance(error, ConnectionLost):
        return f"connection lost after the {what} request was sent; {unknown}"
    if isinstance(error, CommandTimeout):
        return f"{error} after the {what} request was sent; {unknown}"
    return str(error)


def internal_error_reason(error: Exception, what: str, server: str) -> str:
    """The reason a start or kill shows when the driver itself failed: where it failed is not
    known, so neither is whether the request reached the host."""
    return (f"internal error in the driver: {type(error).__name__}: {error}; "
            f"{_unknown_after_send(what, server)}")


def _unknown_after_send(what: str, server: str) -> str:
    return (f"the job may be running on {server}" if what == "start"
            else f"whether the job was killed on {server} is unknown")


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


class Driver:
    """`submit(command)` queues; `start()` starts the threads; `stop(grace)` ends them."""

    def __init__(self, settings: Settings, resources: Resources, report: Report, *,
                 log: logging.Logger, identity: CoreIdentity, amqp_url: str,
                 transport_for: Callable[[Server], Transport] | None = None,
                 report_retry: tuple[float, float] = REPORT_RETRY) -> None:
        self.settings = settings
        self.resources = resources
        self.report = report
        self.log = log
        self.identity = identity
        self.amqp_url = amqp_url
        self._transport_for = transport_for  # tests: a transport of their own per server
        self._report_retry = report_retry  # (first delay, cap) in seconds; tests shorten it
        self._queue: queue.Queue[Command | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()

    # -- the pool --

    def start(self) -> None:
        for number in range(self.settings.driver_threads):
            # Daemon threads: a command stuck on a host must not keep a stopping core alive;
            # its driver task stays open and recover() deals with it at the next start.
            thread = threading.Thread(target=self._work, name=f"driver-{number + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, command: Command) -> None:
        """The kernel's dispatch: queue a command for a driver thread."""
        self._queue.put(command)

    def stop(self, grace: float) -> int:
        """Let the threads finish what is queued for up to `grace` seconds; returns how many
        commands were left unfinished (their driver tasks stay open for recover())."""
        for _ in self._threads:
            self._queue.put(None)  # after what is queued: the threads finish that first
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        left = [c for c in self._drain() if c is not None]
        for _ in self._threads:
            # The drain took the Nones too: a thread still busy (a command past the grace, an
            # outcome being reported again) must find one when it is done, or wait forever.
            self._queue.put(None)
        with self._busy_lock:
            busy = self._busy
        for command in left:
            self.log.warning("driver command left for recovery %s", kv(
                command=type(command).__name__, job_id=command.vertex_id,
                task_id=command.task_id))
        return len(left) + busy

    def _drain(self) -> list[Command | None]:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _work(self) -> None:
        while True:
            command = self._queue.get()
            if command is None or self._stopping.is_set():
                return
            with self._busy_lock:
                self._busy += 1
            try:
                self._deliver(command, self.execute(command))
            except Exception as exc:  # a bug: log it, never lose the thread
                self.log.exception("driver command crashed %s", kv(
                    job_id=command.vertex_id, task_id=command.task_id,
                    error=type(exc).__name__))
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _deliver(self, command: Command, event: Event) -> None:
        """Report `event`, again and again while the store refuses it: a dropped outcome would
        leave the job starting or dying until the next core start. Gives up only when the
        driver stops (the task stays open; recover() at the next start handles it)."""
        delay, cap = self._report_retry
        fields = {"job_id": command.vertex_id, "task_id": command.task_id,
                  "event": event.event_type_name, "key": event.key}
        attempt = 0
        while True:
            attempt += 1
            try:
                self.report(event)
            except Exception as exc:  # store unreachable: try again shortly
                # Reporting twice is harmless: the kernel ignores a second event with the key.
                error = f"{type(exc).__name__}: {exc}"
                if not store_unreachable(exc):  # a bug: trying again would fail the same way
                    self.log.exception("driver outcome not recorded %s", kv(
                        **fields, attempt=attempt, error=error,
                        note="the task stays open; recover() at the next core start will "
                             "handle it"))
                    return
                if self._stopping.is_set():
                    self._give_up(fields, attempt, error)
                    return
                self.log.warning("driver outcome not recorded, will retry %s", kv(
                    **fields, attempt=attempt, retry_in=f"{delay:g}s", error=error))
                if self._stopping.wait(delay):
                    self._give_up(fields, attempt, error)
                    return
                delay = min(delay * 2, cap)
                continue
            if attempt > 1:
                self.log.info("driver outcome recorded %s", kv(**fields, attempts=attempt))
            return

    def _give_up(self, fields: dict[str, Any], attempts: int, error: str) -> None:
        self.log.error("driver outcome not recorded: the core is stopping %s", kv(
            **fields, attempts=attempts, error=error,
            note="the task stays open; recover() at the next core start will handle it"))

    # -- one command --

    def execute(self, command: Command) -> Event:
        """Carry out one command and return its outcome event (not yet reported). Never raises
        for an Exception: an unexpected one becomes start_failed / stop_failed."""
        what = "start" if isinstance(command, StartJob) else "kill"
        try:
            if isinstance(command, StartJob):
                return self._start(command)
            return self._kill(command)
        except Exception as exc:  # a bug must end the command, not hang the job
            reason = internal_error_reason(exc, what, command.server_name or "its server")
            self.log.exception("%s failed %s", what, kv(
                job_id=command.vertex_id, name_path=command.name_path,
                task_id=command.task_id, server=command.server_name, reason=reason))
            name = ev.START_FAILED_JOB if what == "start" else ev.STOP_FAILED_JOB
            return self._event(name, command, "error", message=reason)

    def _start(self, command: StartJob) -> Event:
        fields = {"job_id": command.vertex_id, "name_path": command.name_path,
                  "task_id": command.task_id, "server": command.server_name}
        try:
            server, credential = self._resolve(command)
            transport, before_send = self._open(server, credential, "start", command.vertex_id)
            amqp_url = server.amqp_url or self.amqp_url
            line = build_run_command(
                command, watcher=transport.watcher_command,
                state_dir=transport.watcher_state_dir, amqp_url=amqp_url,
                server_name=server.name, settings=self.settings)
        except (UnknownResource, DriverError) as exc:
            reason = str(exc)
            self.log.error("start failed %s", kv(**fields, reason=reason))
            return self._event(ev.START_FAILED_JOB, command, "error", message=reason)
        shown = line.replace(amqp_url, redact(amqp_url))  # no password in the log
        try:
            result = self._attempts("start", server, transport, before_send, line, shown,
                                    fields)
        except TransportError as exc:
            reason = transport_failure_reason(exc, "start", server.name)
            self.log.error("start failed %s", kv(**fields, reason=reason))
            return self._event(ev.START_FAILED_JOB, command, "error", message=reason)
        pid = parse_pid(result.stdout) if result.exit_code == 0 else None
        if pid is None:
            reason = start_failure_reason(result, server.name)
            self.log.error("start failed %s", kv(**fields, exit_code=result.exit_code,
                                                 reason=reason))
            return self._event(ev.START_FAILED_JOB, command, "error", message=reason)
        self.log.info("start succeeded %s", kv(**fields, pid=pid))
        return self._event(ev.STARTED_PROCESS_JOB, command, "info", pid=pid)

    def _kill(self, command: KillJob) -> Event:
        fields = {"job_id": command.vertex_id, "name_path": command.name_path,
                  "task_id": command.task_id, "server": command.server_name, "pid": command.pid}
        try:
            server, credential = self._resolve(command)
            transport, before_send = self._open(server, credential, "kill", command.vertex_id)
        except (UnknownResource, DriverError) as exc:
            reason = str(exc)
            self.log.error("kill failed %s", kv(**fields, reason=reason))
            return self._event(ev.STOP_FAILED_JOB, command, "error", message=reason)
        line = build_kill_command(command, watcher=transport.watcher_command,
                                  state_dir=transport.watcher_state_dir)
        try:
            result = self._attempts("kill", server, transport, before_send, line, line, fields)
        except TransportError as exc:
            reason = transport_failure_reason(exc, "kill", server.name)
            self.log.error("kill failed %s", kv(**fields, reason=reason))
            return self._event(ev.STOP_FAILED_JOB, command, "error", message=reason)
        output = _excerpt(result.stdout)
        if result.exit_code != 0:
            reason = (f"tengine-watcher kill on {server.name} failed with exit status "
                      f"{result.exit_code}: {_excerpt(result.stderr) or output}")
            self.log.error("kill failed %s", kv(**fields, reason=reason))
            return self._event(ev.STOP_FAILED_JOB, command, "error", message=reason)
        self.log.info("kill sent %s", kv(**fields, output=output))
        return self._event(ev.KILL_SENT_JOB, command, "info", message=output)

    def _resolve(self, command: Command) -> tuple[Server, Credential | None]:
        """The job's server and credential from the resources (UnknownResource names which)."""
        server = self.resources.server(command.server_name)
        credential = (self.resources.credential(command.credential_name)
                      if command.credential_name else None)
        if server.transport == "ssh":
            if credential is None:
                raise DriverError(f"no credential given for {command.name_path} on server "
                                  f"{server.name!r} (set credential_name in the definition)")
            if not credential.is_ssh:
                raise DriverError(f"credential {credential.name!r} is of type "
                                  f"{credential.type}, which cannot log in to ssh server "
                                  f"{server.name!r} (use ssh_password or ssh_public_key)")
        return server, credential

    def _open(self, server: Server, credential: Credential | None, what: str,
              job: str) -> tuple[Transport, Callable[[], None]]:
        """The transport for one command, and what to call right before each attempt sends
        it: the failpoints, which an ssh transport calls itself once it is connected."""
        def connected() -> None:
            failpoint("driver.after_connect", state_dir=self.settings.state_dir,
                      logger=self.log, job=job, command=what)
            if what == "kill":
                failpoint("driver.before_kill", state_dir=self.settings.state_dir,
                          logger=self.log, job=job)

        if self._transport_for is None and server.transport == "ssh":
            assert credential is not None  # _resolve saw to it
            transport = SshTransport(server, credential,
                                     watcher_command=self.settings.watcher_command,
                                     on_connected=connected)
            return transport, lambda: None
        return self.transport(server), connected

    def transport(self, server: Server, credential_name: str | None = None) -> Transport:
        """A transport to `server` (for an ssh server: logging in with `credential_name`).
        Raises UnknownResource or DriverError saying what is missing."""
        if self._transport_for is not None:
            return self._transport_for(server)
        if server.transport == "local":
            state_dir = server.watcher_state_dir or str(self.settings.watcher_state_dir)
            return LocalTransport(server.name, Path(state_dir).expanduser(),
                                  watcher_command=server.watcher_command)
        if not credential_name:
            raise DriverError(f"server {server.name!r} is reached over ssh: a credential is "
                              f"needed to log in")
        credential = self.resources.credential(credential_name)
        if not credential.is_ssh:
            raise DriverError(f"credential {credential.name!r} is of type {credential.type}, "
                              f"which cannot log in to ssh server {server.name!r}")
        return SshTransport(server, credential, watcher_command=self.settings.watcher_command)

    def _attempts(self, what: str, server: Server, transport: Transport,
                  before_send: Callable[[], None], line: str, shown: str,
                  fields: dict[str, Any]) -> CommandResult:
        """Run `line` with the server's retry policy; raises the last TransportError."""
        policy = RetryPolicy.for_server(server, self.settings)
        self.log.info("%s command %s", what, kv(**fields, transport=server.transport,
                                                 attempts=policy.attempts, command=shown))

        def attempt() -> CommandResult:
            before_send()
            return transport.run(line, timeout=self.settings.command_timeout)

        return with_retries(policy, attempt, log=self.log, label=server.transport,
                            fields={"server": server.name, **fields, "command": what},
                            wait=self._stopping.wait)

    def _event(self, name: str, command: Command, level: str, **extra: Any) -> Event:
        props = dict(command.properties)
        props.setdefault("driver_task_id", command.task_id)
        props.update(extra)
        props["server_name"] = command.server_name
        host, pid = self.identity.host, self.identity.pid
        return Event(event_type_name=name,
                     source_name=f"job:{host}/{pid}/{command.root_jobnet_id}/{command.vertex_id}",
                     sender_name=f"tengined:{host}/{pid}", level=level, properties=props)
