"""Named fault points: no-ops unless armed, so a harness can stop a process at an exact step.

A point is armed either by the environment, ``TENGINE_FAILPOINTS="name=action;name2=action"``,
or by a file ``<state dir>/failpoints/<name>`` holding the action. The file is read at the point
each time it is reached, so a harness can arm a point in a running system.

Actions:
    pause       block until the file ``<failpoints dir>/<name>.release`` exists
    sleep(ms)   sleep that many milliseconds
    exit(code)  leave the process at once with that exit code (``os._exit``: no cleanup)

Every hit appends a line (pid, time, action) to ``<failpoints dir>/<name>.hit``, which a harness
waits on, and logs one line. The failpoints dir is ``<state dir>/failpoints`` when the point is
given a state dir, else ``$TENGINE_FAILPOINTS_DIR``, else ``<tmp>/tengine-failpoints``.

An unarmed point costs one environment lookup, plus one failed ``open`` when a state dir is given.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "TENGINE_FAILPOINTS"
DIR_ENV_VAR = "TENGINE_FAILPOINTS_DIR"
SUBDIR = "failpoints"
POLL_INTERVAL = 0.02  # seconds between looks for the release file while paused

_ACTION_RE = re.compile(r"^\s*(pause|sleep|exit)\s*(?:\(\s*(-?\d+)\s*\))?\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

_default_logger = logging.getLogger("tengine_min.failpoints")


class FailpointError(ValueError):
    """An armed failpoint whose action or name cannot be understood."""


@dataclass(frozen=True)
class Action:
    kind: str  # pause | sleep | exit
    arg: int | None = None

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}({self.arg})"


def parse_action(text: str, *, where: str) -> Action:
    """Parse ``pause``, ``sleep(ms)`` or ``exit(code)``; ``where`` names the source for errors."""
    match = _ACTION_RE.match(text)
    if not match:
        raise FailpointError(
            f"{where}: unknown failpoint action {text.strip()!r} "
            "(expected pause, sleep(ms) or exit(code))")
    kind, arg = match.group(1), match.group(2)
    if kind == "pause" and arg is not None:
        raise FailpointError(f"{where}: 'pause' takes no argument, got {text.strip()!r}")
    if kind in ("sleep", "exit") and arg is None:
        raise FailpointError(f"{where}: {kind!r} needs an argument, e.g. {kind}(100)")
    value = None if arg is None else int(arg)
    if kind == "sleep" and value is not None and value < 0:
        raise FailpointError(f"{where}: sleep needs a non-negative number of ms, got {value}")
    return Action(kind, value)


_env_cache: tuple[str, dict[str, Action]] | None = None


def parse_env(value: str) -> dict[str, Action]:
    """Parse the ``TENGINE_FAILPOINTS`` value into {name: action}."""
    armed: dict[str, Action] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        name, sep, action = item.partition("=")
        name = name.strip()
        if not sep or not _NAME_RE.match(name):
            raise FailpointError(
                f"{ENV_VAR}: cannot read {item.strip()!r} (expected name=action; entries "
                "separated by ';')")
        armed[name] = parse_action(action, where=f"{ENV_VAR} entry {name!r}")
    return armed


def _armed_by_env(name: str) -> Action | None:
    global _env_cache
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    if _env_cache is None or _env_cache[0] != value:
        _env_cache = (value, parse_env(value))
    return _env_cache[1].get(name)


def failpoints_dir(state_dir: str | Path | None) -> Path:
    """Where arming files, hit markers and release files of a point live."""
    if state_dir is not None:
        return Path(state_dir) / SUBDIR
    env_dir = os.environ.get(DIR_ENV_VAR)
    if env_dir:
        return Path(env_dir)
    return Path(tempfile.gettempdir()) / "tengine-failpoints"


def _armed_by_file(name: str, state_dir: str | Path) -> Action | None:
    path = Path(state_dir) / SUBDIR / name
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parse_action(text, where=str(path))


def failpoint(name: str, *, state_dir: str | Path | None = None,
              logger: logging.Logger | logging.LoggerAdapter | None = None) -> None:
    """Run the armed action of point ``name``; do nothing when it is not armed.

    The environment wins over a file when both arm the same point.
    """
    action = _armed_by_env(name)
    if action is None and state_dir is not None:
        action = _armed_by_file(name, state_dir)
    if action is None:
        return
    _hit(name, action, failpoints_dir(state_dir), logger or _default_logger)


def _hit(name: str, action: Action, directory: Path, logger) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    line = f"pid={os.getpid()} time={now:.6f} action={action}\n"
    # One write on an O_APPEND descriptor: hits of several processes never interleave.
    fd = os.open(directory / f"{name}.hit", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    logger.info("failpoint hit name=%s action=%s pid=%d", name, action, os.getpid())
    if action.kind == "sleep":
        time.sleep((action.arg or 0) / 1000.0)
    elif action.kind == "exit":
        logging.shutdown()  # flush our log lines; os._exit skips it
        os._exit(action.arg or 0)
    elif action.kind == "pause":
        release = directory / f"{name}.release"
        while not release.exists():
            time.sleep(POLL_INTERVAL)
        logger.info("failpoint released name=%s pid=%d", name, os.getpid())


# --- helpers for a harness (and tests) that drives the points of another process ---

def arm(state_dir: str | Path, name: str, action: str) -> None:
    """Arm point ``name`` through its file; clears an old hit marker and release file first."""
    parse_action(action, where=f"arm({name!r})")
    if not _NAME_RE.match(name):
        raise FailpointError(f"bad failpoint name {name!r} (letters, digits, '_', '.', '-')")
    directory = failpoints_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (f"{name}.hit", f"{name}.release"):
        (directory / stale).unlink(missing_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(action, encoding="utf-8")
    os.replace(tmp, directory / name)  # whole action or none, never half a word


def disarm(state_dir: str | Path, name: str) -> None:
    """Remove the arming file of ``name`` (a point armed by the environment stays armed)."""
    (failpoints_dir(state_dir) / name).unlink(missing_ok=True)


def release(state_dir: str | Path | None, name: str) -> None:
    """Let every process paused at ``name`` go on (and any that pauses there later)."""
    directory = failpoints_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.release").touch()


def hits(state_dir: str | Path | None, name: str) -> list[dict[str, str]]:
    """The hits recorded for ``name``, oldest first: [{"pid": ..., "time": ..., "action": ...}]."""
    path = failpoints_dir(state_dir) / f"{name}.hit"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [dict(field.split("=", 1) for field in line.split())
            for line in text.splitlines() if line.strip()]


def wait_hit(state_dir: str | Path | None, name: str, timeout: float,
             count: int = 1) -> list[dict[str, str]]:
    """Wait until ``name`` has been hit ``count`` times; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = hits(state_dir, name)
        if len(found) >= count:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"failpoint {name!r} hit {len(found)} time(s), expected {count}, "
                f"within {timeout} s (marker {failpoints_dir(state_dir) / (name + '.hit')})")
        time.sleep(POLL_INTERVAL)
