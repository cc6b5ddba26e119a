"""S05: the queue (RabbitMQ) goes down while a job runs and comes back within the retries."""

import pytest


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
