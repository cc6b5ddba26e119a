"""``tengine-watcher status`` and ``resend``: what the host knows of a job, and delivering it.

States: ``starting`` (no report yet), ``spawn_failed``, ``running``, ``finished``, and ``lost``
(started, no result, and the watchdog is gone: it was killed while the script ran).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TextIO

from ..logfmt import kv
from .jobdir import JobDir
from .log import open_log
from .procs import cmdline, group_alive, pid_alive
from .publish import PublishBusy, PublisherFactory, PublishSettings, bus_publisher, publish_result


def watchdog_alive(jobdir: JobDir, pid: int | None) -> bool:
    """True when ``pid`` is alive AND is this job's watchdog (not a reused pid)."""
    if pid is None or not pid_alive(pid):
        return False
    args = cmdline(pid)
    return jobdir.job_id in args and any("watchdog" in a for a in args)


def job_status(jobdir: JobDir) -> dict[str, Any]:
    """Everything recorded about the job, plus liveness seen now."""
    request = jobdir.request or {}
    started = jobdir.started
    spawn_error = jobdir.spawn_error
    result = jobdir.result
    published = jobdir.published
    kills = jobdir.kills
    watchdog = jobdir.watchdog or {}
    watchdog_pid = (started or {}).get("watchdog_pid") or watchdog.get("pid")
    alive = watchdog_alive(jobdir, watchdog_pid)
    if spawn_error is not None:
        state = "spawn_failed"
    elif started is None:
        state = "starting"
    elif result is not None:
        state = "finished"
    elif alive:
        state = "running"
    else:
        state = "lost"
    status: dict[str, Any] = {
        "job_id": jobdir.job_id,
        "state": state,
        "command": request.get("command"),
        "requested_at": request.get("requested_at"),
        "pid": (started or {}).get("pid"),
        "pgid": (started or {}).get("pgid"),
        "started_at": (started or {}).get("started_at"),
        "event_key": (started or {}).get("event_key"),
        "watchdog_pid": watchdog_pid,
        "watchdog_alive": alive,
        "script_alive": bool(started and result is None and group_alive(started["pgid"])),
        "spawn_error": (spawn_error or {}).get("reason"),
        "finished_at": (result or {}).get("finished_at"),
        "exit_status": (result or {}).get("exit_status"),
        "signal": (result or {}).get("signal"),
        "killed": (result or {}).get("killed"),
        "result_recorded": result is not None,
        "published": published is not None,
        "published_at": (published or {}).get("published_at"),
        "kill_requested": bool(kills),
        "kill_requests": kills,
        "stdout_log": str(jobdir.stdout_path),
        "stderr_log": str(jobdir.stderr_path),
        "stdout_bytes": (result or {}).get("stdout", {}).get("total_bytes"),
        "stderr_bytes": (result or {}).get("stderr", {}).get("total_bytes"),
        "job_dir": str(jobdir.path),
    }
    return status


def format_status(status: dict[str, Any]) -> str:
    """One ``key: value`` line per field, for a person."""
    lines = []
    for key, value in status.items():
        if key == "kill_requests":
            value = "; ".join(f"{k.get('requested_at')} {','.join(k.get('signals', []))} "
                              f"{k.get('outcome')}" for k in value) or "-"
        elif key == "command" and value:
            value = " ".join(value)
        elif value is None:
            value = "-"
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def status(state_dir: Path, job_id: str, *, as_json: bool, out: TextIO) -> int:
    info = job_status(JobDir(state_dir, job_id).require())
    print(json.dumps(info, ensure_ascii=False) if as_json else format_status(info), file=out)
    return 0


def resend(state_dir: Path, job_id: str, *, out: TextIO, err: TextIO,
           amqp_url: str | None = None, retry_count: int | None = None,
           retry_interval: float | None = None,
           factory: PublisherFactory = bus_publisher) -> int:
    """Publish a recorded result that was not yet published. 0 when it is (now or before).

    The publish settings are those the job was run with; each one given here overrides its own.
    """
    jobdir = JobDir(state_dir, job_id).require()
    log = open_log(state_dir, job_id)
    info = job_status(jobdir)
    if not info["result_recorded"]:
        message = f"no result to send for job {job_id}: it is {info['state']}"
        log.info("resend refused %s", kv(job_id=job_id, state=info["state"]))
        print(f"tengine-watcher resend: {message}", file=err)
        return 1
    if info["published"]:
        print(f"already published {kv(job_id=job_id, key=info['event_key'])}", file=out)
        log.info("resend not needed %s", kv(job_id=job_id, key=info["event_key"],
                                            reason="already published"))
        return 0
    options = (jobdir.request or {})["options"]
    settings = PublishSettings(
        amqp_url or options["amqp_url"],
        options["publish_retry_count"] if retry_count is None else retry_count,
        options["publish_retry_interval"] if retry_interval is None else retry_interval)
    log.info("resend requested %s", kv(job_id=job_id, key=info["event_key"]))
    try:
        ok = publish_result(jobdir, log, settings, factory, by="resend", wait_for_lock=False)
    except PublishBusy as exc:
        print(f"tengine-watcher resend: {exc} (the watchdog is still retrying); try again "
              "later", file=err)
        log.info("resend skipped %s", kv(job_id=job_id, reason="publish in progress"))
        return 1
    if not ok:
        print(f"tengine-watcher resend: could not publish the result of job {job_id}; it stays "
              f"in {jobdir.path} (see {state_dir / 'log' / 'watcher.log'})", file=err)
        return 1
    print(f"published {kv(job_id=job_id, key=info['event_key'])}", file=out)
    logging.shutdown()
    return 0
