"""The core stopped and killed mid-jobnet: a clean stop and a SIGKILL lose nothing. Each test has
a core of its own (the tests kill it); the broker is the shared test broker, purged per test."""

from __future__ import annotations

import signal

import pytest

from harness.waiting import wait_for
from support.runtime import POLL, Runtime
from tengine_min import failpoints
from tengine_min.events import names as ev
from tengine_min.model import phases as ph

DEFINITIONS = """
jobnets:
  - jobnet: crash_serial
    server: local
    credential: local
    children:
      - job: c1
        script: {job} 1
      - job: c2
        script: {job} 0.3
      - job: c3
        script: {job} 0
"""

ACK = "core.after_commit_before_ack"
PID_REPORT = "watcher.before_pid_report"


@pytest.fixture
def rt(broker, tmp_path):
    runtime = Runtime(tmp_path, broker.url)
    try:
        runtime.load(runtime.definition("crash.yaml", DEFINITIONS.format(job=runtime.job_sh)))
        yield runtime
    finally:
        runtime.close()


def start_event_key(rt: Runtime, execution_id: str) -> str:
    starts = [e for e in rt.events(ev.START_EXECUTION)
              if e.properties["execution_id"] == execution_id]
    assert len(starts) == 1
    return starts[0].key


def test_an_event_redelivered_after_sigkill_changes_nothing(rt):
    rt.start_core()
    failpoints.arm(rt.state_dir, ACK, "pause")
    execution_id = rt.run("crash_serial")
    failpoints.wait_hit(rt.state_dir, ACK, timeout=30)
    # start.execution is committed (the execution is starting) but its message is not acked.
    assert rt.execution(execution_id).phase == ph.STARTING
    rt.kill_core()
    failpoints.disarm(rt.state_dir, ACK)
    rt.start_core()
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    key = start_event_key(rt, execution_id)
    received = rt.core_log_matches(rf"event received event={ev.START_EXECUTION} key={key}")
    ignored = rt.core_log_matches(rf"duplicate event ignored event={ev.START_EXECUTION} "
                                  rf"key={key}")
    # Handled once; the redelivery (and a second copy, when both the CLI and the core's relay
    # published the row) was recognised by its key.
    assert len(ignored) >= 1 and len(received) == len(ignored) + 1
    for path, vertex in rt.vertices(execution_id).items():
        assert vertex.phase == ph.SUCCESS, path
        if vertex.kind == "job":
            assert vertex.attempt == 1, path  # started once
            assert len(rt.watcher_log_matches(rf"\bstarted job_id={vertex.id} ")) == 1, path


def test_a_start_in_flight_when_the_core_is_killed_ends_stuck(rt):
    watcher_dir = rt.state_dir / "watcher"
    failpoints.arm(watcher_dir, PID_REPORT, "pause")
    rt.start_core()
    execution_id = rt.run("crash_serial")
    failpoints.wait_hit(watcher_dir, PID_REPORT, timeout=30)
    c1 = rt.vertices(execution_id)["/crash_serial/c1"]
    assert c1.phase == ph.STARTING  # the watcher runs the script; the PID has not come back
    rt.kill_core()
    rt.start_core()
    c1 = rt.wait_vertex(execution_id, "/crash_serial/c1", {ph.STUCK})
    assert c1.reason == ("the core restarted while starting this job: whether the script was "
                         "started is unknown")
    failed = wait_for(lambda: [e for e in rt.events(ev.failed_event_name(ev.START_JOB))
                               if e.properties["target_job_id"] == c1.id],
                      timeout=30, what="start.job.job.tengine.failed.tengined to come back",
                      interval=POLL)
    assert len(failed) == 1 and failed[0].level == "error"
    rt.wait_core_log(rf"marked stuck target=vertex id={c1.id}")

    # The start goes on on the host; its PID has no one to go to, its result arrives late.
    failpoints.disarm(watcher_dir, PID_REPORT)
    failpoints.release(watcher_dir, PID_REPORT)
    rt.wait_watcher_log(rf"pid not reported job_id={c1.id}")
    c1 = rt.wait_vertex(execution_id, "/crash_serial/c1", {ph.STUCK},
                        check=lambda v: v.late_result is not None)
    assert c1.late_result["exit_status"] == 0
    late = wait_for(lambda: [e for e in rt.events(ev.LATE_RESULT_JOB)
                             if e.properties["target_job_id"] == c1.id],
                    timeout=30, what="the late result warning to come back", interval=POLL)
    assert len(late) == 1 and late[0].level == "warn"
    v = rt.vertices(execution_id)
    assert v["/crash_serial/c2"].phase == ph.INITIALIZED  # nothing moves on by itself
    assert rt.execution(execution_id).phase == ph.RUNNING


def test_a_clean_stop_mid_jobnet_then_a_restart_finishes_it(rt):
    rt.start_core()
    execution_id = rt.run("crash_serial")
    rt.wait_vertex(execution_id, "/crash_serial/c1", {ph.RUNNING})
    assert rt.stop_core() == 0
    rt.wait_core_log(r"core stopped pid=\d+ driver_commands_left=0")
    rt.start_core()
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    assert not rt.core_log_matches("marked stuck")


def test_a_clean_stop_waits_for_a_start_in_flight_and_settles_its_outcome(rt):
    watcher_dir = rt.state_dir / "watcher"
    failpoints.arm(watcher_dir, PID_REPORT, "pause")
    core = rt.start_core()
    execution_id = rt.run("crash_serial")
    failpoints.wait_hit(watcher_dir, PID_REPORT, timeout=30)
    core.signal(signal.SIGTERM)
    rt.wait_core_log(rf"core stopping pid={core.pid}")
    rt.wait_core_log(r"consumer stopped")
    failpoints.disarm(watcher_dir, PID_REPORT)
    failpoints.release(watcher_dir, PID_REPORT)  # the start completes during the shutdown
    assert core.wait(30) == 0
    rt.wait_core_log(rf"outcome settled at shutdown event={ev.STARTED_PROCESS_JOB}")
    rt.wait_core_log(rf"core stopped pid={core.pid} driver_commands_left=0")
    rt.start_core()
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    assert not rt.core_log_matches("marked stuck")


def test_outbox_rows_written_while_no_core_ran_are_published_by_the_next_core(rt):
    done = rt.cli("run", "crash_serial", env={"TENGINE_AMQP_URL": "amqp://g:g@127.0.0.1:1/%2F",
                                              "TENGINE_PUBLISH_RETRY_COUNT": "0"})
    execution_id = done.stdout.strip()
    assert "not yet published" in done.stderr
    assert rt.execution(execution_id).phase == ph.INITIALIZED
    rt.start_core()
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
