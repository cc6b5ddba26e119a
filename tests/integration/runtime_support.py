"""A real runtime for integration tests: a state dir, a `tengine core` process on the shared test
broker, the real CLI, the real watcher through the local transport, and readers of the store and
the logs. Every wait has a deadline; `close()` leaves no process of the state dir behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Row, select, update

from tengine_min.model import phases as ph
from tengine_min.store import repo
from tengine_min.store.db import engine_for, write_transaction
from tengine_min.store.schema import edges, events, schedules

# Short times through the ordinary settings: heartbeats every second, quick polls.
FAST_SETTINGS = """
heartbeat_interval = 1
heartbeat_expiry = 10
publish_retry_count = 10
publish_retry_interval = 0.5
relay_poll_interval = 0.2
schedule_interval = 0.2
shutdown_grace = 10
command_timeout = 60
watcher_start_timeout = 60
log_level = "DEBUG"
"""

# job.sh SECONDS [EXIT]: writes its MM_* variables to $JOB_OUT/<job id>.env, sleeps, exits.
JOB_SCRIPT = """#!/bin/sh
env | grep '^MM_' > "$JOB_OUT/$MM_ACTUAL_JOB_ID.env"
sleep "${1:-0}"
exit "${2:-0}"
"""


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    """The first truthy value of `condition()`; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def processes_mentioning(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or environment names `folder`."""
    needle = str(folder)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if needle in " ".join(proc.cmdline()) or any(needle in v for v in
                                                          proc.environ().values()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


class Runtime:
    """One state dir with its core, CLI, scripts and readers."""

    def __init__(self, root: Path, amqp_url: str, settings: str = FAST_SETTINGS) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.bin = root / "bin"
        self.out = root / "out"
        for folder in (self.state_dir, self.bin, self.out):
            folder.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "tengine.toml").write_text(settings)
        self.job_sh = self.script("job.sh", JOB_SCRIPT)
        self.amqp_url = amqp_url
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("TENGINE_", "MM_"))}
        self.env.update(TENGINE_STATE_DIR=str(self.state_dir), TENGINE_AMQP_URL=amqp_url,
                        JOB_OUT=str(self.out))
        self.engine = engine_for(self.state_dir)
        self.core: subprocess.Popen | None = None
        self._core_runs = 0

    # -- files --

    def script(self, name: str, body: str, mode: int = 0o755) -> Path:
        path = self.bin / name
        path.write_text(body)
        path.chmod(mode)
        return path

    def definition(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    # -- processes --

    def cli(self, *args: str, check: bool = True, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "tengine_min.cli", *args], check=False,
                              capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})})
        if check and done.returncode != 0:
            raise AssertionError(f"tengine {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def start_core(self, timeout: float = 30) -> subprocess.Popen:
        assert self.core is None or self.core.poll() is not None, "a core is already running"
        self._core_runs += 1
        with open(self.root / f"core-{self._core_runs}.out", "wb") as out:
            self.core = subprocess.Popen([sys.executable, "-m", "tengine_min.cli", "core"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=self.env)
        pid = self.core.pid
        try:
            wait_for(lambda: self.core.poll() is not None or
                     self.core_log_matches(rf"core ready pid={pid}\b"),
                     timeout, f"core {pid} to be ready")
        except AssertionError:
            self.kill_core()
            raise
        if self.core.poll() is not None:
            output = (self.root / f"core-{self._core_runs}.out").read_text()
            raise AssertionError(f"the core exited with {self.core.returncode}:\n{output}")
        return self.core

    def stop_core(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the exit code."""
        assert self.core is not None
        self.core.send_signal(signal.SIGTERM)
        return self.core.wait(timeout)

    def kill_core(self) -> None:
        if self.core is not None and self.core.poll() is None:
            self.core.kill()
            self.core.wait(30)

    def close(self) -> None:
        """Stop the core (SIGTERM, then SIGKILL) and kill every process of the state dir."""
        if self.core is not None and self.core.poll() is None:
            try:
                self.stop_core(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_core()
        for _ in range(3):
            left = processes_mentioning(self.root)
            if not left:
                break
            for proc in left:
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(left, timeout=10)
        self.engine.dispose()

    # -- the CLI's main verbs --

    def load(self, *paths: Path) -> None:
        self.cli("load", *map(str, paths))

    def run(self, jobnet: str, *args: str) -> str:
        """`tengine run JOBNET`: the execution id."""
        done = self.cli("run", jobnet, *args)
        return done.stdout.strip().splitlines()[0]

    # -- the store --

    def execution(self, execution_id: str) -> Row:
        with self.engine.connect() as conn:
            return repo.get_execution(conn, execution_id)

    def vertices(self, execution_id: str) -> dict[str, Row]:
        """name path -> vertex row."""
        with self.engine.connect() as conn:
            return {v.name_path: v for v in repo.execution_vertices(conn, execution_id)}

    def edges_of(self, jobnet_id: str) -> list[Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(edges).where(edges.c.jobnet_id == jobnet_id)
                                     .order_by(edges.c.id)))

    def events(self, event_type_name: str | None = None) -> list[Row]:
        query = select(events).order_by(events.c.id)
        if event_type_name:
            query = query.where(events.c.event_type_name == event_type_name)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def wait_execution(self, execution_id: str, phases: Iterable[str] = ph.FINAL,
                       timeout: float = 60) -> Row:
        wanted = set(phases)
        return wait_for(lambda: (row := self.execution(execution_id)) is not None
                        and row.phase in wanted and row, timeout,
                        f"execution {execution_id} to reach {sorted(wanted)} "
                        f"(now {self._phases(execution_id)})")

    def wait_vertex(self, execution_id: str, name_path: str, phases: Iterable[str],
                    timeout: float = 60, check: Callable[[Row], bool] = lambda v: True) -> Row:
        wanted = set(phases)

        def reached():
            vertex = self.vertices(execution_id).get(name_path)
            return vertex is not None and vertex.phase in wanted and check(vertex) and vertex

        return wait_for(reached, timeout, f"{name_path} to reach {sorted(wanted)} "
                                          f"(now {self._phases(execution_id)})")

    def _phases(self, execution_id: str) -> str:
        row = self.execution(execution_id)
        if row is None:
            return "no such execution"
        parts = [f"execution={row.phase}"]
        parts += [f"{path}={v.phase}" for path, v in self.vertices(execution_id).items()]
        return ", ".join(parts)

    def fast_forward_schedules(self, execution_id: str) -> int:
        """Make the execution's pending schedules due now (the timeout test's clock jump)."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(update(schedules).where(
                schedules.c.execution_id == execution_id, schedules.c.fired_at.is_(None),
                schedules.c.cancelled_at.is_(None)).values(fire_at=repo.utcnow()))
            return result.rowcount

    # -- logs --

    @property
    def core_log(self) -> Path:
        return self.state_dir / "log" / "core.log"

    @property
    def watcher_log(self) -> Path:
        return self.state_dir / "watcher" / "log" / "watcher.log"

    def core_log_matches(self, pattern: str) -> list[str]:
        return _matching(self.core_log, pattern)

    def watcher_log_matches(self, pattern: str) -> list[str]:
        return _matching(self.watcher_log, pattern)

    def wait_core_log(self, pattern: str, timeout: float = 30, count: int = 1) -> list[str]:
        return wait_for(lambda: len(found := self.core_log_matches(pattern)) >= count and found,
                        timeout, f"{count} core log line(s) matching {pattern!r}")

    def wait_watcher_log(self, pattern: str, timeout: float = 30, count: int = 1) -> list[str]:
        return wait_for(lambda: len(found := self.watcher_log_matches(pattern)) >= count
                        and found, timeout, f"{count} watcher log line(s) matching {pattern!r}")

    def job_env(self, job_id: str, timeout: float = 30) -> dict[str, str]:
        """The MM_* variables a job wrote (job.sh)."""
        path = self.out / f"{job_id}.env"
        text = wait_for(lambda: path.exists() and path.read_text(), timeout,
                        f"the env file of job {job_id}")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _matching(path: Path, pattern: str) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    regex = re.compile(pattern)
    return [line for line in text.splitlines() if regex.search(line)]
