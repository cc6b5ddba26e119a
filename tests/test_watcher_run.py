"""``tengine-watcher run`` and ``status`` with real processes (no broker: it is not there)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import threading

import pytest

from harness.waiting import wait_for
from support.tcp import dead_amqp_url
from support.watcher import (
    POLL,
    log_lines,
    pid_of,
    process_gone,
    read_json,
    result_of,
    run_job,
    start_watcher,
    wait_log,
    watcher,
)
from tengine_min import failpoints


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


def write_script(path, body: str, mode: int = 0o755):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def test_run_prints_pid_records_result_and_gives_up_without_broker(state, tmp_path):
    script = write_script(tmp_path / "job.sh", "echo to-out; echo to-err >&2; sleep 0.3; exit 3\n")
    done = run_job(state, "j1", str(script))
    pid = pid_of(done)
    result = result_of(state, "j1")
    assert result["pid"] == pid
    assert result["exit_status"] == 3 and result["signal"] is None
    assert result["stdout"]["head"] == "to-out\n" and result["stderr"]["head"] == "to-err\n"
    assert (state / "jobs" / "j1" / "stdout.log").read_text() == "to-out\n"
    # retry count 0 against a port nobody listens on: one attempt, then the watchdog gives up
    wait_log(state, "gave up", "event=finished.process.job.tengine", "job_id=j1")
    wait_log(state, "result not published", "job_id=j1")
    assert log_lines(state, "started", f"pid={pid}", "job_id=j1")
    assert log_lines(state, "finished", "exit_status=3", "job_id=j1")
    shown = json.loads(watcher(state, "status", "--job-id", "j1", "--json").stdout)
    assert shown["state"] == "finished"
    assert shown["exit_status"] == 3
    assert shown["published"] is False
    assert shown["result_recorded"] is True
    assert shown["stdout_log"].endswith("jobs/j1/stdout.log")
    text = watcher(state, "status", "--job-id", "j1").stdout
    assert "state: finished" in text and "published: False" in text


def test_every_log_line_carries_the_job_id(state, tmp_path):
    pid_of(run_job(state, "j-all", "true", heartbeat=0.1))
    result_of(state, "j-all")
    wait_log(state, "result not published", "job_id=j-all")
    lines = (state / "log" / "watcher.log").read_text().splitlines()
    assert lines and all("job_id=j-all" in line for line in lines)


def test_environment_reaches_the_script(state, tmp_path):
    script = write_script(tmp_path / "env.sh", 'echo "$MM_ACTUAL_JOB_ID|$MM_SERVER_NAME|$1"\n')
    env = {**os.environ, "MM_ACTUAL_JOB_ID": "job-42", "MM_SERVER_NAME": "test_server1",
           "MM_ROOT_JOBNET_ID": "root-1", "MM_SCHEDULE_ID": "exec-9"}
    pid = pid_of(run_job(state, "jenv", str(script), "an arg", env=env))
    result = result_of(state, "jenv")
    assert result["stdout"]["head"] == "job-42|test_server1|an arg\n"
    started = read_json(state / "jobs" / "jenv" / "started.json")
    assert started["source_name"] == f"job:test_server1/{pid}/root-1/jenv"
    assert started["sender_name"].endswith(f"/{started['watchdog_pid']}/tengine_job_agent")
    request = read_json(state / "jobs" / "jenv" / "request.json")
    assert request["execution_id"] == "exec-9"


def test_duplicate_run_returns_the_same_pid_and_is_logged(state, tmp_path):
    marker = tmp_path / "ran"
    script = write_script(tmp_path / "once.sh", f'echo x >> "{marker}"; sleep 1\n')
    first = pid_of(run_job(state, "jdup", str(script)))
    second = pid_of(run_job(state, "jdup", str(script)))
    assert second == first
    assert log_lines(state, "duplicate start ignored", "job_id=jdup", f"pid={first}")
    result_of(state, "jdup")
    third = pid_of(run_job(state, "jdup", str(script)))  # finished: still the same answer
    assert third == first
    assert marker.read_text() == "x\n"
    assert len(log_lines(state, "duplicate start ignored", "job_id=jdup")) == 2


def test_concurrent_runs_start_the_script_once(state, tmp_path):
    marker = tmp_path / "ran"
    script = write_script(tmp_path / "once.sh", f'echo $$ >> "{marker}"; sleep 0.5\n')
    runs = [start_watcher(state, "run", "--job-id", "jcc", "--publish-retry-count", "0",
                          "--amqp-url", dead_amqp_url(),
                          "--heartbeat-interval", "0", "--", str(script)) for _ in range(4)]
    outputs = [r.communicate(timeout=60) for r in runs]
    assert all(r.returncode == 0 for r in runs), outputs
    pids = {out.strip() for out, _ in outputs}
    assert len(pids) == 1, outputs
    result_of(state, "jcc")
    assert len(marker.read_text().splitlines()) == 1
    assert len(log_lines(state, "started", "job_id=jcc", "watchdog_pid=")) == 1
    assert len(log_lines(state, "duplicate start ignored", "job_id=jcc")) == 3


def test_missing_script(state, tmp_path):
    missing = tmp_path / "no-such.sh"
    done = run_job(state, "jmiss", str(missing))
    assert done.returncode == 127
    assert done.stdout == ""
    assert done.stderr.strip() == f"script not found: {missing}"
    assert log_lines(state, "spawn failed", f'reason="script not found: {missing}"', "job_id=jmiss")
    again = run_job(state, "jmiss", str(missing))
    assert again.returncode == 127 and again.stderr.strip() == f"script not found: {missing}"
    shown = json.loads(watcher(state, "status", "--job-id", "jmiss", "--json").stdout)
    assert shown["state"] == "spawn_failed"
    assert shown["spawn_error"] == f"script not found: {missing}"


def test_script_not_executable(state, tmp_path):
    script = write_script(tmp_path / "plain.sh", "echo hi\n", mode=0o644)
    done = run_job(state, "jnox", str(script))
    assert done.returncode == 126
    assert done.stderr.strip() == f"script not executable: {script}"
    assert log_lines(state, "spawn failed", "script not executable", "job_id=jnox")
    assert not stat.S_IXUSR & script.stat().st_mode


def test_output_cap_keeps_the_file_short_and_counts_the_rest(state, tmp_path):
    script = write_script(tmp_path / "big.sh", "head -c 300000 /dev/zero | tr '\\0' a\n")
    pid_of(run_job(state, "jcap", str(script), extra=("--output-cap", "100K")))
    result = result_of(state, "jcap")
    out = result["stdout"]
    assert (state / "jobs" / "jcap" / "stdout.log").stat().st_size == 100 * 1024
    assert out["total_bytes"] == 300000
    assert out["spooled_bytes"] == 100 * 1024
    assert out["spool_dropped_bytes"] == 300000 - 100 * 1024
    assert out["dropped_bytes"] == 300000 - 2 * 64 * 1024


def test_pid_report_failpoint_holds_run_while_the_script_runs(state, tmp_path):
    marker = tmp_path / "started"
    script = write_script(tmp_path / "s.sh", f'touch "{marker}"; sleep 0.2\n')
    failpoints.arm(state, "watcher.before_pid_report", "pause")
    run = start_watcher(state, "run", "--job-id", "jfp", "--publish-retry-count", "0",
                          "--amqp-url", dead_amqp_url(),
                        "--heartbeat-interval", "0", "--", str(script))
    try:
        failpoints.wait_hit(state, "watcher.before_pid_report", timeout=60)
        wait_for(marker.exists, timeout=30, what="the script ran while run is paused",
                 interval=POLL)
        assert run.poll() is None  # PID not printed yet
        failpoints.disarm(state, "watcher.before_pid_report")
        failpoints.release(state, "watcher.before_pid_report")
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert out.strip() == f"PID={read_json(state / 'jobs' / 'jfp' / 'started.json')['pid']}"
    finally:
        run.kill()


def test_run_survives_a_closed_stdout(state, tmp_path):
    """The ssh channel gone before the PID is printed: the job still runs, the log says so."""
    script = write_script(tmp_path / "s.sh", "sleep 0.2\n")
    failpoints.arm(state, "watcher.before_pid_report", "pause")
    run = start_watcher(state, "run", "--job-id", "jcut", "--publish-retry-count", "0",
                          "--amqp-url", dead_amqp_url(),
                        "--heartbeat-interval", "0", "--", str(script))
    try:
        failpoints.wait_hit(state, "watcher.before_pid_report", timeout=60)
        run.stdout.close()  # like the cut ssh channel: nobody reads the PID any more
        failpoints.release(state, "watcher.before_pid_report")
        assert run.wait(timeout=60) == 1
        assert log_lines(state, "pid not reported", "job_id=jcut")
        assert result_of(state, "jcut")["exit_status"] == 0
    finally:
        run.kill()


def test_unknown_and_bad_job_ids(state):
    gone = watcher(state, "status", "--job-id", "nope")
    assert gone.returncode == 2
    assert "unknown job id 'nope'" in gone.stderr
    bad = watcher(state, "run", "--job-id", "../x", "--", "true")
    assert bad.returncode == 2
    assert "bad job id '../x'" in bad.stderr
    assert not (state / "x").exists()


def test_bad_options_are_refused_before_anything_runs(state):
    no_script = watcher(state, "run", "--job-id", "jx")
    assert no_script.returncode == 2 and "give the script" in no_script.stderr
    bad_cap = watcher(state, "run", "--job-id", "jx", "--output-cap", "lots", "--", "true")
    assert bad_cap.returncode == 2 and "'lots' is not a size" in bad_cap.stderr
    bad_url = watcher(state, "run", "--job-id", "jx", "--amqp-url", "http://x", "--", "true")
    assert bad_url.returncode == 2 and "expected amqp://" in bad_url.stderr
    assert not (state / "jobs" / "jx").exists()


def test_start_timeout_is_bounded_and_says_so(state, tmp_path):
    """A job dir whose starter never reports: a second run waits, then says what is unknown."""
    jobdir = state / "jobs" / "jstuck"
    jobdir.mkdir(parents=True)  # taken, but no request and no watchdog ever come
    done = watcher(state, "run", "--job-id", "jstuck", "--start-timeout", "0.3", "--", "true")
    assert done.returncode == 1
    assert "timed out after 0.3 s" in done.stderr
    assert "whether the script started is unknown" in done.stderr


def test_a_dead_first_run_is_noticed(state, tmp_path):
    """The run that took the job died before spawning its watchdog: no waiting for nothing."""
    jobdir = state / "jobs" / "jdead"
    jobdir.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    (jobdir / "request.json").write_text(json.dumps({"run_pid": gone.pid, "command": ["true"]}))
    done = watcher(state, "run", "--job-id", "jdead", "--start-timeout", "30", "--", "true")
    assert done.returncode == 1
    assert "died before starting its watchdog" in done.stderr


def test_log_lines_of_parallel_jobs_never_interleave(state, tmp_path):
    script = write_script(tmp_path / "s.sh", "true\n")
    threads = [threading.Thread(target=run_job, args=(state, f"jp{i}", str(script)),
                                kwargs={"heartbeat": 0.05}) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i in range(6):
        wait_log(state, "result not published", f"job_id=jp{i}")
    for line in (state / "log" / "watcher.log").read_text().splitlines():
        assert line.count(" tengine.watcher ") == 1, line
        assert line.count("job_id=") == 1, line


def test_watchdog_death_leaves_status_lost(state, tmp_path):
    pid = pid_of(run_job(state, "jlost", "sleep", "60"))
    started = read_json(state / "jobs" / "jlost" / "started.json")
    os.kill(started["watchdog_pid"], 9)
    wait_for(lambda: process_gone(pid), timeout=30, what="the script dies with its watchdog",
             interval=POLL)
    shown = json.loads(watcher(state, "status", "--job-id", "jlost", "--json").stdout)
    assert shown["state"] == "lost"
    assert shown["watchdog_alive"] is False


ENOSPC_TEXT = "[Errno 28] No space left on device"


@pytest.mark.parametrize("disk_full", [False, True], ids=["only-started.json", "disk-full"])
def test_a_start_that_cannot_be_recorded_is_reported_as_such(state, tmp_path, disk_full):
    """A real ENOSPC from the kernel on started.json (its temp file is a link to /dev/full),
    after the script started: the watchdog kills the script's whole group, and run exits 1
    saying the start could not be recorded, not that the script never started."""
    child_file, pid_file = tmp_path / "child", tmp_path / "pid"
    script = write_script(tmp_path / "s.sh", f'sleep 60 & echo $! > "{child_file}"; '
                                             f'echo $$ > "{pid_file}.tmp"; '
                                             f'mv "{pid_file}.tmp" "{pid_file}"; wait\n')
    point = "watcher.before_record_started"
    failpoints.arm(state, point, "pause")
    run = start_watcher(state, "run", "--job-id", "jnr", "--publish-retry-count", "0",
                        "--amqp-url", dead_amqp_url(), "--heartbeat-interval", "0", "--",
                        str(script))
    pids: list[int] = []
    try:
        (hit,) = failpoints.wait_hit(state, point, timeout=60)
        pid = int(wait_for(lambda: read_text(pid_file), timeout=30, what="the script runs",
                           interval=POLL))
        pids += [pid, int(child_file.read_text())]  # the child is in the script's group
        jobdir = state / "jobs" / "jnr"
        for name in ["started.json"] + (["spawn_error.json"] if disk_full else []):
            (jobdir / f".{name}.{hit['pid']}.tmp").symlink_to("/dev/full")
        failpoints.release(state, point)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        for leftover in pids:  # only without the fix
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
    assert run.returncode == 1 and out == ""
    assert err.startswith("tengine-watcher run: job jnr: start not recorded: "), err
    if disk_full:
        assert "could not write the job state on the host (a full disk?)" in err
    else:
        assert f"could not be written on the host ({ENOSPC_TEXT})" in err
        assert f"the script (pid {pid}) had started and was killed at once" in err
    assert process_gone(pid)  # reaped before run heard of it
    wait_for(lambda: process_gone(pids[1]), timeout=10,
             what="the script's child died with its group", interval=POLL)
    (line,) = log_lines(state, "start not recorded job_id=jnr")  # the watchdog's
    assert f'error="{ENOSPC_TEXT}"' in line and 'action="script killed"' in line
    if disk_full:  # run's, its message; with spawn_error.json the watchdog's line says it all
        assert log_lines(state, "start failed job_id=jnr", "start not recorded")
    assert not log_lines(state, "watchdog crashed") and not log_lines(state, "started job_id=")
    assert not list(jobdir.glob(".*.tmp"))
    # A duplicate run (the core retrying) does not claim the script never started either.
    again = watcher(state, "run", "--job-id", "jnr", "--start-timeout", "30", "--", "true")
    assert again.returncode == 1
    if disk_full:
        assert "ended without reporting the script's start" in again.stderr
    else:
        assert again.stderr == err
        shown = json.loads(watcher(state, "status", "--job-id", "jnr", "--json").stdout)
        assert shown["state"] == "spawn_failed" and "start not recorded" in shown["spawn_error"]


def read_text(path) -> str | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return text or None
