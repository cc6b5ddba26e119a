"""The detached watchdog of one job: start the script, spool it, beat, record, publish.

Started by ``run`` as ``python -m tengine_min.watcher.watchdog <state dir> <job id>`` in a new
session with SIGHUP ignored, so it outlives the ssh session that asked for the job. It reads
what to run from the job's request.json and reports through files in the job dir:
started.json (or spawn_error.json), then result.json, then published.json.
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
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..failpoints import failpoint
from ..logfmt import kv
from .events import heartbeat_fields, sender_name, source_name, to_event
from .jobdir import JobDir, now_iso
from .log import open_log, quiet_logger
from .procs import die_with_parent_hook, signal_name, vm_hwm_kib
from .publish import (PublisherFactory, PublishSettings, broker_label, bus_publisher,
                      create_publish_lock, publish_result)
from .spool import StreamSpool, enlarge_pipe, pump

HEARTBEAT_CONNECT_TIMEOUT = 5.0  # longest a heartbeat may hold up the finished event
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


def start_script(command: list[str], out_w: int, err_w: int) -> subprocess.Popen:
    """Start the script in its own session (so its own process group), dying with us."""
    try:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            start_new_session=True, preexec_fn=die_with_parent_hook(), close_fds=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpawnFailed(*spawn_reason(command[0], exc)) from exc


def _root_cause(exc: BaseException) -> str:
    """The cause of a failed heartbeat, without the publisher's "gave up ..." wrapping: a
    heartbeat is never retried, and "gave up" in the log is kept for the finished event."""
    text = str(exc)
    if " attempt(s): " in text:
        return text.split(" attempt(s): ", 1)[1]
    return f"{type(exc).__name__}: {text}"


class Heartbeat(threading.Thread):
    """Sends ``job.heartbeat.tengine`` every ``interval`` s with no retry (Tengine: retry 0).

    Runs beside the pump, so a slow or absent broker never delays the script. It also notices
    the broker going away and coming back, which a long job would otherwise never show in the
    log: ``disconnected`` on the first failed heartbeat, ``reconnected`` on the next good one.
    """

    def __init__(self, interval: float, make_fields: Callable[[], dict], settings: PublishSettings,
                 factory: PublisherFactory, log: logging.Logger, job_id: str):
        super().__init__(name="heartbeat", daemon=True)
        self.interval = interval
        self.make_fields = make_fields
        self.settings = settings
        self.factory = factory
        self.log = log
        self.job_id = job_id
        self.sent = 0
        self._stop_event = threading.Event()
        self._connected: bool | None = None  # None: not tried yet

    def run(self) -> None:
        publisher = None
        broker = broker_label(self.settings.amqp_url)
        quiet = quiet_logger("tengine.watcher.heartbeat_publisher")  # its lines are re-stated below
        timeout = max(0.5, min(HEARTBEAT_CONNECT_TIMEOUT, self.interval))
        while not self._stop_event.is_set():
            fields = self.make_fields()
            try:
                if publisher is None:
                    publisher = self.factory(self.settings.amqp_url, retry_count=0,
                                             retry_interval=0.0, logger=quiet,
                                             connect_timeout=timeout)
                publisher.publish(to_event(fields))
            except Exception as exc:
                error = _root_cause(exc)
                self.log.debug("heartbeat not sent %s", kv(job_id=self.job_id, key=fields["key"],
                                                           error=error))
                if self._connected is not False:
                    self.log.warning("disconnected %s", kv(job_id=self.job_id, broker=broker,
                                                           via="heartbeat", error=error))
                self._connected = False
            else:
                self.sent += 1
                self.log.debug("heartbeat %s", kv(job_id=self.job_id, key=fields["key"]))
                if self._connected is False:
                    self.log.info("reconnected %s", kv(job_id=self.job_id, broker=broker,
                                                       via="heartbeat"))
                self._connected = True
            self._stop_event.wait(self.interval)
        if publisher is not None:
            try:
                publisher.close()
            except Exception:
                pass

    def stop(self) -> None:
        """Stop beating; wait (bounded) for a heartbeat in flight so it cannot land after the
        finished event and turn the core's event row back into a heartbeat."""
        self._stop_event.set()
        if self.is_alive():
            self.join(HEARTBEAT_CONNECT_TIMEOUT + 1.0)
        if self.is_alive():
            self.log.warning("heartbeat still in flight %s",
                             kv(job_id=self.job_id, note="finished event sent anyway"))


def _abandon_start(jobdir: JobDir, log: logging.Logger, proc: subprocess.Popen,
                   error: OSError, command: list[str]) -> int:
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
    try:  # best effort (the disk is most likely still full): tells a duplicate run and status
        jobdir.write("spawn_error.json", {
            "reason": reason, "errno": errno.errorcode.get(error.errno or 0),
            "command": command, "at": now_iso(), "watchdog_pid": os.getpid(),
            "pid": proc.pid, "start_not_recorded": True})
    except OSError:
        pass
    return EXIT_START_NOT_RECORDED


