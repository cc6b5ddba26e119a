"""``tengine-watcher kill`` with real processes: running, finished, duplicate, signal order."""

from __future__ import annotations

import json

import pytest

from harness.waiting import wait_for
from support.watcher import (
    POLL,
    group_gone,
    log_lines,
    pid_of,
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


def test_kill_stops_the_whole_process_group(state, tmp_path):
    script = tmp_path / "tree.sh"
    # A grandchild in the same group: the kill must take it too.
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {tmp_path / 'child'}\nwait\n")
    script.chmod(0o755)
    pid = pid_of(run_job(state, "jk", str(script)))
    wait_for((tmp_path / "child").exists, timeout=30, what="the grandchild started", interval=POLL)
    done = watcher(state, "kill", "--job-id", "jk", "--interval", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"kill sent job_id=jk signal=KILL pgid={pid}"]
    assert group_gone(pid)
    assert log_lines(state, "kill sent", "job_id=jk", "signal=KILL", f"pgid={pid}")
    result = result_of(state, "jk")
    assert result["exit_status"] is None
    assert result["signal"] == "KILL"
    assert result["killed"] is True
    kills = read_json(state / "jobs" / "jk" / "kill.json")["requests"]
    assert [k["outcome"] for k in kills] == ["stopped"]


def test_signals_in_order_until_the_group_is_gone(state, tmp_path):
    script = tmp_path / "stubborn.sh"
    script.write_text(f"#!/bin/sh\ntrap 'echo got-term' TERM\ntouch {tmp_path / 'ready'}\n"
                      "while true; do sleep 0.05; done\n")
    script.chmod(0o755)
    pid = pid_of(run_job(state, "jt", str(script)))
    wait_for((tmp_path / "ready").exists, timeout=30, what="the trap is set", interval=POLL)
    done = watcher(state, "kill", "--job-id", "jt", "--signals", "TERM,KILL", "--interval", "0.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"kill sent job_id=jt signal=TERM pgid={pid}",
                                        f"kill sent job_id=jt signal=KILL pgid={pid}"]
    result = result_of(state, "jt")
    assert result["signal"] == "KILL"
    assert "got-term" in result["stdout"]["head"]


def test_kill_stops_early_when_the_first_signal_is_enough(state, tmp_path):
    pid = pid_of(run_job(state, "je", "sleep", "60"))
    done = watcher(state, "kill", "--job-id", "je", "--signals", "TERM,KILL", "--interval", "30",
                   timeout=25)
    assert done.stdout.splitlines() == [f"kill sent job_id=je signal=TERM pgid={pid}"]
    assert result_of(state, "je")["signal"] == "TERM"


def test_kill_of_a_finished_job_finds_nothing(state):
    pid_of(run_job(state, "jf", "sh", "-c", "exit 4"))
    result_of(state, "jf")
    done = watcher(state, "kill", "--job-id", "jf")
    assert done.returncode == 0
    assert done.stdout.strip() == "nothing to kill job_id=jf (already finished exit_status=4)"
    assert log_lines(state, "nothing to kill job_id=jf (already finished exit_status=4)")
    assert read_json(state / "jobs" / "jf" / "result.json")["killed"] is False


def test_repeated_kill_is_recognised(state):
    pid_of(run_job(state, "jr", "sleep", "60"))
    first = watcher(state, "kill", "--job-id", "jr")
    assert "kill sent" in first.stdout
    second = watcher(state, "kill", "--job-id", "jr")
    assert second.returncode == 0
    assert second.stdout.strip() == "duplicate kill ignored job_id=jr (already stopped)"
    assert log_lines(state, "duplicate kill ignored job_id=jr (already stopped)")
    assert len(log_lines(state, "kill sent", "job_id=jr")) == 1
    shown = json.loads(watcher(state, "status", "--job-id", "jr", "--json").stdout)
    assert shown["kill_requested"] is True
    assert [k["outcome"] for k in shown["kill_requests"]] == ["stopped", "duplicate"]


def test_kill_of_a_script_that_never_started(state, tmp_path):
    run_job(state, "jn", str(tmp_path / "missing.sh"))
    done = watcher(state, "kill", "--job-id", "jn")
    assert done.returncode == 0
    assert "nothing to kill job_id=jn (never started: script not found:" in done.stdout


def test_kill_of_an_unknown_job(state):
    done = watcher(state, "kill", "--job-id", "ghost")
    assert done.returncode == 2
    assert "unknown job id 'ghost'" in done.stderr
    assert not (state / "jobs" / "ghost").exists()


def test_after_kill_failpoint_holds_the_answer_not_the_kill(state):
    pid = pid_of(run_job(state, "jak", "sleep", "60"))
    failpoints.arm(state, "watcher.after_kill", "pause")
    kill = start_watcher(state, "kill", "--job-id", "jak")
    try:
        failpoints.wait_hit(state, "watcher.after_kill", timeout=60)
        assert group_gone(pid)  # the kill is done ...
        assert kill.poll() is None  # ... and its answer not yet given
        wait_log(state, "finished", "signal=KILL", "job_id=jak")
        failpoints.release(state, "watcher.after_kill")
        out, _ = kill.communicate(timeout=60)
        assert out.strip() == f"kill sent job_id=jak signal=KILL pgid={pid}"
    finally:
        kill.kill()
