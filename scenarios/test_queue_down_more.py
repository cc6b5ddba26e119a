"""S06, S13, S14: the queue (RabbitMQ) stays down past the watcher's retries during a long job
(S06), or goes down during a force stop and stays down (S13) or comes back (S14).
How the core still finds out is decided in docs/decisions.md (S06, S13)."""

import pytest

STOPPED = "エラー終了(強制停止済)"
@pytest.mark.scenario("S06")
@pytest.mark.cluster(publish_retry_count=3, publish_retry_interval=0.5, heartbeat_expiry=4)
def test_queue_down_during_a_long_job_past_all_retries(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script=s1.install_gated_job())
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.stop_broker()
    s1.wait_watcher_log(job, "disconnected")
    s1.let_the_script_end()  # while the queue is down
    s1.wait_watcher_log(job, "gave up", timeout=30)  # 3 x 0.5 s in vain
    s1.wait_watcher_log(job, "result not published")
    assert run.job("/long_job/j1").phase == "running"  # the core cannot know yet
    cluster.faults.start_broker()
    # Heartbeat expiry decides the phase; reconciliation then records the real result.
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60)
    assert job.reason.startswith("watcher lost: no heartbeat for "), job.reason
    assert run.wait_for_event("expired.job.heartbeat.tengine", job=job)
    assert run.wait_for_event("error.job.job.tengine", job=job)
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60,
                           check=lambda j: j.late_result is not None)
    late = job.late_result
    assert (late["exit_status"], late["source"]) == (0, "reconciliation"), late
    [warning] = run.wait_for_event("late_result.job.job.tengine", job=job) \
        .of_type("late_result.job.job.tengine")
    assert warning["level"] == "warn", warning
    log = s1.watcher_log(job)
    assert log.has("finished") and log.has("publish failed"), log
    assert log.count("publish failed") == 4, log  # the first try and 3 retries, then gave up
    run.wait_for_execution("error")


def stop_with_the_queue_going_down(cluster, s1, run):
    """Force stop the running job; the queue goes down while the kill is on its way (the core
    holds it at `driver.before_kill` until the watcher noticed the queue was gone)."""
    job = run.wait_for_job("/long_job/j1", phase="running")
    with cluster.faults.failpoint(cluster.core, "driver.before_kill") as kill:
        run.stop_job(job)
        kill.wait_hit()
        cluster.faults.stop_broker()
        s1.wait_watcher_log(job, "disconnected")
        kill.release()
    s1.wait_watcher_log(job, "kill sent")
    s1.wait_watcher_log(job, "publish failed")  # the killed job's result cannot be sent
    return job


@pytest.mark.scenario("S13")
@pytest.mark.cluster(publish_retry_count=3, publish_retry_interval=0.5, heartbeat_expiry=4)
def test_queue_down_during_the_force_stop_past_the_retries(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 60")
    job = stop_with_the_queue_going_down(cluster, s1, run)
    s1.wait_watcher_log(job, "gave up", timeout=30)
    assert run.job("/long_job/j1").phase == "dying"  # 強制停止中: the core waits to hear
    cluster.faults.start_broker()
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60,
                           check=lambda j: j.late_result is not None)
    # The execution list: stopped (強制停止済), the watcher failed to report it, the kill found.
    assert (job.stop_reason, job.label) == ("user_stop", STOPPED), job
    assert job.reason.startswith("watcher lost: no heartbeat for "), job.reason
    assert "while it was being stopped" in job.reason, job.reason
    late = job.late_result
    assert (late["signal"], late["source"]) == ("KILL", "reconciliation"), late
    assert late["result"]["killed"] is True, late
    reconciled = run.wait_for_event("reconciled.process.job.tengine", job=job) \
        .of_type("reconciled.process.job.tengine")
    assert "never managed to publish" in reconciled[0]["properties"]["message"], reconciled
    log = s1.watcher_log(job)
    assert log.has("disconnected") and log.has("kill sent"), log
    assert log.has("gave up") and log.has("result not published"), log  # failed to report


@pytest.mark.scenario("S14")
@pytest.mark.cluster(publish_retry_count=60, publish_retry_interval=0.5, heartbeat_expiry=10)
def test_queue_down_during_the_force_stop_back_within_the_retries(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 60")
    job = stop_with_the_queue_going_down(cluster, s1, run)
    cluster.faults.start_broker()  # within the retries (60 x 0.5 s)
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60)
    assert (job.stop_reason, job.label) == ("user_stop", STOPPED), job
    assert job.exit_status is None and job.signal == "KILL", job
    assert job.late_result is None, job  # its own result decided it
    log = s1.watcher_log(job)
    assert log.has("disconnected") and log.has("kill sent") and log.has("reconnected"), log
    assert log.lacks("gave up"), log
    events = run.wait_for_event("error.job.job.tengine", job=job)
    assert events.has("finished.process.job.tengine", job=job), events.types()
    assert not events.has("expired.job.heartbeat.tengine", job=job), events.types()
