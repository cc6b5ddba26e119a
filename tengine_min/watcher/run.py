"""``tengine-watcher run``: start a job's script once per job id and print ``PID=<n>``.

The first run for a job id creates the job dir (mkdir is the lock: of two concurrent runs only
one succeeds), writes request.json and spawns the detached watchdog, then waits for the watchdog
to report the script's PID or why it could not start. A later run for the same id finds the dir,
waits for the same report and prints the same PID, logging that the duplicate was ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from ..failpoints import failpoint
from ..logfmt import kv
from .jobdir import JobDir, now_iso
from .log import log_path, open_log
from .procs import find_processes, pid_alive
from .watchdog import EXIT_START_NOT_RECORDED

DEFAULT_START_TIMEOUT = 600.0  # Tengine's MM_SYSTEM_AGENT_RUN_TIMEOUT default
POLL = 0.01
WATCHDOG_MODULE = "tengine_min.watcher.watchdog"

EXIT_START_FAILED = 1
EXIT_NOT_EXECUTABLE = 126  # the shell's codes for the same two failures
EXIT_NOT_FOUND = 127


class StartFailed(Exception):
    """The script's start could not be confirmed either way (watchdog died, timed out)."""


class StartNotRecorded(StartFailed):
    """The watchdog started the script but could not write started.json, so it killed it."""


@dataclass(frozen=True)
class RunOptions:
    amqp_url: str
    heartbeat_interval: float = 5.0
    publish_retry_count: int = 30
    publish_retry_interval: float = 1.0
    output_cap: int | None = None


@dataclass(frozen=True)
class JobIdentity:
    execution_id: str = ""
    root_jobnet_id: str = ""
    target_jobnet_id: str = ""
    server_name: str = ""

    @classmethod
    def from_env(cls, execution_id: str | None = None, root_jobnet_id: str | None = None,
                 server_name: str | None = None) -> JobIdentity:
        """Options win; the MM_* variables the core exported fill the rest."""
        env = os.environ
        return cls(execution_id=execution_id or env.get("MM_SCHEDULE_ID", ""),
                   root_jobnet_id=root_jobnet_id or env.get("MM_ROOT_JOBNET_ID", ""),
                   target_jobnet_id=env.get("MM_TARGET_JOBNET_ID", ""),
                   server_name=server_name or env.get("MM_SERVER_NAME", ""))


def exit_code_for(spawn_error: dict) -> int:
    return EXIT_NOT_FOUND if spawn_error.get("errno") == "ENOENT" else EXIT_NOT_EXECUTABLE


