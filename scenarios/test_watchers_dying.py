"""S08: the watcher process on the job host dies while the job runs."""

import pytest


@pytest.mark.scenario("S08")
@pytest.mark.cluster(heartbeat_interval=1, heartbeat_expiry=4)
def test_watchdog_killed_during_a_long_job_is_found_lost_by_monitoring(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 60")
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.kill(s1.watchdog(job))
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert "watcher lost" in job.reason, job.reason
    assert run.wait_for_event("expired.job.heartbeat.tengine", job=job)
    assert run.wait_for_event("error.job.job.tengine", job=job)  # fired with the phase change
    assert s1.watcher_log(job).lacks("finished")  # nobody reported: monitoring found it
