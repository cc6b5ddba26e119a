"""A real runtime for integration tests: a state dir, a `tengine core` process on the shared test
broker, the real CLI, the real watcher through the local transport, and readers of the store and
the logs. The core is a harness `ManagedProcess` (harness/processes.py: its log, signals, a stop
by SIGCONT/SIGTERM/SIGKILL); every wait has a deadline; `close()` leaves no process of the
runtime's root behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import Row, select, update

from harness.processes import ManagedProcess, kill_all, processes_mentioning
from harness.waiting import wait_for
from tengine_min.model import phases as ph
from tengine_min.store import repo
from tengine_min.store.db import engine_for, write_transaction
from tengine_min.store.schema import edges, events, schedules

POLL = 0.05  # s between looks while waiting on the store and the logs

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


def cli_label(phase: str, stop_reason: str | None = None) -> str:
    """How the CLI (`tengine jobs`, `run --wait`) shows a phase, in the product's own words:
    `正常終了 / success`."""
    return f"{ph.human_label(phase, stop_reason)} / {ph.human_label(phase, stop_reason, 'en')}"


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
        self.core: ManagedProcess | None = None
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

    def core_command(self) -> list[str]:
        """The command line of the core."""
        return [sys.executable, "-m", "tengine_min.cli", "core"]

    def start_core(self, timeout: float = 30) -> ManagedProcess:
        """Start `tengine core` and wait for its `core ready` line."""
        assert self.core is None or not self.core.alive(), "a core is already running"
        self._core_runs += 1
        core = ManagedProcess("core", self.core_command(), self.env,
                              self.root / f"core-{self._core_runs}.out", self.state_dir).start()
        self.core = core
        try:
            wait_for(lambda: not core.alive() or
                     self.core_log_matches(rf"core ready pid={core.pid}\b"),
                     timeout=timeout, what=f"core {core.pid} to be ready", interval=POLL)
        except AssertionError:
            self.kill_core()
            raise
        if not core.alive():
            raise AssertionError(f"the core exited with {core.returncode}:\n{core.log_tail()}")
        return core

    def stop_core(self, timeout: float = 30) -> int | None:
        """SIGTERM (SIGKILL after `timeout`): the exit code."""
        assert self.core is not None
        return self.core.stop(timeout)

    def kill_core(self) -> None:
        if self.core is not None and self.core.alive():
            self.core.signal(signal.SIGKILL)
            self.core.wait(30)

    def close(self) -> None:
        """Stop the core (SIGTERM, then SIGKILL) and kill every process of the runtime's root."""
        if self.core is not None:
            self.core.stop(timeout=20)
        for _ in range(3):
            left = processes_mentioning(self.root)
            if not left:
                break
            kill_all(left)
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
                        and row.phase in wanted and row, timeout=timeout,
                        what=f"execution {execution_id} to reach {sorted(wanted)} "
                             f"(now {self._phases(execution_id)})", interval=POLL)

    def wait_vertex(self, execution_id: str, name_path: str, phases: Iterable[str],
                    timeout: float = 60, check: Callable[[Row], bool] = lambda v: True) -> Row:
        wanted = set(phases)

        def reached():
            vertex = self.vertices(execution_id).get(name_path)
            return vertex is not None and vertex.phase in wanted and check(vertex) and vertex

        return wait_for(reached, timeout=timeout,
                        what=f"{name_path} to reach {sorted(wanted)} "
                             f"(now {self._phases(execution_id)})", interval=POLL)

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
        return matching_lines(self.core_log, pattern)

    def watcher_log_matches(self, pattern: str) -> list[str]:
        return matching_lines(self.watcher_log, pattern)

    def wait_core_log(self, pattern: str, timeout: float = 30, count: int = 1) -> list[str]:
        return wait_for(lambda: len(found := self.core_log_matches(pattern)) >= count and found,
                        timeout=timeout, what=f"{count} core log line(s) matching {pattern!r}",
                        interval=POLL)

    def wait_watcher_log(self, pattern: str, timeout: float = 30, count: int = 1) -> list[str]:
        return wait_for(lambda: len(found := self.watcher_log_matches(pattern)) >= count
                        and found, timeout=timeout,
                        what=f"{count} watcher log line(s) matching {pattern!r}", interval=POLL)

    def job_env(self, job_id: str, timeout: float = 30) -> dict[str, str]:
        """The MM_* variables a job wrote (job.sh)."""
        path = self.out / f"{job_id}.env"
        text = wait_for(lambda: path.exists() and path.read_text(), timeout=timeout,
                        what=f"the env file of job {job_id}", interval=POLL)
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def matching_lines(path: Path, pattern: str) -> list[str]:
    """The lines of the file at `path` (none when it does not exist yet) matching `pattern`."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    regex = re.compile(pattern)
    return [line for line in text.splitlines() if regex.search(line)]