def _kill_requested_before(jobdir: JobDir, moment: str) -> str | None:
    """Time of the first kill request made before ``moment`` (ISO strings sort by time) that
    signalled the script or was about to; a kill that found it already gone does not count, so
    a script that failed on its own just as a stop arrived is not labelled force stopped."""
    times = [k["requested_at"] for k in jobdir.kills
             if k.get("requested_at", "") <= moment
             and k.get("outcome") in ("requested", "sent", "stopped")]
    return min(times) if times else None


def watch(jobdir: JobDir, log: logging.Logger, factory: PublisherFactory = bus_publisher) -> int:
    """Run the job of ``jobdir`` to its end; the exit code of the watchdog process."""
    job_id = jobdir.job_id
    request = jobdir.request
    if request is None:
        raise RuntimeError(f"job {job_id}: no request.json in {jobdir.path}")
    options: dict[str, Any] = request["options"]
    command: list[str] = request["command"]

    stdout = StreamSpool("stdout", jobdir.stdout_path, options.get("output_cap"), log=log,
                         job_id=job_id)
    stderr = StreamSpool("stderr", jobdir.stderr_path, options.get("output_cap"), log=log,
                         job_id=job_id)
    stdout.open()
    stderr.open()
    create_publish_lock(jobdir)  # now, while the disk has room: see publish.py
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    for fd in (out_r, err_r):
        enlarge_pipe(fd)
    try:
        proc = start_script(command, out_w, err_w)
    except SpawnFailed as exc:
        jobdir.write("spawn_error.json", {"reason": exc.reason, "errno": exc.errno_name,
                                          "command": command, "at": now_iso(),
                                          "watchdog_pid": os.getpid()})
        log.error("spawn failed %s", kv(job_id=job_id, reason=exc.reason, errno=exc.errno_name))
        return 1
    finally:
        os.close(out_w)
        os.close(err_w)

    started_at = now_iso()
    watchdog_pid = os.getpid()
    started = {
        "pid": proc.pid, "pgid": proc.pid, "started_at": started_at,
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
        code = _abandon_start(jobdir, log, proc, exc, command)
        for fd in (out_r, err_r):  # only now: the script gets SIGKILL, not a SIGPIPE first
            os.close(fd)
        stdout.close()
        stderr.close()
        return code
    log.info("started %s", kv(job_id=job_id, pid=proc.pid, pgid=proc.pid,
                              watchdog_pid=watchdog_pid, key=started["event_key"]))

    settings = PublishSettings(options["amqp_url"], options["publish_retry_count"],
                               options["publish_retry_interval"])
    heartbeat = None
    if options["heartbeat_interval"] > 0:
        heartbeat = Heartbeat(options["heartbeat_interval"],
                              lambda: heartbeat_fields(request, started, now_iso()),
                              settings, factory, log, job_id)
        heartbeat.start()

    exit_fd = None
    try:
        exit_fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pass  # older kernel: pump polls the process instead
    try:
        pump({out_r: stdout, err_r: stderr}, exit_fd, lambda: proc.poll() is not None)
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
    returncode = proc.wait()
    finished_at = now_iso()
    stdout.close()
    stderr.close()
    if heartbeat is not None:
        heartbeat.stop()

    exit_status = returncode if returncode >= 0 else None
    signal_text = signal_name(-returncode) if returncode < 0 else None
    kill_at = _kill_requested_before(jobdir, finished_at)
    result = {
        "job_id": job_id, "pid": proc.pid, "pgid": proc.pid,
        "exit_status": exit_status, "signal": signal_text,
        "killed": kill_at is not None, "kill_requested_at": kill_at,
        "started_at": started_at, "finished_at": finished_at,
        "stdout": stdout.summary(), "stderr": stderr.summary(),
        "heartbeats_sent": heartbeat.sent if heartbeat else 0,
        "watchdog_pid": watchdog_pid, "watchdog_vm_hwm_kib": vm_hwm_kib(),
        "event_key": started["event_key"],
    }
    unrecorded = None
    try:
        jobdir.write("result.json", result)  # before publishing: the host keeps it whatever
    except OSError as exc:  # a full disk: the result is still sent, from memory
        unrecorded = result
        log.error("result not recorded %s", kv(
            job_id=job_id, path=jobdir.file("result.json"), error=str(exc),
            note="sending it anyway; if that fails it is lost"))
    log.info("finished %s", kv(
        job_id=job_id, pid=proc.pid, exit_status=exit_status, signal=signal_text,
        killed=result["killed"], stdout_bytes=stdout.total_bytes,
        stderr_bytes=stderr.total_bytes, vm_hwm_kib=result["watchdog_vm_hwm_kib"]))

    failpoint("watcher.before_publish_finished", state_dir=jobdir.state_dir, logger=log,
              job=job_id)
    ok = publish_result(jobdir, log, settings, factory, by="watchdog", unrecorded=unrecorded)
    return 0 if ok else 3


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
    except BaseException as exc:
        log.error("watchdog crashed %s", kv(job_id=jobdir.job_id, error=f"{type(exc).__name__}: "
                                            f"{exc}", details=jobdir.watchdog_err_path))
        traceback.print_exc()  # into watchdog.err
        return 1
    log.debug("watchdog exiting %s", kv(job_id=jobdir.job_id, code=code))
    logging.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
