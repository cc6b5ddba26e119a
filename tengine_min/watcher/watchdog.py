"""The detached watchdog of one job: start the script, spool it, beat, record, publish.

Started by ``run`` as ``python -m tengine_min.watcher.watchdog <state dir> <job id>`` in a new
session with SIGHUP ignored, so it outlives the ssh session that asked for the job. It reads
what to run from the job's request.json and reports through files in the job dir:
started.json (or spawn_error.json), then result.json, then published.json.

``watch`` is the flow, one step per function: spawn, record started, pump, record result, then
publish (publish.py); the heartbeat runs beside the pump (heartbeat.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import traceback
import uuid
from pathlib import Path
from typing import Any

from ..failpoints import failpoint
from ..logfmt import kv
from .events import heartbeat_fields, sender_name, source_name
from .heartbeat import Heartbeat
from .jobdir import JobDir, now_iso
from .log import open_log
from .procs import die_with_parent_hook, signal_name, vm_hwm_kib
from .publish import (
    PublisherFactory,
    PublishSettings,
    bus_publisher,
    create_publish_lock,
    publish_result,
)
from .spool import StreamSpool, enlarge_pipe, pump

REAP_TIMEOUT = 10.0  # longest wait for a killed script to be gone (a D-state process lingers)

# Exit code of a watchdog that started the script but could not write started.json (a full
# disk) and so killed it; ``run`` reads it to say so.
EXIT_START_NOT_RECORDED = 4


class SpawnFailed(Exception):
    """The script could not be started; ``reason`` is the one-line text the core shows."""

    def __init__(self, reason: str, errno_name: str | None):
        super().__init__(reason)
        self.reason = reason
        self.errno_name = errno_name


def spawn_reason(path: str, exc: BaseException) -> tuple[str, str | None]:
    """The message for a failed start, in the words the core turns into a job error reason."""
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code) if code else None
    if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        return f"script not found: {path}", name
    if isinstance(exc, PermissionError) or code == errno.EACCES:
        return f"script not executable: {path}", name
    if code == errno.ENOEXEC:
        return f"script not executable: {path} (exec format error: no #! line?)", name
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"script could not be started: {path}: {detail}", name


def start_script(command: list[str], out_w: int, err_w: int) -> subprocess.Popen[bytes]:
    """Start the script in its own session (so its own process group), dying with us."""
    try:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            start_new_session=True, preexec_fn=die_with_parent_hook(), close_fds=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpawnFailed(*spawn_reason(command[0], exc)) from exc


def watch(jobdir: JobDir, log: logging.Logger, factory: PublisherFactory = bus_publisher) -> int:
    """Run the job of ``jobdir`` to its end; the exit code of the watchdog process.

    One ExitStack owns the spool files, the read ends of the script's pipes and its pidfd, so
    every way out (the script could not start, its start could not be recorded, it ran to its
    end, or the watchdog crashed) closes them the same way. When the script ran, they close only
    once it has exited or been killed: a script killed because its start could not be recorded
    gets SIGKILL, never a SIGPIPE first.
    """
    job_id = jobdir.job_id
    request = jobdir.request
    if request is None:
        raise RuntimeError(f"job {job_id}: no request.json in {jobdir.path}")
    options: dict[str, Any] = request["options"]
    command: list[str] = request["command"]

    with contextlib.ExitStack() as stack:
        stdout, stderr = _open_spools(stack, jobdir, options, log)
        create_publish_lock(jobdir)  # now, while the disk has room: see publish.py
        try:
            proc, pipes = _spawn(stack, command, stdout, stderr)
        except SpawnFailed as exc:
            _record_spawn_failed(jobdir, log, command, exc)
            return 1
        started = _record_started(jobdir, log, request, command, proc)
        if started is None:
            return EXIT_START_NOT_RECORDED  # killed and reaped: now the pipes may close
        settings = PublishSettings(options["amqp_url"], options["publish_retry_count"],
                                   options["publish_retry_interval"])
        heartbeat = _start_heartbeat(jobdir, log, request, started, settings, factory)
        returncode = _pump(stack, proc, pipes)
        finished_at = now_iso()
    # The spools are closed: their counts are final.
    if heartbeat is not None:
        heartbeat.stop()
    result = _result(jobdir, proc, started, returncode, finished_at, stdout, stderr, heartbeat)
    unrecorded = _record_result(jobdir, log, result)

    failpoint("watcher.before_publish_finished", state_dir=jobdir.state_dir, logger=log,
              job=job_id)
    ok = publish_result(jobdir, log, settings, factory, by="watchdog", unrecorded=unrecorded)
    return 0 if ok else 3


def _open_spools(stack: contextlib.ExitStack, jobdir: JobDir, options: dict[str, Any],
                 log: logging.Logger) -> tuple[StreamSpool, StreamSpool]:
    """The spool files of stdout and stderr, created (emptied) now; ``stack`` closes them."""
    cap = options.get("output_cap")
    spools = (StreamSpool("stdout", jobdir.stdout_path, cap, log=log, job_id=jobdir.job_id),
              StreamSpool("stderr", jobdir.stderr_path, cap, log=log, job_id=jobdir.job_id))
    stack.callback(_close_spools, spools)  # closing a spool that never opened does nothing
    for spool in spools:
        spool.open()
    return spools


def _close_spools(spools: tuple[StreamSpool, ...]) -> None:
    for spool in spools:
        spool.close()


def _spawn(stack: contextlib.ExitStack, command: list[str], stdout: StreamSpool,
           stderr: StreamSpool) -> tuple[subprocess.Popen[bytes], dict[int, StreamSpool]]:
    """Start the script with its stdout and stderr on pipes; the pump's {read end: spool}.

    ``stack`` closes the read ends, after the script is gone. The watchdog's copies of the
    write ends are closed as soon as the script has its own (or could not start), so that a
    pipe reaches its end when the script and its children are done with it.
    """
    pipes: dict[int, StreamSpool] = {}
    with contextlib.ExitStack() as write_ends:
        ends = []
        for spool in (stdout, stderr):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            stack.callback(os.close, read_end)
            write_ends.callback(os.close, write_end)
            enlarge_pipe(read_end)
            pipes[read_end] = spool
            ends.append(write_end)
        proc = start_script(command, *ends)
    return proc, pipes


def _record_spawn_failed(jobdir: JobDir, log: logging.Logger, command: list[str],
                         exc: SpawnFailed) -> None:
    jobdir.write("spawn_error.json", {"reason": exc.reason, "errno": exc.errno_name,
                                      "command": command, "at": now_iso(),
                                      "watchdog_pid": os.getpid()})
    log.error("spawn failed %s", kv(job_id=jobdir.job_id, reason=exc.reason,
                                    errno=exc.errno_name))


def _record_started(jobdir: JobDir, log: logging.Logger, request: dict[str, Any],
                    command: list[str], proc: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    """Write started.json: from then on ``run``, ``kill`` and ``status`` know the script runs.
    None when it cannot be written (a full disk): the script has then been killed."""
    job_id = jobdir.job_id
    watchdog_pid = os.getpid()
    started = {
        "pid": proc.pid, "pgid": proc.pid, "started_at": now_iso(),
        "event_key": str(uuid.uuid4()), "watchdog_pid": watchdog_pid,
        "hostname": socket.gethostname(),
        "source_name": source_name(request.get("server_name") or "", proc.pid,
                                   request.get("root_jobnet_id") or "", job_id),
        "sender_name": sender_name(socket.gethostname(), watchdog_pid),
    }
    failpoint("watcher.before_record_started", state_dir=jobdir.state_dir, logger=log,
              job=job_id)
    try:
        jobdir.write("started.json", started)
    except OSError as exc:  # a full disk (ENOSPC, EDQUOT, EIO): the start cannot be reported
        _abandon_start(jobdir, log, proc, exc, command)
        return None
    log.info("started %s", kv(job_id=job_id, pid=proc.pid, pgid=proc.pid,
                              watchdog_pid=watchdog_pid, key=started["event_key"]))
    return started


def _start_heartbeat(jobdir: JobDir, log: logging.Logger, request: dict[str, Any],
                     started: dict[str, Any], settings: PublishSettings,
                     factory: PublisherFactory) -> Heartbeat | None:
    """The heartbeat thread, beating from now on; None when the job asked for none."""
    interval = request["options"]["heartbeat_interval"]
    if interval <= 0:
        return None
    heartbeat = Heartbeat(interval, lambda: heartbeat_fields(request, started, now_iso()),
                          settings, factory, log, jobdir.job_id)
    heartbeat.start()
    return heartbeat


def _pump(stack: contextlib.ExitStack, proc: subprocess.Popen[bytes],
          pipes: dict[int, StreamSpool]) -> int:
    """Copy the script's output into its spools until it exits; its return code."""
    exit_fd: int | None
    try:
        exit_fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        exit_fd = None  # older kernel: pump polls the process instead
    else:
        stack.callback(os.close, exit_fd)
    pump(pipes, exit_fd, lambda: proc.poll() is not None)
    return proc.wait()


