"""S01-S04: the ssh link to the job host is cut while starting a job.

Each cut is made twice (parametrized): refused/reset (`how="cut"`: the proxy closes the
connection) and a silent black hole (`how="blackhole"`: nothing arrives, nothing closes; the
core notices through its ssh keepalive probe, 5 s + 15 s by default).
"""

import pytest

from harness.faults import LINK_CUTS
from harness.logs import ssh_attempt

# --- S01: cut after connecting, before the watcher starts -----------------------------------------


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


# --- S02-S04: cut after the command ran; cut before the request reaches the watcher ---------------


@pytest.mark.scenario("S02")
@pytest.mark.cluster(command_retry_count=0)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_after_the_command_ran_before_the_pid_returns(cluster, how):
    s1 = cluster.server("s1")
    # The script's result is held on the host until the core has decided, so that "the real
    # outcome is recorded when it becomes known" is the order the row describes.
    with cluster.faults.failpoint(s1, "watcher.before_publish_finished") as finished:
        with cluster.faults.failpoint(s1, "watcher.before_pid_report") as pid_report:
            run = cluster.run("long_job", server=s1, script="sleep 1")
            pid_report.wait_hit()  # the script runs, its PID not yet sent
            cluster.faults.cut(s1.ssh, how)
            pid_report.release()
        job = run.wait_for_job("/long_job/j1", phase="error", timeout=40)
        assert job.reason == ("connection lost after the start request was sent; "
                              "the job may be running on s1"), job.reason
        assert run.wait_for_event("error.job.job.tengine", job=job)
        finished.wait_hit()
    # The result arrives later: kept on the job as its late result, the phase unchanged.
    job = run.wait_for_job("/long_job/j1", phase="error", check=lambda j: j.late_result)
    assert job.late_result["exit_status"] == 0, job.late_result
    assert run.wait_for_event("late_result.job.job.tengine", job=job)
    log = s1.watcher_log(job)
    assert log.count("started") == 1 and log.has("finished"), log  # the job WAS executed
    assert cluster.core_log.matching(ssh_attempt(job, 1, 1, "start")
                                     + r".*error_class=ConnectionLost")


@pytest.mark.scenario("S03")
@pytest.mark.cluster(command_retry_count=2, command_retry_interval=2)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_before_the_request_reaches_the_watcher_restored_within_the_retries(
        cluster, how):
    s1 = cluster.server("s1")
    with cluster.faults.failpoint(cluster.core, "driver.after_connect") as fp:
        run = cluster.run("test_job", server=s1)
        job = run.job("/test_job/j1")
        fp.wait_hit()  # connected, nothing sent yet
        cut = cluster.faults.cut(s1.ssh, how)
        fp.release()
        cluster.core_log.wait_for(ssh_attempt(job, 1, 3, "start")
                                  + r".*error_class=CannotConnect", timeout=30)
    cut.end()  # within the retries
    job = run.wait_for_job("/test_job/j1", phase="success", timeout=60)
    log = s1.watcher_log(job)
    assert log.count("run requested") == 1 and log.count("started") == 1, log  # once
    assert cluster.core_log.matching(rf"ssh retry in .* job_id={job.id} ")  # the retry
    assert cluster.core_log.matching(ssh_attempt(job, "[23]", 3) + "outcome=ok")
    assert run.wait_for_event("success.job.job.tengine", job=job)


@pytest.mark.scenario("S04")
@pytest.mark.cluster(command_retry_count=2, command_retry_interval=2, heartbeat_expiry=30)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_after_the_command_ran_restored_within_the_retries(cluster, how):
    s1 = cluster.server("s1")
    # The result is held until the job runs (heartbeats stop meanwhile: hence the expiry).
    with cluster.faults.failpoint(s1, "watcher.before_publish_finished") as finished:
        with cluster.faults.failpoint(s1, "watcher.before_pid_report") as pid_report:
            run = cluster.run("long_job", server=s1, script="sleep 1")
            job = run.job("/long_job/j1")
            pid_report.wait_hit()  # the script runs, its PID not yet sent
            cut = cluster.faults.cut(s1.ssh, how)
            pid_report.release()
            cluster.core_log.wait_for(ssh_attempt(job, 1, 3, "start")
                                      + r".*error_class=ConnectionLost", timeout=40)
        cut.end()  # within the retries
        running = run.wait_for_job("/long_job/j1", phase="running", timeout=30)
        finished.release()
    job = run.wait_for_job("/long_job/j1", phase="success", timeout=30)
    assert job.pid == running.pid
    log = s1.watcher_log(job)
    assert log.count("started") == 1, log  # executed once
    assert log.count("run requested") == 2, log
    assert log.count("duplicate start ignored") == 1, log  # the retry, recognised
    assert cluster.core_log.matching(ssh_attempt(job, "[23]", 3) + "outcome=ok")
