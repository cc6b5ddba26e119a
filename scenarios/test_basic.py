"""S00, the basic course: start a virtual server, start the test job, see it end normally."""

import pytest


@pytest.mark.scenario("S00")
def test_the_test_job_ends_normally_and_fires_its_events(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("test_job", server=s1)
    job = run.wait_for_job("/test_job/j1", phase="success")
    assert job.exit_status == 0
    run.wait_for_execution("success")
    listed = cluster.console.get("/api/executions", id=run.execution_id)["items"]
    assert [e["phase"] for e in listed] == ["success"]  # on the execution list: 正常終了
    events = run.events()
    assert events.has("finished.process.job.tengine", job=job)
    assert events.has("success.job.job.tengine", job=job)
    assert events.has("success.execution.job.tengine")
    log = s1.watcher_log(job)
    assert log.has("started") and log.has("finished"), log