def _result(jobdir: JobDir, proc: subprocess.Popen[bytes], started: dict[str, Any],
            returncode: int, finished_at: str, stdout: StreamSpool, stderr: StreamSpool,
            heartbeat: Heartbeat | None) -> dict[str, Any]:
    """What result.json and the finished event say about the run."""
    kill_at = _kill_requested_before(jobdir, finished_at)
    return {
        "job_id": jobdir.job_id, "pid": proc.pid, "pgid": proc.pid,
        "exit_status": returncode if returncode >= 0 else None,
        "signal": signal_name(-returncode) if returncode < 0 else None,
        "killed": kill_at is not None, "kill_requested_at": kill_at,
        "started_at": started["started_at"], "finished_at": finished_at,
        "stdout": stdout.summary(), "stderr": stderr.summary(),
        "heartbeats_sent": heartbeat.sent if heartbeat else 0,
        "watchdog_pid": started["watchdog_pid"], "watchdog_vm_hwm_kib": vm_hwm_kib(),
        "event_key": started["event_key"],
    }


def _record_result(jobdir: JobDir, log: logging.Logger,
                   result: dict[str, Any]) -> dict[str, Any] | None:
    """Write result.json, before publishing: the host keeps it whatever becomes of the event;
    log the job's end. Returns the result when it could not be written (a full disk), to be
    sent from memory."""
    unrecorded = None
    try:
        jobdir.write("result.json", result)
    except OSError as exc:
        unrecorded = result
        log.error("result not recorded %s", kv(
            job_id=jobdir.job_id, path=jobdir.file("result.json"), error=str(exc),
            note="sending it anyway; if that fails it is lost"))
    log.info("finished %s", kv(
        job_id=jobdir.job_id, pid=result["pid"], exit_status=result["exit_status"],
        signal=result["signal"], killed=result["killed"],
        stdout_bytes=result["stdout"]["total_bytes"],
        stderr_bytes=result["stderr"]["total_bytes"], vm_hwm_kib=result["watchdog_vm_hwm_kib"]))
    return unrecorded


