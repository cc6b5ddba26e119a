"""Event type names (tengine-facts section 1), and the ones we add.

Every process that sends or reads events (the core, the console, the watcher, the bus) takes the
names from here; docs/states.md says what each one does to the state.
"""

from __future__ import annotations

# Job event flow.
START_EXECUTION = "start.execution.job.tengine"
START_JOBNET = "start.jobnet.job.tengine"
START_JOB = "start.job.job.tengine"
JOB_HEARTBEAT = "job.heartbeat.tengine"
FINISHED_PROCESS_JOB = "finished.process.job.tengine"
SUCCESS_JOB = "success.job.job.tengine"
ERROR_JOB = "error.job.job.tengine"
SUCCESS_JOBNET = "success.jobnet.job.tengine"
ERROR_JOBNET = "error.jobnet.job.tengine"
SUCCESS_EXECUTION = "success.execution.job.tengine"
ERROR_EXECUTION = "error.execution.job.tengine"
STOP_EXECUTION = "stop.execution.job.tengine"
STOP_JOBNET = "stop.jobnet.job.tengine"
STOP_JOB = "stop.job.job.tengine"
ALERT_EXECUTION = "alert.execution.job.tengine"
RESTART_JOB = "restart.job.job.tengine"
EXPIRED_JOB_HEARTBEAT = "expired.job.heartbeat.tengine"

# Our additions (not in Tengine, docs/states.md): the core's driver reports the outcome of its
# slow work (ssh start / kill) as events, and the core warns about a result that came too late.
STARTED_PROCESS_JOB = "started.process.job.tengine"  # {pid}: the watcher reported the PID
START_FAILED_JOB = "start_failed.job.job.tengine"  # {message}: the start failed or is unknown
STOP_FAILED_JOB = "stop_failed.job.job.tengine"  # {message}: the kill could not be sent
KILL_SENT_JOB = "kill_sent.job.job.tengine"  # the kill command ran on the host
LATE_RESULT_JOB = "late_result.job.job.tengine"  # a finished result for a job already decided
# The console's ステータス変更 as a command for the core, which alone writes execution state
# (Tengine's console wrote the phase itself): {target_job_id or target_jobnet_id, status}.
CHANGE_STATUS_JOB = "change_status.job.job.tengine"
# What the core's reconciliation (core/reconcile.py) learnt from a job's host after the core had
# given up on the job (watcher lost, server down).
RECONCILED_PROCESS_JOB = "reconciled.process.job.tengine"

# Other processes' heartbeats.
CORE_HEARTBEAT = "core.heartbeat.tengine"
FINISHED_PROCESS_CORE = "finished.process.core.tengine"
EXPIRED_CORE_HEARTBEAT = "expired.core.heartbeat.tengine"
HBW_HEARTBEAT = "hbw.heartbeat.tengine"
FINISHED_PROCESS_HBW = "finished.process.hbw.tengine"
EXPIRED_HBW_HEARTBEAT = "expired.hbw.heartbeat.tengine"
ATD_HEARTBEAT = "atd.heartbeat.tengine"
FINISHED_PROCESS_ATD = "finished.process.atd.tengine"
EXPIRED_ATD_HEARTBEAT = "expired.atd.heartbeat.tengine"


def failed_event_name(event_type_name: str) -> str:
    """What the core fires for a redelivered (duplicate-key) event: ``<name>.failed.tengined``."""
    return f"{event_type_name}.failed.tengined"


def error_event_name(event_type_name: str) -> str:
    """What the core fires when a handler raised: ``<name>.error.tengined``."""
    return f"{event_type_name}.error.tengined"
