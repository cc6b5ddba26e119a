"""D5: the core, the queue or the network goes down while a watcher runs a job. Each case ends
in a state a person can understand, with an event, and nothing recorded is lost.

- the core is killed mid-jobnet (exactly between committing an event and acking it) and
  restarted: the jobnet finishes, no event is lost or doubled, no job runs twice;
- the broker goes down while a watcher runs (S05 looks at the watcher; here the core): the core
  notices, does not call the silent watcher lost while it cannot hear it, and hears it again;
- the job's server is cut off from the network while its watcher runs: the host monitor says so,
  and the job's real result is recorded once the server is reachable again.
"""

import pytest

from harness.observers import wait_for

def two_jobs(server: str, first_script: str) -> str:
    return (f"jobnets:\n  - jobnet: pair\n    server: {server}\n    credential: {server}\n"
            f"    children:\n      - job: j1\n        script: \"{first_script}\"\n"
            f"        to: j2\n      - job: j2\n        script: echo j2\n")


@pytest.mark.scenario("D5")
# No heartbeats: j1's finished event is then the only event on the bus while j1 runs, so the
# point below is reached exactly at it.
@pytest.mark.cluster(heartbeat_interval=0)
def test_the_core_killed_mid_jobnet_and_restarted_loses_nothing(cluster):
    s1 = cluster.server("s1")
    cluster.load(two_jobs(s1.name, s1.install_gated_job()), "pair.yaml")
    run = cluster.run("pair")
    j1 = run.wait_for_job("/pair/j1", phase="running")
    with cluster.faults.failpoint(cluster.core, "core.after_commit_before_ack") as point:
        s1.let_the_script_end()
        point.wait_hit()  # j1's result is committed, the ack of its event not yet sent
        cluster.faults.kill(cluster.core)  # returns once the core is gone
    recorded = {e["key"] for e in run.events()}
    assert run.job("/pair/j1").phase == "success"  # committed before the crash
    cluster.faults.restart(cluster.core)
    run.wait_for_execution("success")
    j1, j2 = run.job("/pair/j1"), run.job("/pair/j2")
    assert (j1.phase, j1.exit_status, j2.phase, j2.exit_status) == ("success", 0, "success", 0)
    events = run.wait_for_event("success.execution.job.tengine")
    assert recorded <= {e["key"] for e in events}, "events recorded before the crash are gone"
    for job in (j1, j2):
        assert len(events.of_type("finished.process.job.tengine").about(job)) == 1, events
        assert len(events.of_type("success.job.job.tengine").about(job)) == 1, events
        assert s1.watcher_log(job).count("started") == 1, s1.watcher_log(job)  # ran once
    assert len(events.of_type("success.execution.job.tengine")) == 1, events.types()
    # The unacked event came again to the new core, which knew it by its key.
    [finished] = events.of_type("finished.process.job.tengine").about(j1)
    cluster.core_log.wait_for(r"duplicate event ignored event=finished\.process\.job\.tengine "
                              rf"key={finished['key']}", history=cluster.history)


@pytest.mark.scenario("D5")
@pytest.mark.cluster(heartbeat_expiry=3, publish_retry_count=60, publish_retry_interval=0.5)
def test_the_broker_down_while_a_watcher_runs_the_core_waits_to_hear_it(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script=s1.install_gated_job())
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.stop_broker()
    cluster.core_log.wait_for(r"heartbeat clocks paused", history=cluster.history)
    s1.wait_watcher_log(job, "disconnected")
    s1.let_the_script_end()
    # The queue stays down longer than the expiry (8 retries x 0.5 s > 3 s): the core hears
    # nothing all that time, and must not call the watcher lost for it.
    wait_for(lambda: s1.watcher_log(job).count("publish failed") >= 8, timeout=30,
             what="8 failed publish attempts", history=cluster.history)
    assert run.job("/long_job/j1").phase == "running"
    cluster.faults.start_broker()
    job = run.wait_for_job("/long_job/j1", phase="success", timeout=60)
    assert job.exit_status == 0 and job.reason == "", job
    # The core log tells the story: clocks paused while cut off, restarted on reconnecting.
    facts = [fact for line in cluster.core_log.lines() for fact in (
        "heartbeat clocks paused", "reconnected broker=", "heartbeat clocks restarted")
        if fact in line]
    after_pause = facts[facts.index("heartbeat clocks paused") + 1:]
    assert "reconnected broker=" in after_pause, facts
    assert "heartbeat clocks restarted" in after_pause, facts
    events = run.wait_for_event("success.job.job.tengine", job=job)
    assert not events.has("expired.job.heartbeat.tengine", job=job), events.types()
    log = s1.watcher_log(job)
    assert log.has("disconnected") and log.has("reconnected") and log.lacks("gave up"), log


@pytest.mark.scenario("D5")
@pytest.mark.cluster(heartbeat_expiry=5, publish_retry_count=3, publish_retry_interval=0.5)
def test_a_server_cut_off_while_its_watcher_runs(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script=s1.install_gated_job())
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.partition(s1)  # the cable is pulled: s1 runs on, nothing reaches it or leaves it
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert job.reason.startswith("server s1 went down: no answer to 3 checks"), job.reason
    assert run.wait_for_event("expired.job.heartbeat.tengine", job=job)
    s1.let_the_script_end()  # it ends while cut off; its watcher cannot report it
    s1.wait_watcher_log(job, "result not published", timeout=30)  # read from s1's disk
    cluster.faults.heal(s1)
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=60,
                           check=lambda j: j.late_result is not None)
    late = job.late_result
    assert (late["exit_status"], late["source"]) == (0, "reconciliation"), late
    assert run.wait_for_event("late_result.job.job.tengine", job=job)
    servers = cluster.console.get("/api/events", type=r"/\.server\.tengine$/")["items"]
    types = sorted(e["event_type_name"] for e in servers)
    assert types == ["down.server.tengine", "up.server.tengine"], types  # said, and unsaid
    run.wait_for_execution("error")


@pytest.mark.scenario("D5")
@pytest.mark.cluster(heartbeat_expiry=5)
def test_only_the_cores_way_to_a_server_cut_while_its_watcher_runs(cluster):
    """The core cannot reach s1's sshd, but the watcher still reaches the queue: the host
    monitor says s1 is down for the core, and the job, whose heartbeats still arrive, runs on."""
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script=s1.install_gated_job())
    job = run.wait_for_job("/long_job/j1", phase="running")
    with cluster.faults.cut(s1.ssh):
        [down] = wait_for(lambda: server_events(cluster, "down"), timeout=30,
                          what="down.server.tengine", history=cluster.history)
        assert down["properties"]["job_ids"] == [], down  # no verdict on a job that beats
        assert down["properties"]["jobs_still_beating"] == [job.id], down
        assert run.job("/long_job/j1").phase == "running"
    wait_for(lambda: server_events(cluster, "up"), timeout=30, what="up.server.tengine",
             history=cluster.history)
    s1.let_the_script_end()
    job = run.wait_for_job("/long_job/j1", phase="success", timeout=30)
    assert job.reason == "", job
    events = run.wait_for_event("success.job.job.tengine", job=job)
    assert not events.has("expired.job.heartbeat.tengine", job=job), events.types()


def server_events(cluster, what: str) -> list:
    return cluster.console.get("/api/events", type=f"{what}.server.tengine")["items"]
