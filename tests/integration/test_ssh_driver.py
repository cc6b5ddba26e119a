"""Jobs over real ssh: a namespaced host with OpenSSH's sshd, a private broker on the bridge, a
real `tengine core` whose driver uses the ssh transport (support/ssh_runtime.py). One core for the
module; every test has jobnets of its own.

What is proved: logins with a key and with a password; the exact reason of each failure (wrong
key, wrong password, unknown host name, closed port, missing / non-executable script) on the job,
in its events and on `tengine jobs`; no retry after an authentication failure and the configured
retries on a refused port (attempts counted in the core log); a start retried after sshd came
back (and an error beyond the retries); the watcher recognising a duplicate start and a
duplicate kill after a silent cut (S04, S20); a force stop while sshd is down (stop-failed
event, job still running; a second stop then works)."""

from __future__ import annotations

import re

import pytest

from harness.waiting import wait_for
from support.integration import require_integration_environment
from support.runtime import POLL
from support.ssh_runtime import SshWorld, make_key
from tengine_min.events import names as ev
from tengine_min.model import phases as ph

HOME = "/home/tengine-test"
JOB = f"{HOME}/bin/job.sh"

# name: (server, credential, script)
JOBNETS = {
    "ssh_key": ("s1", "key", f"{JOB} 0"),
    "ssh_password": ("s1", "password", f"{JOB} 0"),
    "ssh_wrong_key": ("s1", "wrong_key", f"{JOB} 0"),
    "ssh_wrong_password": ("s1_retry", "wrong_password", f"{JOB} 0"),
    "ssh_unknown_host": ("badname", "key", f"{JOB} 0"),
    "ssh_closed_port": ("closed", "key", f"{JOB} 0"),
    "ssh_closed_port_retry": ("closed_retry", "key", f"{JOB} 0"),
    "ssh_missing": ("s1", "key", f"{HOME}/bin/no_such_script.sh"),
    "ssh_not_executable": ("s1", "key", f"{HOME}/bin/not_executable.sh"),
    "ssh_sshd_back": ("s1_retry", "key", f"{JOB} 0"),
    "ssh_sshd_gone": ("s1_retry", "key", f"{JOB} 0"),
    "ssh_duplicate_start": ("s1_retry", "key", f"{JOB} 4"),
    "ssh_duplicate_kill": ("s1_retry", "key", f"{JOB} 60"),
    "ssh_stop_failed": ("s1", "key", f"{JOB} 60"),
}