def _abandon_start(jobdir: JobDir, log: logging.Logger, proc: subprocess.Popen[bytes],
                   error: OSError, command: list[str]) -> None:
    """started.json could not be written: kill the script's process group at once.

    Nobody was told the script runs (``run`` cannot print its PID, ``kill`` and ``status`` cannot
    find it), so it must not run on unseen; PDEATHSIG alone would spare its children.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        action, fate = "script killed", "was killed at once"
    except OSError as exc:  # EPERM: a set-uid script; nothing more we can do
        action, fate = f"script not killed: {exc}", f"could not be killed: {exc}"
    log.error("start not recorded %s", kv(job_id=jobdir.job_id, pid=proc.pid,
                                           path=jobdir.file("started.json"), error=str(error),
                                           action=action))
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(REAP_TIMEOUT)  # so that it is gone when run reports it
    reason = (f"start not recorded: the job state could not be written on the host ({error}); "
              f"the script (pid {proc.pid}) had started and {fate}")
    # Best effort (the disk is most likely still full): tells a duplicate run and status.
    with contextlib.suppress(OSError):
        jobdir.write("spawn_error.json", {
            "reason": reason, "errno": errno.errorcode.get(error.errno or 0),
            "command": command, "at": now_iso(), "watchdog_pid": os.getpid(),
            "pid": proc.pid, "start_not_recorded": True})


def _kill_requested_before(jobdir: JobDir, moment: str) -> str | None:
    """Time of the first kill request made before ``moment`` (ISO strings sort by time) that
    signalled the script or was about to; a kill that found it already gone does not count, so
    a script that failed on its own just as a stop arrived is not labelled force stopped."""
    times = [k["requested_at"] for k in jobdir.kills
             if k.get("requested_at", "") <= moment
             and k.get("outcome") in ("requested", "sent", "stopped")]
    return min(times) if times else None


def main(argv: list[str] | None = None) -> int:
    """Entry of the detached process: ``<state dir> <job id>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m tengine_min.watcher.watchdog STATE_DIR JOB_ID", file=sys.stderr)
        return 2
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the ssh session closing must not stop us
    jobdir = JobDir(Path(args[0]), args[1])
    log = open_log(jobdir.state_dir, jobdir.job_id)
    log.debug("watchdog starting %s", kv(job_id=jobdir.job_id, watchdog_pid=os.getpid()))
    try:
        code = watch(jobdir, log)
    except BaseException as exc:  # noqa: BLE001 - whatever ends the watch is logged as a crash
        log.error("watchdog crashed %s", kv(job_id=jobdir.job_id, error=f"{type(exc).__name__}: "
                                            f"{exc}", details=jobdir.watchdog_err_path))
        traceback.print_exc()  # into watchdog.err
        return 1
    log.debug("watchdog exiting %s", kv(job_id=jobdir.job_id, code=code))
    logging.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
