"""``tengine-watcher kill``: signal a job's process group, once per need.

As Tengine's ``tengine_job_agent_kill``: each signal in order goes to the script's process group,
then up to ``interval`` seconds pass waiting for the group to disappear, stopping early when it
has. Unlike it, the host remembers kills: a kill of a finished job reports that there was nothing
to stop, and a kill repeated after the job already stopped is recognised and ignored. Every
request is recorded in kill.json before any signal is sent, so the watchdog can mark its result
``killed``. Concurrent kills of one job are serialised by a lock file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from pathlib import Path
from typing import TextIO

from ..failpoints import failpoint
from ..logfmt import kv
from .jobdir import JobDir, now_iso
from .log import open_log
from .procs import group_alive, signal_name
from .run import wait_for_start

DEFAULT_SIGNALS = "KILL"
DEFAULT_INTERVAL = 5.0
GONE_POLL = 0.02


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """True as soon as process group ``pgid`` is empty; False if it still exists at the end."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(GONE_POLL)
    return True


def _record(jobdir: JobDir, entry: dict) -> None:
    """Add or update (same ``requested_at`` and ``by_pid``) one kill request in kill.json."""
    requests = [k for k in jobdir.kills
                if not (k.get("requested_at") == entry["requested_at"]
                        and k.get("by_pid") == entry["by_pid"])]
    requests.append(entry)
    jobdir.write("kill.json", {"requests": requests})


def _already_stopped(jobdir: JobDir) -> bool:
    return any(k.get("outcome") in ("sent", "stopped") for k in jobdir.kills)


def kill(state_dir: Path, job_id: str, signals: list[signal.Signals], interval: float, *,
         start_timeout: float = 60.0, out: TextIO, err: TextIO) -> int:
    """The ``kill`` command; returns the exit code (0 whenever the job is known)."""
    jobdir = JobDir(state_dir, job_id).require()
    log = open_log(state_dir, job_id)
    names = [signal_name(s) for s in signals]
    entry = {"requested_at": now_iso(), "by_pid": os.getpid(), "signals": names,
             "interval": interval, "outcome": "requested"}
    log.info("kill requested %s", kv(job_id=job_id, signals=",".join(names), interval=interval))
    with open(jobdir.kill_lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kind, report = wait_for_start(jobdir, start_timeout)
        if kind == "spawn_error":
            return _nothing(jobdir, log, entry, out,
                            f"(never started: {report['reason']})", "never_started")
        pgid = report["pgid"]
        result = jobdir.result
        if result is not None or not group_alive(pgid):
            if _already_stopped(jobdir):
                message = f"duplicate kill ignored {kv(job_id=job_id)} (already stopped)"
                log.info(message)
                print(message, file=out)
                entry["outcome"] = "duplicate"
                _record(jobdir, entry)
                return 0
            if result is not None:
                how = f"exit_status={result['exit_status']}"
                if result.get("signal"):
                    how += f" signal={result['signal']}"
                return _nothing(jobdir, log, entry, out, f"(already finished {how})", "finished")
            return _nothing(jobdir, log, entry, out, "(already finished, result being recorded)",
                            "finished")

        _record(jobdir, entry)  # before the first signal: the watchdog reads it for `killed`
        lines = []
        outcome = "sent"
        for index, (sig, name) in enumerate(zip(signals, names, strict=True)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:  # it ended between our look and the send
                line = f"kill found no process {kv(job_id=job_id, signal=name, pgid=pgid)}"
                log.info(line)
                lines.append(line)
                if index == 0:  # gone before the first signal
                    outcome = "finished"
                break
            line = f"kill sent {kv(job_id=job_id, signal=name, pgid=pgid)}"
            log.info(line)
            lines.append(line)
            if wait_group_gone(pgid, interval):
                outcome = "stopped"
                log.info("stopped %s", kv(job_id=job_id, pgid=pgid, signal=name))
                break
        else:
            log.warning("still running after kill %s", kv(job_id=job_id, pgid=pgid,
                                                           signals=",".join(names)))
        entry["outcome"] = outcome
        entry["done_at"] = now_iso()
        _record(jobdir, entry)
    failpoint("watcher.after_kill", state_dir=state_dir, logger=log, job=job_id)
    for line in lines:
        print(line, file=out)
    out.flush()
    logging.shutdown()
    return 0


def _nothing(jobdir: JobDir, log: logging.Logger, entry: dict, out: TextIO, why: str,
             outcome: str) -> int:
    message = f"nothing to kill {kv(job_id=jobdir.job_id)} {why}"
    log.info(message)
    print(message, file=out)
    entry["outcome"] = outcome
    _record(jobdir, entry)
    return 0
