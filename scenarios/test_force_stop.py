"""S12-S21: force stop (強制停止) of a running job, jobnet or root jobnet (S12), with the queue
going down during the stop (S13, S14), racing the script's normal end (S15), with the job host
down (S16) or its ssh link cut around the kill (S17-S20), and a timeout that force-stops the
execution (S21).

Each ssh cut is made twice (parametrized): refused/reset (`how="cut"`) and a silent black hole
(`how="blackhole"`, noticed by the core's ssh keepalive probe). The kill goes out when a person
presses 強制停止 on the console (`run.stop_job(job)`: `POST /api/jobs/{id}/stop`).
"""

import pytest

from harness.faults import LINK_CUTS
from harness.logs import ssh_attempt
from tengine_min.model.phases import ERROR, TIMEOUT, USER_STOP, human_label

STOPPED = human_label(ERROR, USER_STOP)  # エラー終了(強制停止済), the console's own label
TIMED_OUT = human_label(ERROR, TIMEOUT)  # エラー終了(タイムアウト強制停止済)


# --- S12: force stop of a running job, jobnet or root jobnet --------------------------------------


def stoppable_definition(server: str) -> str:
    """/fs: a sub-jobnet `sub` whose long job `j1` is followed by `j2`, with a finally of its own
    (`sf`); then `after`; and the root's finally `rf`."""
    return f"""\
jobnets:
  - jobnet: fs
    server: {server}
    credential: {server}
    children:
      - jobnet: sub
        to: after
        children:
          - job: j1
            script: sleep 60
            to: j2
          - job: j2
            script: echo j2
          - finally:
              children:
                - job: sf
                  script: echo sf
      - job: after
        script: echo after
      - finally:
          children:
            - job: rf
              script: echo rf
"""


def stop(run, target: str) -> str:
    """Force stop `target` ("job", "jobnet", "root") as the console's buttons do; its path."""
    if target == "job":
        job = run.job("/fs/sub/j1")
        run.stop_job(job)
        return job.name_path
    if target == "jobnet":
        sub = run.job("/fs/sub")
        run.stop_jobnet(sub)
        return sub.name_path
    run.stop_execution()  # the root: 強制停止
    return "/fs"


@pytest.mark.scenario("S12")
@pytest.mark.parametrize("target", ["job", "jobnet", "root"])
def test_force_stop_of_a_running_job_jobnet_or_root(cluster, target):
    s1 = cluster.server("s1")
    cluster.load(stoppable_definition(s1.name), "fs.yaml")
    run = cluster.run("fs")
    job = run.wait_for_job("/fs/sub/j1", phase="running")
    stopped_path = stop(run, target)
    run.wait_for_execution("error")  # everything has settled: the jobnets end after the job
    job = run.job("/fs/sub/j1")
    assert (job.phase, job.stop_reason, job.label) == ("error", "user_stop", STOPPED), job
    assert job.exit_status is None and job.signal == "KILL", job
    stopped = run.job(stopped_path)
    assert (stopped.phase, stopped.label) == ("error", STOPPED), stopped
    assert run.job("/fs/sub/j2").phase == "initialized"  # nothing after a stopped job starts
    assert run.job("/fs/after").phase == "initialized"
    # A stopped jobnet skips its own finally; a finally above what was stopped runs.
    finally_phases = {"job": ("success", "success"), "jobnet": ("initialized", "success"),
                      "root": ("initialized", "initialized")}[target]
    assert (run.job("/fs/sub/finally/sf").phase,
            run.job("/fs/finally/rf").phase) == finally_phases
    if target != "root":  # the root itself was not stopped: plain error
        root = run.job("/fs")
        assert (root.phase, root.label) == ("error", "エラー終了"), root
    log = s1.watcher_log(job)
    assert log.has("kill requested") and log.has("kill sent"), log
    assert log.lacks("nothing to kill"), log
    stop_event = {"job": "stop.job.job.tengine", "jobnet": "stop.jobnet.job.tengine",
                  "root": "stop.execution.job.tengine"}[target]
    assert run.wait_for_event(stop_event)
    assert run.wait_for_event("error.job.job.tengine", job=job)
    assert run.wait_for_event("error.execution.job.tengine")


# --- S13, S14: the queue goes down during the force stop ------------------------------------------


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


# --- S15: the script ends normally as the force stop arrives --------------------------------------


