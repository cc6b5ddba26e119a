"""S05, S06: the queue (RabbitMQ) goes down while a long job runs, and comes back within the
watcher's retries (S05) or stays down past them (S06). How the core still finds out is decided
in docs/decisions.md (S06).
"""

import pytest

# --- S05: the queue down during a long job, back within the retries -------------------------------


@pytest.mark.scenario("S05")
@pytest.mark.cluster(publish_retry_count=60, publish_retry_interval=0.5)
def test_queue_down_during_a_long_job_and_back_within_the_retries(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 4")
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.stop_broker()
    s1.wait_watcher_log(job, "disconnected")
    s1.wait_watcher_log(job, "finished", timeout=30)  # the script ends while the queue is down
    s1.wait_watcher_log(job, "publish failed")  # the result waits in the retries
    cluster.faults.start_broker()  # within the retries (60 x 0.5 s)
    job = run.wait_for_job("/long_job/j1", phase="success", timeout=60)
    log = s1.watcher_log(job)
    assert log.has("disconnected") and log.has("reconnected"), log
    assert log.lacks("gave up"), log
    assert job.exit_status == 0
    assert run.wait_for_event("success.job.job.tengine", job=job)


# --- S06: the queue down during a long job, past all retries --------------------------------------


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
