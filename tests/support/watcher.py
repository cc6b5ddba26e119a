"""Helpers of the watcher tests: run the real watcher CLI, read its job dirs and its log, check
its processes, fake publishers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.waiting import wait_for
from tengine_min.bus.publisher import PublishFailed

from .tcp import dead_amqp_url

POLL = 0.02  # s between looks while waiting: the watcher's files and processes change quickly


def watcher(state_dir: Path, *args: str, env: dict | None = None, timeout: float = 60,
            **popen) -> subprocess.CompletedProcess:
    """Run ``tengine-watcher ARGS`` (as a real process) with the state dir given."""
    command = [sys.executable, "-m", "tengine_min.watcher.cli", args[0], "--state-dir",
               str(state_dir), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=env, **popen)


def start_watcher(state_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "tengine_min.watcher.cli", args[0], "--state-dir",
               str(state_dir), *args[1:]]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def run_job(state_dir: Path, job_id: str, *script: str, retry_count: int = 0,
            heartbeat: float = 0, extra: tuple[str, ...] = (), env: dict | None = None,
            amqp_url: str | None = None, **popen) -> subprocess.CompletedProcess:
    """``tengine-watcher run`` against a broker that is not there, retries as given."""
    return watcher(state_dir, "run", "--job-id", job_id, "--amqp-url",
                   amqp_url or dead_amqp_url(), "--publish-retry-count", str(retry_count),
                   "--publish-retry-interval", "0.1", "--heartbeat-interval", str(heartbeat),
                   *extra, "--", *script, env=env, **popen)


def pid_of(completed: subprocess.CompletedProcess) -> int:
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("PID="), completed.stdout
    return int(lines[0][4:])


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def result_of(state_dir: Path, job_id: str, timeout: float = 60) -> dict:
    path = state_dir / "jobs" / job_id / "result.json"
    return wait_for(lambda: read_json(path), timeout=timeout, what=f"{path}", interval=POLL)


def log_lines(state_dir: Path, *words: str) -> list[str]:
    """Lines of the watcher log containing every one of ``words``."""
    try:
        text = (state_dir / "log" / "watcher.log").read_text()
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if all(w in line for w in words)]


def wait_log(state_dir: Path, *words: str, timeout: float = 60, count: int = 1) -> list[str]:
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        log_lines(state_dir, *words)), timeout=timeout, what=f"log line with {words} x{count}",
        interval=POLL)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X")


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


class RecordingPublisher:
    """Stands in for the bus Publisher in pure-logic tests: keeps what it was given."""

    def __init__(self, sink: list, fail: bool = False):
        self.sink = sink
        self.fail = fail
        self.closed = False

    def publish(self, event) -> None:
        if self.fail:
            raise PublishFailed(f"gave up publishing {event.event_type_name} after 1 attempt(s): "
                                "ConnectionRefusedError: test")
        self.sink.append(event)

    def close(self) -> None:
        self.closed = True


def recording_factory(sink: list, fail: bool = False):
    made: list[dict] = []

    def factory(url, *, retry_count, retry_interval, logger, connect_timeout=5.0):
        made.append({"url": url, "retry_count": retry_count, "retry_interval": retry_interval})
        return RecordingPublisher(sink, fail)

    factory.made = made
    return factory