def wait_for_start(jobdir: JobDir, timeout: float,
                   watchdog: subprocess.Popen | None = None) -> tuple[str, dict]:
    """Wait for ("started", started.json) or ("spawn_error", spawn_error.json).

    Raises StartFailed as soon as it is clear no report will come (the watchdog or the run that
    took the job died first), or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        outcome = _reported(jobdir)
        if outcome is not None:
            return outcome
        problem = _cannot_report(jobdir, watchdog)
        if problem is not None:
            outcome = _reported(jobdir)  # it may have reported just before dying
            if outcome is not None:
                return outcome
            raise problem
        if time.monotonic() >= deadline:
            raise StartFailed(
                f"job {jobdir.job_id}: timed out after {timeout:g} s waiting for the watchdog to "
                f"report the script's PID; whether the script started is unknown (see "
                f"{jobdir.path})")
        time.sleep(POLL)


def _reported(jobdir: JobDir) -> tuple[str, dict] | None:
    started = jobdir.started
    if started is not None:
        return "started", started
    error = jobdir.spawn_error
    if error is not None:
        return "spawn_error", error
    return None


def watchdog_argv(jobdir: JobDir) -> list[str]:
    return [sys.executable, "-m", WATCHDOG_MODULE, str(jobdir.state_dir), jobdir.job_id]


def _cannot_report(jobdir: JobDir, watchdog: subprocess.Popen | None) -> StartFailed | None:
    job = f"job {jobdir.job_id}"
    if watchdog is not None:  # we spawned it: its exit code tells
        code = watchdog.poll()
        if code == EXIT_START_NOT_RECORDED:  # and it could not write even spawn_error.json
            return StartNotRecorded(
                f"{job}: start not recorded: the watchdog could not write the job state on the "
                f"host (a full disk?), so it killed the script as soon as it started; see "
                f"{log_path(jobdir.state_dir)}")
        if code is not None:
            return StartFailed(f"{job}: the watchdog exited (code {code}) before starting the "
                               f"script; see {jobdir.watchdog_err_path}")
        return None
    spawned = jobdir.watchdog
    if spawned is not None:
        if not pid_alive(spawned["pid"]):
            # Not "before starting": it may have started the script and failed to record it.
            return StartFailed(
                f"{job}: the watchdog (pid {spawned['pid']}) ended without reporting the "
                f"script's start (a script it started is killed with it); see "
                f"{jobdir.watchdog_err_path} and {log_path(jobdir.state_dir)}")
        return None
    request = jobdir.request
    if request is None or pid_alive(request["run_pid"]):
        return None  # the first run is still at work
    # The first run died. It may have spawned the watchdog without recording it: look for it.
    if find_processes(watchdog_argv(jobdir)[-3:]) or jobdir.watchdog is not None:
        return None
    return StartFailed(f"{job}: the run (pid {request['run_pid']}) that took this job died "
                       "before starting its watchdog; the script was not started")


def spawn_watchdog(jobdir: JobDir) -> subprocess.Popen:
    """Start the watchdog detached: new session, no stdin/stdout, stderr into watchdog.err."""
    with open(jobdir.watchdog_err_path, "ab") as err:
        return subprocess.Popen(
            watchdog_argv(jobdir),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True, close_fds=True)


def _silence(stream: TextIO) -> None:
    """Point a dead stream at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def run(state_dir: Path, job_id: str, command: list[str], options: RunOptions,
        identity: JobIdentity, *, start_timeout: float = DEFAULT_START_TIMEOUT,
        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The ``run`` command; returns the exit code."""
    # The ssh session may close while we report; the watchdog is detached already, and we would
    # rather finish writing the log than die half-way.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    jobdir = JobDir(state_dir, job_id)
    log = open_log(state_dir, job_id)
    log.info("run requested %s", kv(job_id=job_id, command=" ".join(command),
                                    run_pid=os.getpid()))
    watchdog = None
    first = jobdir.create()
    if first:
        jobdir.write("request.json", {
            "job_id": job_id, "command": command, "cwd": os.getcwd(),
            "requested_at": now_iso(), "run_pid": os.getpid(),
            "options": asdict(options), **asdict(identity)})
        watchdog = spawn_watchdog(jobdir)
        jobdir.write("watchdog.json", {"pid": watchdog.pid, "spawned_at": now_iso()})
    try:
        kind, report = wait_for_start(jobdir, start_timeout, watchdog)
    except StartFailed as exc:
        fact = "start failed" if isinstance(exc, StartNotRecorded) else "start not confirmed"
        log.error("%s %s", fact, kv(job_id=job_id, error=str(exc)))
        print(f"tengine-watcher run: {exc}", file=err)
        return EXIT_START_FAILED

    if kind == "spawn_error":
        if not first:
            log.info("duplicate start ignored %s", kv(job_id=job_id, spawn_error=report["reason"]))
        if report.get("start_not_recorded"):  # not the script's fault: a start failure (1)
            print(f"tengine-watcher run: job {job_id}: {report['reason']}", file=err)
            return EXIT_START_FAILED
        print(report["reason"], file=err)
        return exit_code_for(report)

    pid = report["pid"]
    if not first:
        log.info("duplicate start ignored %s", kv(job_id=job_id, pid=pid))
    failpoint("watcher.before_pid_report", state_dir=state_dir, logger=log, job=job_id)
    try:
        print(f"PID={pid}", file=out, flush=True)
    except OSError as exc:  # the ssh channel went away (BrokenPipeError and the like)
        log.warning("pid not reported %s", kv(job_id=job_id, pid=pid, error=str(exc)))
        _silence(out)
        return EXIT_START_FAILED
    log.info("pid reported %s", kv(job_id=job_id, pid=pid, duplicate=not first))
    logging.shutdown()
    return 0
