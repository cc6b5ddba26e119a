"""The two events a watchdog sends, in Tengine's forms.

``job.heartbeat.tengine`` (level debug) every few seconds and, at the end,
``finished.process.job.tengine`` (info on exit 0, error otherwise), all with ONE key per job so
the core's event list shows one row per job that changes type.
Source ``job:<MM_SERVER_NAME>/<job pid>/<root jobnet id>/<job id>``,
sender ``agent:<hostname>/<watchdog pid>/tengine_job_agent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..events.envelope import Event

HEARTBEAT = "job.heartbeat.tengine"
FINISHED = "finished.process.job.tengine"


def source_name(server_name: str, pid: int, root_jobnet_id: str, job_id: str) -> str:
    return f"job:{server_name}/{pid}/{root_jobnet_id}/{job_id}"


def sender_name(hostname: str, watchdog_pid: int) -> str:
    return f"agent:{hostname}/{watchdog_pid}/tengine_job_agent"


def failure_message(stdout_log: str, stderr_log: str, server_name: str) -> str:
    """Tengine's text for a failed job (shown as the job's error message on the console)."""
    return ("Job process failed. STDOUT and STDERR were redirected to files.\n"
            f"You can see them at '{stdout_log}' and '{stderr_log}'\n"
            f"on the server '{server_name}'")


def _identity(request: dict[str, Any], started: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": request["job_id"],
        "target_job_id": request["job_id"],
        "execution_id": request.get("execution_id") or None,
        "root_jobnet_id": request.get("root_jobnet_id") or None,
        "target_jobnet_id": request.get("target_jobnet_id") or None,
        "pid": started["pid"],
        "command": " ".join(request["command"]),
    }


def heartbeat_fields(request: dict[str, Any], started: dict[str, Any], occurred_at: str) -> dict:
    """The envelope fields of one heartbeat (same key as the finished event)."""
    return {
        "event_type_name": HEARTBEAT,
        "key": started["event_key"],
        "source_name": started["source_name"],
        "sender_name": started["sender_name"],
        "occurred_at": occurred_at,
        "level": "debug",
        "properties": _identity(request, started),
    }


def finished_fields(request: dict[str, Any], started: dict[str, Any],
                    result: dict[str, Any]) -> dict:
    """The envelope fields of the finished event, from the recorded result only.

    Built from result.json alone (with request and started), so ``resend`` sends exactly what the
    watchdog would have sent.
    """
    exit_status = result["exit_status"]
    ok = exit_status == 0
    properties = _identity(request, started)
    properties.update({
        "exit_status": exit_status,
        "signal": result["signal"],
        "killed": result["killed"],
        "started_at": result["started_at"],
        "finished_at": result["finished_at"],
    })
    for stream in ("stdout", "stderr"):
        info = result[stream]
        properties[f"{stream}_log"] = info["log"]
        properties[f"{stream}_head"] = info["head"]
        properties[f"{stream}_tail"] = info["tail"]
        properties[f"{stream}_dropped_bytes"] = info["dropped_bytes"]
        properties[f"{stream}_bytes"] = info["total_bytes"]
        # The spool file on the host: bytes kept out of it (output cap, failed write) and why
        # it stopped short when a write failed (e.g. "[Errno 28] No space left on device").
        # .get: a result.json recorded before these fields existed can still be resent.
        properties[f"{stream}_spool_dropped_bytes"] = info.get("spool_dropped_bytes", 0)
        properties[f"{stream}_spool_error"] = info.get("spool_error")
    if not ok:
        properties["message"] = failure_message(
            result["stdout"]["log"], result["stderr"]["log"], request.get("server_name") or "")
    return {
        "event_type_name": FINISHED,
        "key": started["event_key"],
        "source_name": started["source_name"],
        "sender_name": started["sender_name"],
        "occurred_at": result["finished_at"],
        "level": "info" if ok else "error",
        "properties": properties,
    }


def to_event(fields: dict[str, Any]) -> Event:
    """An envelope ``Event`` of the bus from the fields above."""
    from ..events.envelope import Event

    return Event(**fields)