@pytest.mark.scenario("S15")
@pytest.mark.cluster(heartbeat_expiry=30)  # the held result must not look like a lost watcher
def test_script_ends_normally_just_as_the_force_stop_arrives(cluster):
    s1 = cluster.server("s1")
    cluster.define_job("race", s1, "sleep 2")
    # The finished event is held on the host, so the core still sees the job running when the
    # stop arrives; the kill is held in the core until the script has really ended.
    with cluster.faults.failpoint(s1, "watcher.before_publish_finished") as finished, \
            cluster.faults.failpoint(cluster.core, "driver.before_kill") as kill:
        run = cluster.run("race")
        job = run.wait_for_job("/race/j1", phase="running")
        run.stop_job(job)
        kill.wait_hit()
        finished.wait_hit()  # the script has ended normally, its result is recorded
        kill.release()
        s1.wait_watcher_log(job, "nothing to kill")
        finished.release()
    job = run.wait_for_job("/race/j1", phase="success")
    assert job.exit_status == 0 and job.signal is None, job
    log = s1.watcher_log(job)
    assert log.has("finished") and log.has("nothing to kill"), log
    assert log.lacks("kill sent"), log
    assert run.wait_for_event("success.job.job.tengine", job=job)


# --- S16-S20: the job host down, or its ssh link cut around the kill ------------------------------


# The host monitor probes sshd through the same ssh link, so a cut that lasts 3 checks is "host
# down" for the core (docs/decisions.md). The rows below are cuts shorter than that: checks every
# 15 s (the watchers' heartbeat interval too, hence the expiry) leave the black hole's 20 s
# keepalive bound room, and the evidence shows only what the row is about.
SHORT_CUT = dict(heartbeat_interval=15, heartbeat_expiry=60)


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
        cluster.core_log.wait_for(ssh_attempt(job, 1, 3, "kill") + r".*error_class=CannotConnect",
                                  timeout=30)
    log = s1.watcher_log(job)
    assert log.lacks("kill requested"), log  # nothing at first
    cut.end()  # within the retry interval
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60)
    assert (job.stop_reason, job.label, job.signal) == ("user_stop", STOPPED, "KILL"), job
    log = s1.watcher_log(job)
    assert log.count("kill requested") == 1 and log.has("kill sent"), log  # then the kill
    # The core logs the retry's outcome once the kill's answer is in (after the host's log).
    cluster.core_log.wait_for(ssh_attempt(job, "[23]", 3, "kill") + " outcome=ok")


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
        cluster.core_log.wait_for(ssh_attempt(job, 1, 3, "kill")
                                  + r".*error_class=ConnectionLost", timeout=40)
    cut.end()  # the retry repeats the kill
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert (job.stop_reason, job.label, job.signal) == ("user_stop", STOPPED, "KILL"), job
    log = s1.wait_watcher_log(job, "duplicate kill ignored")  # recognised: already stopped
    assert log.count("kill sent") == 1 and log.count("kill requested") == 2, log
    # The core logs the retry's outcome once the kill's answer is in (after the host's log).
    cluster.core_log.wait_for(ssh_attempt(job, "[23]", 3, "kill") + " outcome=ok")
    assert run.wait_for_event("error.job.job.tengine", job=job)


# --- S21: a timeout force-stops the execution -----------------------------------------------------


@pytest.mark.scenario("S21")
def test_a_job_running_past_the_timeout_is_force_stopped(cluster):
    """強制停止設定 is in minutes (Tengine's unit, the only one the console takes): the test waits
    the real minute. See docs/decisions.md, S21."""
    s1 = cluster.server("s1")
    cluster.define_job("slow", s1, "sleep 300")
    run = cluster.run("slow", timeout_min=1)
    job = run.wait_for_job("/slow/j1", phase="running")
    job = run.wait_for_job("/slow/j1", phase="error", timeout=120)
    assert (job.stop_reason, job.label) == ("timeout", TIMED_OUT), job
    assert job.exit_status is None and job.signal == "KILL", job
    execution = run.wait_for_execution("error")
    assert execution["stop_reason"] == "timeout", execution
    assert run.job("/slow").label == TIMED_OUT
    log = s1.watcher_log(job)
    assert log.has("kill requested") and log.has("kill sent"), log
    events = run.wait_for_event("error.execution.job.tengine")  # the last one to come
    stops = events.of_type("stop.execution.job.tengine")
    assert [e["properties"].get("stop_reason") for e in stops] == ["timeout"], stops
    assert events.has("error.job.job.tengine", job=job)
