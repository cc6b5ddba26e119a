"""harness.processes: a ManagedProcess stops cleanly even when paused or deaf to SIGTERM and
says what its exit was; processes_mentioning finds what a folder's runs left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.processes import ManagedProcess, ProcessError, kill_all, processes_mentioning
from harness.waiting import wait_for

# Says "ready" once its SIGTERM disposition is set, then sleeps.
SLEEPER = """import signal, sys, time
if sys.argv[1] == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def started() -> Iterator[list[ManagedProcess]]:
    processes: list[ManagedProcess] = []
    yield processes
    for process in processes:
        process.stop(timeout=1)


def sleeper(tmp_path: Path, started: list[ManagedProcess], how: str = "plain") -> ManagedProcess:
    process = ManagedProcess("sleeper", [sys.executable, "-c", SLEEPER, how],
                             {"PATH": "/usr/bin:/bin"}, tmp_path / f"{how}.out", tmp_path)
    started.append(process.start())
    wait_for(lambda: "ready" in process.log_tail(), timeout=30, what="the sleeper to be ready")
    return process


def test_stop_ends_it_with_sigterm_and_gives_the_exit_code(tmp_path, started):
    process = sleeper(tmp_path, started)
    assert process.alive() and process.returncode is None
    assert process.stop(timeout=10) == -signal.SIGTERM
    assert not process.alive() and process.returncode == -signal.SIGTERM
    assert process.stop() == -signal.SIGTERM  # stopping again: nothing to do, the same code


def test_a_paused_process_is_continued_so_that_sigterm_reaches_it(tmp_path, started):
    process = sleeper(tmp_path, started)
    process.signal(signal.SIGSTOP)
    assert process.stop(timeout=10) == -signal.SIGTERM  # not SIGKILL after the deadline


def test_a_process_deaf_to_sigterm_is_killed_after_the_deadline(tmp_path, started):
    process = sleeper(tmp_path, started, "deaf")
    assert process.stop(timeout=0.5) == -signal.SIGKILL


def test_a_signal_to_a_process_that_is_not_running_is_refused(tmp_path, started):
    process = ManagedProcess("idle", ["true"], {}, tmp_path / "idle.out", tmp_path)
    with pytest.raises(ProcessError, match=r"^idle is not running \(exit code None\)$"):
        process.signal(signal.SIGTERM)
    assert process.stop() is None  # never started


def test_the_log_tail_is_the_last_lines_of_its_output(tmp_path):
    process = ManagedProcess("counter", ["seq", "1", "50"], {"PATH": "/usr/bin:/bin"},
                             tmp_path / "counter.out", tmp_path)
    assert process.log_tail() == "(no output)"
    process.start()
    assert process.wait(30) == 0
    assert process.log_tail(3) == "48\n49\n50"


def test_processes_mentioning_a_folder_in_their_command_line_or_environment(tmp_path):
    folder = tmp_path / "work"
    nap = "import time; time.sleep(60)"
    by_argument = subprocess.Popen([sys.executable, "-c", nap, str(folder)])
    by_environment = subprocess.Popen([sys.executable, "-c", nap], env={"MARK": str(folder)})
    other = subprocess.Popen([sys.executable, "-c", nap, str(tmp_path / "elsewhere")])
    try:
        found = wait_for(lambda: sorted(p.pid for p in processes_mentioning(folder)),
                         timeout=10, what="the two processes naming the folder")
        assert found == sorted([by_argument.pid, by_environment.pid])
        kill_all(processes_mentioning(folder))  # waits for them (and reaps our children)
        assert processes_mentioning(folder) == []
        assert not psutil.pid_exists(by_argument.pid) and not psutil.pid_exists(by_environment.pid)
        assert other.poll() is None  # not named: left alone
    finally:
        for proc in (by_argument, by_environment, other):
            proc.kill()
            proc.wait(10)
