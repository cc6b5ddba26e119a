"""S16-S20: the force stop cannot reach the job host, or its ssh link is cut around the kill.

Each ssh cut is made twice (parametrized): refused/reset (`how="cut"`) and a silent black hole
(`how="blackhole"`, noticed by the core's ssh keepalive probe). The kill goes out when a person
presses 強制停止 on the console (`run.stop_job(job)`: `POST /api/jobs/{id}/stop`).
"""

import pytest

from harness.faults import LINK_CUTS

STOPPED = "エラー終了(強制停止済)"
# The host monitor probes sshd through the same ssh link, so a cut that lasts 3 checks is "host
# down" for the core (docs/decisions.md). The rows below are cuts shorter than that: checks every
# 15 s (the watchers' heartbeat interval too, hence the expiry) leave the black hole's 20 s
# keepalive bound room, and the evidence shows only what the row is about.
SHORT_CUT = dict(heartbeat_interval=15, heartbeat_expiry=60)


def kill_attempt(job, number: int, total: int) -> str:
    """A regex for the core log line of one ssh attempt of the job's kill (docs/ssh.md)."""
    return rf"ssh attempt {number}/{total} server=s1 job_id={job.id} .*command=kill\b"


def start_long_job(cluster, s1):
    run = cluster.run("long_job", server=s1, script="sleep 60")
    return run, run.wait_for_job("/long_job/j1", phase="running")


@pytest.mark.scenario("S16")
@pytest.mark.cluster(heartbeat_interval=2, heartbeat_expiry=30)
def test_force_stop_while_the_job_host_is_down(cluster):
    """See docs/decisions.md, S16: the stop fails (cannot reach the host), then the host
    monitor ends the job error; its reason says both and it is not shown as force stopped."""
    s1 = cluster.server("s1")
    run, job = start_long_job(cluster, s1)
    cluster.faults.power_off(s1)  # the host monitor has not noticed yet (3 checks, 2 s apart)
    run.stop_job(job)
    failed = run.wait_for_event("stop_failed.job.job.tengine", job=job)
    [stop_failed] = failed.of_type("stop_failed.job.job.tengine")
    assert stop_failed["properties"]["message"].startswith("cannot connect to server s1"), \
        stop_failed
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert job.reason.startswith("server s1 went down"), job.reason
    assert "the force stop before it failed: cannot connect to server s1" in job.reason, \
        job.reason
    assert (job.label, job.stop_reason) == ("エラー終了", None), job  # it was not stopped
    assert run.wait_for_event("error.job.job.tengine", job=job)
    log = s1.watcher_log(job)  # from s1's disk: the host is down
    assert log.lacks("kill requested"), log


@pytest.mark.scenario("S17")
@pytest.mark.cluster(command_retry_count=0, **SHORT_CUT)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_before_the_kill_runs(cluster, how):
    s1 = cluster.server("s1")
    run, job = start_long_job(cluster, s1)
    with cluster.faults.failpoint(cluster.core, "driver.before_kill") as fp:
        run.stop_job(job)
        fp.wait_hit()  # connected, the kill not yet sent
        cut = cluster.faults.cut(s1.ssh, how)
        fp.release()
    assert run.wait_for_event("stop_failed.job.job.tengine", job=job, timeout=40)
    cut.end()  # the cut was short: the host answers again, the job runs on
    job = run.wait_for_job("/long_job/j1", phase="running",
                           check=lambda j: j.reason.startswith("stop failed"))
    assert job.reason.startswith("stop failed: cannot connect to server s1"), job.reason
    assert "before the command was sent" in job.reason, job.reason
    log = s1.watcher_log(job)
    assert log.lacks("kill requested") and log.lacks("kill sent"), log  # nothing arrived
    assert log.lacks("finished"), log


@pytest.mark.scenario("S18")
@pytest.mark.cluster(command_retry_count=0, **SHORT_CUT)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_after_the_kill_ran(cluster, how):
    s1 = cluster.server("s1")
    run, job = start_long_job(cluster, s1)
    # The killed script's result is held on the host until the core has heard that the kill's
    # answer was lost: the harder order (the job goes back to running first).
    with cluster.faults.failpoint(s1, "watcher.before_publish_finished") as finished:
        with cluster.faults.failpoint(s1, "watcher.after_kill") as fp:
            run.stop_job(job)
            fp.wait_hit()  # the signal is sent, its answer not yet
            cluster.faults.cut(s1.ssh, how)
            fp.release()
        assert run.wait_for_event("stop_failed.job.job.tengine", job=job, timeout=40)
        finished.wait_hit()
    job = run.wait_for_job("/long_job/j1", phase="error")
    assert (job.stop_reason, job.label, job.signal) == ("user_stop", STOPPED, "KILL"), job
    log = s1.watcher_log(job)
    assert log.has("kill requested") and log.has("kill sent"), log  # the kill was performed
    assert run.wait_for_event("error.job.job.tengine", job=job)


@pytest.mark.scenario("S19")
@pytest.mark.cluster(command_retry_count=2, command_retry_interval=2, **SHORT_CUT)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_before_the_kill_runs_restored_within_the_retry_interval(cluster, how):
    s1 = cluster.server("s1")
    run, job = start_long_job(cluster, s1)
    with cluster.faults.failpoint(cluster.core, "driver.before_kill") as fp:
        run.stop_job(job)
        fp.wait_hit()
        cut = cluster.faults.cut(s1.ssh, how)
        fp.release()
        cluster.core_log.wait_for(kill_attempt(job, 1, 3) + r".*error_class=CannotConnect",
                                  timeout=30)
    log = s1.watcher_log(job)
    assert log.lacks("kill requested"), log  # nothing at first
    cut.end()  # within the retry interval
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60)
    assert (job.stop_reason, job.label, job.signal) == ("user_stop", STOPPED, "KILL"), job
    log = s1.watcher_log(job)
    assert log.count("kill requested") == 1 and log.has("kill sent"), log  # then the kill
    # The core logs the retry's outcome once the kill's answer is in (after the host's log).
    cluster.core_log.wait_for(r"ssh attempt [23]/3 server=s1 "
                              rf"job_id={job.id} .*command=kill outcome=ok")


@pytest.mark.scenario("S20")
@pytest.mark.cluster(command_retry_count=2, command_retry_interval=2, **SHORT_CUT)
@pytest.mark.parametrize("how", LINK_CUTS)
def test_ssh_cut_after_the_kill_ran_and_the_retry_repeats_it(cluster, how):
    s1 = cluster.server("s1")
    run, job = start_long_job(cluster, s1)
    with cluster.faults.failpoint(s1, "watcher.after_kill") as fp:
        run.stop_job(job)
        fp.wait_hit()  # the signal is sent, its answer not yet
        cut = cluster.faults.cut(s1.ssh, how)
        fp.release()
        cluster.core_log.wait_for(kill_attempt(job, 1, 3) + r".*error_class=ConnectionLost",
                                  timeout=40)
    cut.end()  # the retry repeats the kill
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert (job.stop_reason, job.label, job.signal) == ("user_stop", STOPPED, "KILL"), job
    log = s1.wait_watcher_log(job, "duplicate kill ignored")  # recognised: already stopped
    assert log.count("kill sent") == 1 and log.count("kill requested") == 2, log
    # The core logs the retry's outcome once the kill's answer is in (after the host's log).
    cluster.core_log.wait_for(r"ssh attempt [23]/3 server=s1 "
                              rf"job_id={job.id} .*command=kill outcome=ok")
    assert run.wait_for_event("error.job.job.tengine", job=job)
