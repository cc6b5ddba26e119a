"""S01: the ssh link to the job host is cut while starting a job, after the core connected and
before the watcher was asked to start it; refused/reset and a silent black hole."""

import pytest

from harness.faults import LINK_CUTS


@pytest.mark.scenario("S01")
@pytest.mark.cluster(command_retry_count=0)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_after_connect_before_the_watcher_starts(cluster, how):
    s1 = cluster.server("s1")
    with cluster.faults.failpoint(cluster.core, "driver.after_connect") as fp:
        run = cluster.run("long_job", server=s1)
        fp.wait_hit()
        cluster.faults.cut(s1.ssh, how)
        fp.release()
    job = run.wait_for_job("/long_job/j1", phase="error")
    assert "cannot connect" in job.reason, job.reason
    assert "before the command was sent" in job.reason, job.reason  # so: not executed
    log = s1.watcher_log(job)
    assert log.lacks("started") and log.lacks("run requested"), log  # nothing reached s1
    assert not (s1.state_dir_on_disk / "jobs" / job.id).exists()
    assert run.wait_for_event("error.job.job.tengine", job=job)
