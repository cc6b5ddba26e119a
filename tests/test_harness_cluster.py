"""The harness's cluster for real (root, rabbitmq-server, sshd), one for the module: failpoints
on a server and in the core are hit and released; process faults (pause/resume, a restart of
the core); the bus recorder sees every event without taking one from the core; the watcher log
read over ssh (host key pinned) is the file on the disk; the ssh link is the core's only way to
the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.cluster import Cluster
from harness.history import Fault, Operation
from harness.logs import WatcherLog
from harness.plugin import _require_environment
from harness.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    _require_environment()
    with Cluster(servers=1, settings={"heartbeat_expiry": 10}) as the_cluster:
        yield the_cluster


def test_a_failpoint_on_a_server_pauses_the_watcher_until_released(cluster):
    s1 = cluster.server("s1")
    with cluster.faults.failpoint(s1, "watcher.before_pid_report") as point:
        run = cluster.run("fp_server", server=s1, script="sleep 30")
        point.wait_hit()
        job = run.job("/fp_server/j1")
        assert job.phase == "starting"  # the PID has not come back: the watcher is held
        log = s1.watcher_log(job)
        assert log.has("started") and log.lacks("pid reported"), log
        point.release()
        job = run.wait_for_job("/fp_server/j1", phase="running")
    assert s1.watcher_log(job).has("pid reported")
    assert len(point.hits()) == 1
    cluster.console.post(f"/api/jobs/{job.id}/stop")
    run.wait_for_job("/fp_server/j1", phase="error")


def test_a_failpoint_in_the_core_pauses_the_driver_until_released(cluster):
    s1 = cluster.server("s1")
    with cluster.faults.failpoint(cluster.core, "driver.after_connect") as point:
        run = cluster.run("fp_core", server=s1, script="true")
        point.wait_hit()
        job = run.job("/fp_core/j1")
        assert job.phase == "starting"
        assert s1.watcher_log(job).lacks("run requested")  # connected, nothing sent yet
        point.release()
        run.wait_for_job("/fp_core/j1", phase="success")
    assert s1.watcher_log(job).has("run requested")


def test_a_paused_core_handles_nothing_until_resumed_and_the_recorder_takes_nothing(cluster):
    s1 = cluster.server("s1")
    cluster.define_job("paused", s1, "true")
    cluster.faults.pause(cluster.core)
    try:
        run = cluster.run("paused")
        # The console published the start; the recorder has a copy; the core holds none.
        wait_for(lambda: [e for e in cluster.recorder.received("start.execution.job.tengine")
                          if e["properties"].get("execution_id") == run.execution_id],
                 timeout=10, what="the recorder to see the start")
        assert run.execution()["phase"] == "initialized"
    finally:
        cluster.faults.resume(cluster.core)
    run.wait_for_job("/paused/j1", phase="success")
    run.wait_for_execution("success")
    handled = run.events().types()
    assert "start.execution.job.tengine" in handled and "success.job.job.tengine" in handled


def test_a_watchdog_and_a_whole_server_paused_then_resumed(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("hang", server=s1, script="sleep 30")
    job = run.wait_for_job("/hang/j1", phase="running")
    watchdog = s1.watchdog(job)

    def state() -> str:
        return s1.host.run(["ps", "-o", "stat=", "-p", str(watchdog.pid)]).stdout.strip()

    with cluster.faults.pause(watchdog):
        assert state().startswith("T"), state()  # stopped
    assert not state().startswith("T"), state()
    with cluster.faults.pause(s1):  # hung: every process of it stopped, sshd too
        assert state().startswith("T"), state()
        s1.log.read()
        assert "hung" in s1.log.source  # read from its disk, saying why
    s1.log.read()
    assert s1.log.source.startswith("ssh ")
    kinds = [f.kind for f in cluster.history.entries(Fault) if f.step == "end"
             and f.stage == "ok"]
    assert kinds[-2:] == ["process-pause", "host-pause"]
    cluster.console.post(f"/api/jobs/{job.id}/stop")
    run.wait_for_job("/hang/j1", phase="error")


def test_a_status_change_and_a_rerun_on_the_console_are_operations_of_the_history(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("rerun_me", server=s1, script='test -e "$HOME/go"')  # fails at first
    path = "/rerun_me/j1"
    job = run.wait_for_job(path, phase="error")
    run.change_status(job, "success")
    wait_for(lambda: run.job(path).phase == "success", timeout=30, what=f"{path} success",
             history=cluster.history)
    s1.let_the_script_end()  # $HOME/go exists now: the script passes
    try:
        run.rerun(run.job(path), spot=True)
        wait_for(lambda: s1.watcher_log(job).count("finished") == 2, timeout=30,
                 what="the rerun to finish", history=cluster.history)
        assert run.wait_for_job(path, phase="success").exit_status == 0
    finally:
        s1.host.run('rm -f "$HOME/go"', user=s1.host.user, check=True)
    ops = [(o.action, o.path, o.value) for o in cluster.history.entries(Operation)
           if o.execution == run.execution_id]
    assert ops == [("run", "rerun_me", ""), ("status_change", path, "success"),
                   ("rerun", path, "only")]


def test_a_killed_core_is_restarted_and_the_cluster_goes_on(cluster):
    old = cluster.core.pid
    cluster.faults.restart(cluster.core)
    assert cluster.core.pid != old and cluster.core.alive()
    run = cluster.run("after_restart", server=cluster.server("s1"), script="true")
    run.wait_for_job("/after_restart/j1", phase="success")
    kills = [(f.step, f.stage) for f in cluster.history.entries(Fault)
             if f.kind == "process-kill" and f.params == {"signal": "SIGKILL", "pid": old}]
    assert ("start", "ok") in kills and ("end", "ok") in kills  # killed, then started again


def test_a_killed_console_comes_back_on_its_port_and_answers_the_same_client(cluster):
    client, old = cluster.console, cluster.console_process.pid
    with cluster.faults.kill(cluster.console_process) as killed:
        assert killed.name == "console killed" and not client.answers()
    assert cluster.console is client and client.answers()
    assert cluster.console_process.pid != old
    run = cluster.run("after_console", server=cluster.server("s1"), script="true")
    run.wait_for_job("/after_console/j1", phase="success")


def test_the_watcher_log_read_over_ssh_is_the_file_on_the_servers_disk(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("log_read", server=s1, script="true")
    job = run.wait_for_job("/log_read/j1", phase="success")
    s1.wait_watcher_log(job, "watchdog exiting")
    over_ssh = s1.log.read()
    assert s1.log.source.startswith("ssh tengine-test@")
    on_disk = (s1.state_dir_on_disk / "log" / "watcher.log").read_text().splitlines()
    assert over_ssh == on_disk[:len(over_ssh)] and over_ssh


def test_the_ssh_link_is_the_cores_only_way_to_the_server(cluster):
    s1 = cluster.server("s1")
    with cluster.faults.cut(s1.ssh) as cut:
        run = cluster.run("link_cut", server=s1, script="true")
        job = run.wait_for_job("/link_cut/j1", phase="error")
        assert "cannot connect" in job.reason, job.reason
    run = cluster.run("link_cut", server=s1, script="true")
    run.wait_for_job("/link_cut/j1", phase="success")
    steps = [(f.kind, f.target, f.step, f.stage) for f in cluster.history.entries(Fault)
             if f.id == cut.id]
    assert ("link-cut", "ssh-s1", "start", "ok") in steps  # cut: refused, live ones closed
    assert ("link-cut", "ssh-s1", "end", "ok") in steps  # healed


def test_the_watcher_log_reader_refuses_a_server_whose_host_key_is_not_pinned(cluster, tmp_path):
    s1 = cluster.server("s1")
    other = tmp_path / "known_hosts"
    other.write_text(f"{s1.host.address} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIHcQk6sJ1rI0kN2Jk0JmXb0dyVgO8Zb7m3k6m2m1y5bA\n")
    with pytest.raises(AssertionError, match=r"cannot read the watcher log of s1: .*ssh failed"):
        WatcherLog(s1.host, other).read()
