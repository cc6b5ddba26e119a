"""S12, S15, S21: force stop of a running job, jobnet or root jobnet; a stop racing the script's
normal end; a timeout that force-stops the execution."""

import pytest

STOPPED = "エラー終了(強制停止済)"
TIMED_OUT = "エラー終了(タイムアウト強制停止済)"


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
