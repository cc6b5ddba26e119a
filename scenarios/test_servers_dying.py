"""S07: the job host (server) goes down while the job runs."""

import pytest


@pytest.mark.scenario("S07")
@pytest.mark.cluster(heartbeat_interval=1, heartbeat_expiry=5)
def test_the_job_host_goes_down_during_a_long_job(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 60")
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.power_off(s1)  # power off: every process of s1 dies, its cable is out
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert job.reason.startswith("server s1 went down: no answer to 3 checks"), job.reason
    assert run.wait_for_event("expired.job.heartbeat.tengine", job=job)
    assert run.wait_for_event("error.job.job.tengine", job=job)
    [down] = cluster.console.get("/api/events", type="down.server.tengine")["items"]
    assert down["level"] == "error" and down["properties"]["job_ids"] == [job.id], down
    run.wait_for_execution("error")
    log = s1.watcher_log(job)  # from s1's disk: the host is down
    assert log.has("started") and log.lacks("finished"), log
