"""The monitors for real: a `tengine core` process on the shared test broker, real watchers
through the local transport, the broker stopped and started under them, a watchdog SIGKILLed.
Short times through the ordinary settings (heartbeat 1 s, expiry of a few seconds, a few publish
retries), so each test takes seconds. Each test has a core of its own (its own settings)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from harness.waiting import wait_for
from support.runtime import POLL, Runtime
from tengine_min import failpoints
from tengine_min.events import names as ev
from tengine_min.model import phases as ph
from tengine_min.watcher.procs import group_alive

DEFINITIONS = """
jobnets:
  - jobnet: mon_long
    server: local
    credential: local
    children:
      - job: j1
        script: {job} 60

  - jobnet: mon_gated
    server: local
    credential: local
    children:
      - job: g1
        script: {gated}
"""

# Runs until the test creates $JOB_OUT/go, then exits 0.
GATED_SCRIPT = """#!/bin/sh
while [ ! -e "$JOB_OUT/go" ]; do sleep 0.05; done
echo done
"""

FINISHED = r"finished\.process\.job\.tengine"
PUBLISH_PAUSE = "watcher.before_publish_finished"


def settings(*, expiry: float, retry_count: int, retry_interval: float = 0.5) -> str:
    return f"""
heartbeat_interval = 1
heartbeat_expiry = {expiry}
publish_retry_count = {retry_count}
publish_retry_interval = {retry_interval}
relay_poll_interval = 0.2
schedule_interval = 0.2
shutdown_grace = 10
command_timeout = 60
watcher_start_timeout = 60
log_level = "DEBUG"
"""


@pytest.fixture
def make_runtime(broker, tmp_path):
    made: list[Runtime] = []

    def make(**timing) -> Runtime:
        rt = Runtime(tmp_path, broker.url, settings(**timing))
        made.append(rt)
        gated = rt.script("gated.sh", GATED_SCRIPT)
        rt.load(rt.definition("monitors.yaml", DEFINITIONS.format(job=rt.job_sh, gated=gated)))
        rt.start_core()
        return rt

    yield make
    for rt in made:
        rt.close()


def watcher_dir(rt: Runtime) -> Path:
    return rt.state_dir / "watcher"


def started_record(rt: Runtime, job_id: str) -> dict:
    return json.loads((watcher_dir(rt) / "jobs" / job_id / "started.json").read_text())


def wait_running_with_heartbeat(rt: Runtime, execution_id: str, path: str):
    return rt.wait_vertex(execution_id, path, {ph.RUNNING},
                          check=lambda v: v.last_heartbeat_at is not None)


def no_handler_failed(rt: Runtime) -> bool:
    return not rt.core_log_matches(r"handler failed")


def events_of(rt: Runtime, name: str, job_id: str) -> list:
    return [e for e in rt.events(name) if e.properties.get("target_job_id") == job_id]


def test_a_sigkilled_watchdog_is_found_lost_and_its_script_is_not_left_running(make_runtime):
    """S08: error `watcher lost`, found by the heartbeat monitor; nothing of the job runs on."""
    rt = make_runtime(expiry=4, retry_count=2)
    execution_id = rt.run("mon_long")
    j1 = wait_running_with_heartbeat(rt, execution_id, "/mon_long/j1")
    started = started_record(rt, j1.id)
    os.kill(started["watchdog_pid"], signal.SIGKILL)

    j1 = rt.wait_vertex(execution_id, "/mon_long/j1", {ph.ERROR}, timeout=30)
    assert j1.reason.startswith("watcher lost: no heartbeat for "), j1.reason
    [expired] = [e for e in rt.events(ev.EXPIRED_JOB_HEARTBEAT) if e.key == j1.heartbeat_key]
    assert expired.level == "error" and expired.properties["target_job_id"] == j1.id
    [error] = wait_for(lambda: events_of(rt, ev.ERROR_JOB, j1.id), timeout=30,
                       what="error.job.job.tengine", interval=POLL)
    assert error.properties["message"] == j1.reason
    assert rt.wait_execution(execution_id).phase == ph.ERROR

    # job.sh's `sleep` outlived its shell; reconciliation found the watcher gone and killed it.
    wait_for(lambda: not group_alive(started["pgid"]), timeout=30,
             what="the job's processes to be gone", interval=POLL)
    [reconciled] = wait_for(lambda: events_of(rt, ev.RECONCILED_PROCESS_JOB, j1.id), timeout=30,
                            what="the reconciliation event", interval=POLL)
    assert reconciled.properties["host_state"] == "lost"
    assert reconciled.properties["orphans_killed"] is True
    assert rt.watcher_log_matches(rf"kill sent job_id={j1.id} ")
    assert not rt.watcher_log_matches(rf"\bfinished job_id={j1.id} ")  # nobody reported
    assert rt.vertices(execution_id)["/mon_long/j1"].late_result is None
    assert no_handler_failed(rt)


def test_queue_down_and_back_within_the_watchers_retries_ends_success(make_runtime, broker):
    """S05: the watcher log shows the disconnect and the reconnect; no expiry while the core
    could not hear; the job ends success."""
    rt = make_runtime(expiry=4, retry_count=120)
    execution_id = rt.run("mon_gated")
    g1 = wait_running_with_heartbeat(rt, execution_id, "/mon_gated/g1")
    broker.stop()
    rt.wait_watcher_log(rf"disconnected .*job_id={g1.id}\b", timeout=60)
    rt.wait_core_log(r"disconnected broker=", timeout=60)
    broker.start()
    rt.wait_core_log(r"reconnected broker=", timeout=60)
    rt.wait_watcher_log(rf"reconnected .*job_id={g1.id}\b", timeout=60)
    (rt.out / "go").touch()
    assert rt.wait_execution(execution_id, timeout=60).phase == ph.SUCCESS
    g1 = rt.vertices(execution_id)["/mon_gated/g1"]
    assert (g1.phase, g1.exit_status, g1.late_result) == (ph.SUCCESS, 0, None)
    assert not events_of(rt, ev.EXPIRED_JOB_HEARTBEAT, g1.id)
    assert not rt.watcher_log_matches(rf"gave up .*job_id={g1.id}\b")
    assert no_handler_failed(rt)


def test_queue_down_past_the_retries_ends_error_and_the_result_arrives_late(make_runtime,
                                                                           broker):
    """S06: the watcher gives up and keeps the result; the core finds the job lost by heartbeat
    expiry once it hears the broker again; reconciliation records the real result."""
    rt = make_runtime(expiry=4, retry_count=2)
    execution_id = rt.run("mon_gated")
    g1 = wait_running_with_heartbeat(rt, execution_id, "/mon_gated/g1")
    broker.stop()
    rt.wait_watcher_log(rf"disconnected .*job_id={g1.id}\b", timeout=60)
    (rt.out / "go").touch()
    rt.wait_watcher_log(rf"gave up event={FINISHED} .*job_id={g1.id}\b", timeout=60)
    rt.wait_watcher_log(rf"result not published .*job_id={g1.id}\b")
    assert rt.vertices(execution_id)["/mon_gated/g1"].phase == ph.RUNNING  # it cannot know
    broker.start()

    g1 = rt.wait_vertex(execution_id, "/mon_gated/g1", {ph.ERROR}, timeout=60)
    assert g1.reason.startswith("watcher lost: no heartbeat for "), g1.reason
    g1 = rt.wait_vertex(execution_id, "/mon_gated/g1", {ph.ERROR}, timeout=60,
                        check=lambda v: v.late_result is not None)
    assert (g1.late_result["exit_status"], g1.late_result["source"]) == (0, "reconciliation")
    [late] = wait_for(lambda: events_of(rt, ev.LATE_RESULT_JOB, g1.id), timeout=30,
                      what="late_result", interval=POLL)
    assert late.level == "warn" and "found on its host by reconciliation" in \
        late.properties["message"]
    # Reconciliation had the watcher send its result again: delivered, merged, one warning.
    rt.wait_watcher_log(rf"published event={FINISHED} .*job_id={g1.id}\b.* by=resend")
    g1 = rt.wait_vertex(execution_id, "/mon_gated/g1", {ph.ERROR}, timeout=30,
                        check=lambda v: "delivered_at" in (v.late_result or {}))
    assert g1.late_result["result"]["stdout_head"] == "done\n"  # the whole result now
    assert len(events_of(rt, ev.LATE_RESULT_JOB, g1.id)) == 1
    assert rt.execution(execution_id).phase == ph.ERROR
    assert no_handler_failed(rt)


def test_a_force_stop_after_the_script_ended_leaves_the_job_success(make_runtime):
    """S15: the kill finds nothing to stop; the result (exit 0) decides: success."""
    rt = make_runtime(expiry=60, retry_count=10)
    failpoints.arm(watcher_dir(rt), PUBLISH_PAUSE, "pause")
    execution_id = rt.run("mon_gated")
    g1 = rt.wait_vertex(execution_id, "/mon_gated/g1", {ph.RUNNING})
    (rt.out / "go").touch()
    failpoints.wait_hit(watcher_dir(rt), PUBLISH_PAUSE, timeout=30)  # ended, not yet reported
    rt.cli("stop", g1.id)
    rt.wait_watcher_log(rf"nothing to kill job_id={g1.id} \(already finished exit_status=0\)")
    wait_for(lambda: events_of(rt, ev.KILL_SENT_JOB, g1.id), timeout=30, what="kill_sent",
             interval=POLL)
    assert rt.vertices(execution_id)["/mon_gated/g1"].phase == ph.DYING
    failpoints.disarm(watcher_dir(rt), PUBLISH_PAUSE)
    failpoints.release(watcher_dir(rt), PUBLISH_PAUSE)
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    g1 = rt.vertices(execution_id)["/mon_gated/g1"]
    assert (g1.phase, g1.exit_status, ph.human_label(g1.phase, g1.stop_reason)) == (
        ph.SUCCESS, 0, ph.human_label(ph.SUCCESS))
    assert not rt.watcher_log_matches(rf"kill sent job_id={g1.id} ")
    assert no_handler_failed(rt)


def test_a_force_stop_whose_result_cannot_be_published_is_still_a_kill(make_runtime, broker):
    """S13: the watcher log says both `kill sent` and `gave up`; the job ends error (force
    stopped) through the monitors, and the kill's result is recorded when it becomes known."""
    rt = make_runtime(expiry=8, retry_count=2)
    failpoints.arm(watcher_dir(rt), PUBLISH_PAUSE, "pause")
    execution_id = rt.run("mon_long")
    j1 = wait_running_with_heartbeat(rt, execution_id, "/mon_long/j1")
    rt.cli("stop", j1.id)
    rt.wait_watcher_log(rf"kill sent job_id={j1.id} ")
    failpoints.wait_hit(watcher_dir(rt), PUBLISH_PAUSE, timeout=30)
    broker.stop()
    failpoints.disarm(watcher_dir(rt), PUBLISH_PAUSE)
    failpoints.release(watcher_dir(rt), PUBLISH_PAUSE)
    rt.wait_watcher_log(rf"gave up event={FINISHED} .*job_id={j1.id}\b", timeout=60)
    assert rt.vertices(execution_id)["/mon_long/j1"].phase == ph.DYING
    broker.start()

    j1 = rt.wait_vertex(execution_id, "/mon_long/j1", {ph.ERROR}, timeout=60)
    assert j1.reason.startswith("watcher lost: no heartbeat for "), j1.reason
    assert "while it was being stopped" in j1.reason
    assert ph.human_label(j1.phase, j1.stop_reason) == ph.human_label(ph.ERROR, ph.USER_STOP)
    j1 = rt.wait_vertex(execution_id, "/mon_long/j1", {ph.ERROR}, timeout=60,
                        check=lambda v: v.late_result is not None)
    assert (j1.late_result["signal"], j1.late_result["source"]) == ("KILL", "reconciliation")
    assert j1.late_result["result"]["killed"] is True
    assert no_handler_failed(rt)
