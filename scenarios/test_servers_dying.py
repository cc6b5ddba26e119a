"""S07-S11: the job host goes down (S07) or its watcher dies (S08) while the job runs; the job's
target is wrong: its script (missing, not executable; S09), its host (wrong address, not
running; S10) or its credentials (wrong password, unknown key; S11).
"""

import json
import socket

import paramiko
import pytest

# --- S07: the job host goes down during a long job ------------------------------------------------


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


# --- S08: the watcher dies during a long job ------------------------------------------------------


@pytest.mark.scenario("S08")
@pytest.mark.cluster(heartbeat_interval=1, heartbeat_expiry=4)
def test_watchdog_killed_during_a_long_job_is_found_lost_by_monitoring(cluster):
    s1 = cluster.server("s1")
    run = cluster.run("long_job", server=s1, script="sleep 60")
    job = run.wait_for_job("/long_job/j1", phase="running")
    cluster.faults.kill(s1.watchdog(job))
    job = run.wait_for_job("/long_job/j1", phase="error", timeout=30)
    assert "watcher lost" in job.reason, job.reason
    assert run.wait_for_event("expired.job.heartbeat.tengine", job=job)
    assert run.wait_for_event("error.job.job.tengine", job=job)  # fired with the phase change
    assert s1.watcher_log(job).lacks("finished")  # nobody reported: monitoring found it


# --- S09-S11: a wrong script, host or credential --------------------------------------------------


def closed_port() -> int:
    """A port of this machine where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_job_error(run, reason_part: str):
    job = run.wait_for_job("/bad/j1", phase="error")
    assert reason_part in job.reason, job.reason
    assert job.pid is None and job.exit_status is None, job
    errors = run.wait_for_event("error.job.job.tengine", job=job).of_type("error.job.job.tengine")
    assert any(reason_part in str(e["properties"].get("message")) for e in errors), errors
    run.wait_for_execution("error")
    return job


@pytest.mark.scenario("S09")
@pytest.mark.parametrize("case", ["missing", "not_executable"])
def test_the_script_is_missing_or_not_executable(cluster, case):
    s1 = cluster.server("s1")
    if case == "missing":
        script, says = "/no/such/dir/job.sh", "script not found"
    else:
        script, says = s1.install_script("noexec.sh", "#!/bin/sh\necho hi\n", "644"), \
            "script not executable"
    cluster.faults.bad_target(f"script {case.replace('_', ' ')}", source=s1.name)
    cluster.define_job("bad", s1, script)
    run = cluster.run("bad")
    job = assert_job_error(run, f"{says} on s1: ")
    log = s1.watcher_log(job)
    assert log.has("run requested") and log.has("spawn failed"), log
    assert any(f'reason="{says}: ' in line for line in log.lines), log
    assert log.lacks("started"), log  # nothing ran


@pytest.mark.scenario("S10")
def test_the_jobs_host_address_is_wrong(cluster):
    s1 = cluster.server("s1")
    port = closed_port()
    cluster.add_resources(f'[servers.nowhere]\ntransport = "ssh"\naddress = "127.0.0.1"\n'
                      f"ssh_port = {port}\nhost_key = {json.dumps(s1.host.host_key)}\n")
    cluster.faults.bad_target("wrong address (nothing listens there)")
    cluster.define_job("bad", "nowhere", "echo never", credential=s1.name)
    run = cluster.run("bad")
    job = assert_job_error(run, f"cannot connect to server nowhere (127.0.0.1:{port}): ")
    assert "refused" in job.reason, job.reason
    assert s1.watcher_log(job).lines == (), s1.watcher_log(job)  # reached no host


@pytest.mark.scenario("S10")
def test_the_jobs_host_is_not_running(cluster):
    s1 = cluster.server("s1")
    cluster.define_job("bad", s1, "echo never")
    cluster.faults.power_off(s1)
    run = cluster.run("bad")
    job = assert_job_error(run, f"cannot connect to server s1 (127.0.0.1:{s1.ssh.port}): ")
    assert s1.watcher_log(job).lines == (), s1.watcher_log(job)  # nothing reached s1


@pytest.mark.scenario("S11")
@pytest.mark.cluster(command_retry_count=2, command_retry_interval=0.2)
@pytest.mark.parametrize("case", ["password", "key"])
def test_the_jobs_credentials_are_wrong(cluster, case):
    s1 = cluster.server("s1")
    user = json.dumps(s1.host.user)
    if case == "password":
        secret = f'type = "ssh_password"\npassword = {json.dumps(s1.host.password + "-wrong")}\n'
    else:  # a key of its own that the host never authorised
        key_file = cluster.work_dir / "unknown_key"
        paramiko.RSAKey.generate(2048).write_private_key_file(str(key_file))
        secret = f'type = "ssh_public_key"\nprivate_key_file = {json.dumps(str(key_file))}\n'
    cluster.add_resources(f"[credentials.wrong]\nusername = {user}\n{secret}")
    cluster.faults.bad_target(f"wrong {case}")
    cluster.define_job("bad", s1, "echo never", credential="wrong")
    run = cluster.run("bad")
    job = assert_job_error(run, "authentication failed for credential wrong on server s1")
    assert s1.watcher_log(job).lines == (), s1.watcher_log(job)  # nothing reached the watcher
    # retries are configured, but the same credentials would fail the same way: one attempt
    attempts = cluster.core_log.matching(rf"ssh attempt \d/3 .*job_id={job.id}\b")
    assert len(attempts) == 1 and "ssh attempt 1/3" in attempts[0], attempts
