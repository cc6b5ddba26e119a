"""The state dir of a job host and the directory of one job in it.

Layout (all under the state dir, default ``$TENGINE_WATCHER_STATE_DIR`` or ``~/.tengine-watcher``):

    log/watcher.log           one line per fact, every watchdog and command appends to it
    failpoints/               arming files and hit markers (tengine_min.failpoints)
    jobs/<job id>/            created by the first ``run`` with mkdir: that mkdir is the lock
        request.json          what was asked: command, options, the pid of the ``run`` that made it
        watchdog.json         pid of the watchdog that ``run`` spawned
        started.json          the script's pid/pgid, the event key, source and sender names
        spawn_error.json      why the script could not be started (instead of started.json)
        result.json           how the script ended, written before the finished event is sent
        published.json        present once the broker confirmed the finished event
        kill.json             every kill request (time, signals, what was found)
        stdout.log stderr.log the spooled output of the script
        watchdog.err          stderr of the watchdog process (tracebacks of a crash only)

Every JSON file is written whole (temp file + rename), so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "TENGINE_WATCHER_STATE_DIR"
DEFAULT_STATE_DIR = "~/.tengine-watcher"

_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_:@+-][A-Za-z0-9_.:@+-]{0,199}$")


class UnknownJob(LookupError):
    """A job id this host has no directory for."""


class BadJobId(ValueError):
    """A job id that cannot name a directory."""


def now_iso() -> str:
    """The current time in ISO 8601 UTC with microseconds, the envelope's format."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def resolve_state_dir(arg: str | Path | None) -> Path:
    """The option if given, else $TENGINE_WATCHER_STATE_DIR, else ~/.tengine-watcher."""
    raw = str(arg) if arg else os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(raw).expanduser().absolute()


def check_job_id(job_id: str) -> str:
    """Return the id if it can name a directory, else raise BadJobId saying why."""
    if not _JOB_ID_RE.match(job_id or ""):
        raise BadJobId(
            f"bad job id {job_id!r}: use 1-200 of letters, digits and _ . : @ + - "
            "(not starting with '.')")
    return job_id


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # the result must survive a host crash right after the rename
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. a full disk: no half-written temp file left
            tmp.unlink()
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class JobDir:
    """Paths and records of one job under ``<state dir>/jobs/<job id>``."""

    def __init__(self, state_dir: Path, job_id: str):
        self.state_dir = state_dir
        self.job_id = check_job_id(job_id)
        self.path = state_dir / "jobs" / job_id

    # file paths
    @property
    def stdout_path(self) -> Path:
        return self.path / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.path / "stderr.log"

    @property
    def watchdog_err_path(self) -> Path:
        return self.path / "watchdog.err"

    @property
    def publish_lock_path(self) -> Path:
        return self.path / "publish.lock"

    @property
    def kill_lock_path(self) -> Path:
        return self.path / "kill.lock"

    def file(self, name: str) -> Path:
        return self.path / name

    # lifecycle
    def create(self) -> bool:
        """Create the job's directory; True if this call made it (the caller owns the job)."""
        (self.state_dir / "jobs").mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(self.path)
        except FileExistsError:
            return False
        return True

    def exists(self) -> bool:
        return self.path.is_dir()

    def require(self) -> JobDir:
        """Self, or UnknownJob when the host never got a run request for this id."""
        if not self.exists():
            raise UnknownJob(f"unknown job id {self.job_id!r}: no directory {self.path}")
        return self

    # records
    def read(self, name: str) -> dict[str, Any] | None:
        return read_json(self.file(name))

    def write(self, name: str, data: dict[str, Any]) -> None:
        write_json_atomic(self.file(name), data)

    @property
    def request(self) -> dict[str, Any] | None:
        return self.read("request.json")

    @property
    def watchdog(self) -> dict[str, Any] | None:
        return self.read("watchdog.json")

    @property
    def started(self) -> dict[str, Any] | None:
        return self.read("started.json")

    @property
    def spawn_error(self) -> dict[str, Any] | None:
        return self.read("spawn_error.json")

    @property
    def result(self) -> dict[str, Any] | None:
        return self.read("result.json")

    @property
    def published(self) -> dict[str, Any] | None:
        return self.read("published.json")

    @property
    def kills(self) -> list[dict[str, Any]]:
        data = self.read("kill.json")
        return list(data.get("requests", [])) if data else []