def definitions() -> str:
    lines = ["jobnets:"]
    for name, (server, credential, script) in JOBNETS.items():
        lines += [f"  - jobnet: {name}", f"    server: {server}",
                  f"    credential: {credential}", "    children:", "      - job: j",
                  f"        script: {script}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_integration_environment()  # before anything is made (root, rabbitmq; or skip)
    world = SshWorld(tmp_path_factory.mktemp("ssh"))
    try:
        wrong_key = make_key(world.rt.root / "wrong_key")
        world.write_resources(wrong_key)
        world.rt.load(world.rt.definition("ssh.yaml", definitions()))
        world.rt.start_core()
        yield world
    finally:
        world.close()


def run_job(world: SshWorld, jobnet: str):
    """Start `jobnet`; (execution id, the job's vertex row)."""
    execution_id = world.rt.run(jobnet)
    return execution_id, world.rt.vertices(execution_id)[f"/{jobnet}/j"]


def ended(world: SshWorld, execution_id: str, jobnet: str, phase: str):
    execution = world.rt.wait_execution(execution_id, timeout=60)
    job = world.rt.vertices(execution_id)[f"/{jobnet}/j"]
    assert (execution.phase, job.phase) == (phase, phase), job.reason
    return job


def error_event(world: SshWorld, job_id: str):
    found = [e for e in world.rt.events(ev.ERROR_JOB)
             if e.properties.get("target_job_id") == job_id]
    assert len(found) == 1, found
    return found[0]


def attempts(world: SshWorld, job_id: str, command: str = "start") -> list[str]:
    return world.rt.core_log_matches(rf"ssh attempt \d+/\d+ server=\S+ job_id={job_id} "
                                     rf".*command={command}\b")


def numbers(lines: list[str]) -> list[str]:
    """`2/4` of each `ssh attempt 2/4 ...` line."""
    return [re.search(r"ssh attempt (\d+/\d+) ", line).group(1) for line in lines]


def test_a_job_runs_over_ssh_with_a_key_and_with_a_password(world):
    for jobnet in ("ssh_key", "ssh_password"):
        execution_id, job = run_job(world, jobnet)
        done = ended(world, execution_id, jobnet, ph.SUCCESS)
        assert done.exit_status == 0 and done.pid is not None
        world.wait_watcher_log(rf"started job_id={job.id} pid={done.pid}\b")
        assert [line for line in attempts(world, job.id) if "outcome=ok" in line]
    assert "Accepted publickey for tengine-test" in world.host.sshd.log_file.read_text()
    assert "Accepted password for tengine-test" in world.host.sshd.log_file.read_text()


@pytest.mark.parametrize("jobnet, reason", [
    ("ssh_wrong_key", "authentication failed for credential wrong_key on server s1"),
    ("ssh_wrong_password",
     "authentication failed for credential wrong_password on server s1_retry"),
    ("ssh_unknown_host", "unknown host name for server badname: bad.invalid"),
    ("ssh_closed_port", "cannot connect to server closed ({address}:2222): connection refused"),
])
def test_each_failure_to_start_says_why(world, jobnet, reason):
    reason = reason.format(address=world.host.address)
    execution_id, job = run_job(world, jobnet)
    failed = ended(world, execution_id, jobnet, ph.ERROR)
    assert failed.reason == reason
    assert error_event(world, job.id).properties["message"] == reason
    start_failed = [e for e in world.rt.events(ev.START_FAILED_JOB)
                    if e.properties.get("target_job_id") == job.id]
    assert [e.properties["message"] for e in start_failed] == [reason]
    assert f"reason={reason}" in world.rt.cli("jobs", execution_id).stdout
    # One attempt each; the wrong password's server allows 3 retries and none is made.
    assert len(attempts(world, job.id)) == 1
    assert world.rt.core_log_matches(rf"ssh gave up after 1 attempt server=\S+ job_id={job.id}")
    assert not world.watcher_log_lines(rf"job_id={job.id}")  # nothing reached the watcher


def test_a_refused_port_is_retried_as_configured(world):
    execution_id, job = run_job(world, "ssh_closed_port_retry")
    failed = ended(world, execution_id, "ssh_closed_port_retry", ph.ERROR)
    assert failed.reason == (f"cannot connect to server closed_retry "
                             f"({world.host.address}:2222): connection refused")
    tried = attempts(world, job.id)
    assert numbers(tried) == ["1/3", "2/3", "3/3"]
    assert all('error="connection refused"' in line for line in tried)
    assert len(world.rt.core_log_matches(rf"ssh retry in 0\.2s server=closed_retry "
                                         rf"job_id={job.id}")) == 2
    assert world.rt.core_log_matches(rf"ssh gave up after 3 attempts server=closed_retry "
                                     rf"job_id={job.id}")


def test_missing_and_non_executable_scripts_fail_with_the_hosts_reason(world):
    for jobnet, reason in (("ssh_missing", f"script not found on s1: {HOME}/bin/no_such_script.sh"),
                           ("ssh_not_executable",
                            f"script not executable on s1: {HOME}/bin/not_executable.sh")):
        execution_id, job = run_job(world, jobnet)
        failed = ended(world, execution_id, jobnet, ph.ERROR)
        assert failed.reason == reason
        assert error_event(world, job.id).properties["message"] == reason
        world.wait_watcher_log(rf"spawn failed job_id={job.id} ")


def test_a_start_is_retried_until_sshd_is_back_and_fails_beyond_the_retries(world):
    world.stop_sshd()
    try:
        execution_id, job = run_job(world, "ssh_sshd_back")
        world.rt.wait_core_log(rf"ssh attempt 1/4 server=s1_retry job_id={job.id} .*"
                               rf'error="connection refused"', timeout=20)
        world.start_sshd()
        done = ended(world, execution_id, "ssh_sshd_back", ph.SUCCESS)
        assert done.pid is not None
        assert [line for line in attempts(world, job.id) if "outcome=ok" in line]
        world.wait_watcher_log(rf"started job_id={job.id} ")

        world.stop_sshd()
        execution_id, job = run_job(world, "ssh_sshd_gone")
        failed = ended(world, execution_id, "ssh_sshd_gone", ph.ERROR)
        assert failed.reason == (f"cannot connect to server s1_retry "
                                 f"({world.host.address}:22): connection refused")
        assert len(attempts(world, job.id)) == 4
        assert world.rt.core_log_matches(rf"ssh gave up after 4 attempts server=s1_retry "
                                         rf"job_id={job.id}")
    finally:
        if not world.sshd_running():
            world.start_sshd()


def test_a_start_cut_before_the_pid_returns_is_retried_and_recognised_as_a_duplicate(world):
    """S04: the watcher ran the script and is about to print the PID when the link goes
    silent (a black hole); the core notices within the keepalive bound, retries after the link
    is back, and the watcher answers the second request with the same PID."""
    world.arm_watcher_failpoint("watcher.before_pid_report")
    execution_id, job = run_job(world, "ssh_duplicate_start")
    world.wait_watcher_failpoint("watcher.before_pid_report")
    world.host.partition()
    try:
        lost = world.rt.wait_core_log(rf"ssh attempt 1/4 server=s1_retry job_id={job.id} .*"
                                      rf"error_class=ConnectionLost", timeout=15)
        assert "no answer to a keepalive within 1.5 s" in lost[0]
    finally:
        world.let_watcher_go("watcher.before_pid_report")
        world.host.heal()
    # The retry gets the PID of the run that was cut: the job runs, then ends well.
    world.rt.wait_core_log(rf"ssh attempt 2/4 server=s1_retry job_id={job.id} .*outcome=ok")
    running = world.rt.wait_vertex(execution_id, "/ssh_duplicate_start/j", {ph.RUNNING})
    done = ended(world, execution_id, "ssh_duplicate_start", ph.SUCCESS)
    assert done.pid == running.pid
    started = world.wait_watcher_log(rf"started job_id={job.id} pid={done.pid}\b")
    duplicate = world.wait_watcher_log(rf"duplicate start ignored job_id={job.id} "
                                       rf"pid={done.pid}\b")
    assert len(started) == 1 and len(duplicate) == 1
    assert numbers(attempts(world, job.id)) == ["1/4", "2/4"]


def test_a_kill_cut_after_it_ran_is_retried_and_recognised_as_a_duplicate(world):
    """S20: the kill ran (signals sent) and the link goes silent before its answer; the retry
    reaches the watcher, which says the job is already stopped."""
    execution_id, job = run_job(world, "ssh_duplicate_kill")
    running = world.rt.wait_vertex(execution_id, "/ssh_duplicate_kill/j", {ph.RUNNING})
    world.arm_watcher_failpoint("watcher.after_kill")
    world.rt.cli("stop", job.id)
    world.wait_watcher_failpoint("watcher.after_kill")
    world.host.partition()
    try:
        world.rt.wait_core_log(rf"ssh attempt 1/4 server=s1_retry job_id={job.id} .*"
                               rf"command=kill .*error_class=ConnectionLost", timeout=15)
    finally:
        world.let_watcher_go("watcher.after_kill")
        world.host.heal()
    stopped = ended(world, execution_id, "ssh_duplicate_kill", ph.ERROR)
    assert stopped.stop_reason == ph.USER_STOP
    world.wait_watcher_log(rf"kill sent job_id={job.id} signal=KILL pgid={running.pid}\b")
    world.wait_watcher_log(rf"duplicate kill ignored job_id={job.id} ")
    error_event(world, job.id)
    world.rt.wait_core_log(rf"kill sent job_id={job.id} ")


def test_a_force_stop_while_sshd_is_down_fails_and_the_job_keeps_running(world):
    """S16/S17: the stop cannot reach the host; stop_failed, the job is still running and
    says why; once sshd is back a second stop works."""
    execution_id, job = run_job(world, "ssh_stop_failed")
    running = world.rt.wait_vertex(execution_id, "/ssh_stop_failed/j", {ph.RUNNING})
    world.stop_sshd()
    try:
        world.rt.cli("stop", job.id)
        reason = f"cannot connect to server s1 ({world.host.address}:22): connection refused"
        failed = wait_for(lambda: [e for e in world.rt.events(ev.STOP_FAILED_JOB)
                                   if e.properties.get("target_job_id") == job.id], timeout=30,
                          what="the stop_failed event", interval=POLL)
        assert failed[0].properties["message"] == reason
        still = world.rt.wait_vertex(execution_id, "/ssh_stop_failed/j", {ph.RUNNING},
                                     check=lambda v: v.reason is not None)
        assert still.reason == f"stop failed: {reason}"
        assert f"reason=stop failed: {reason}" in world.rt.cli("jobs", execution_id).stdout
        assert world.host.run(["kill", "-0", str(running.pid)]).returncode == 0
    finally:
        world.start_sshd()
    world.rt.cli("stop", job.id)
    stopped = ended(world, execution_id, "ssh_stop_failed", ph.ERROR)
    assert stopped.stop_reason == ph.USER_STOP
