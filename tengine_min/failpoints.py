"""Named fault points: no-ops unless armed, so a harness can stop a process at an exact step.

Every point is in the catalogue ``POINTS``: its process, the protocol point it stands for, and the
context its call sites pass (``failpoint("core.after_commit_before_ack", event=..., key=...,
job=...)``). A point is armed either by the environment,
``TENGINE_FAILPOINTS="name=action;name2=action?when=<event type>&job=<id>&nth=2&count=1"``, or by
a file ``<state dir>/failpoints/<name>`` holding the action (``pause``), or, with filters, a JSON
object (``{"action": "pause", "when": "start.job.job.tengine", "nth": 2}``). The file is read at
the point each time it is reached, so a harness can arm a point in a running system.

Actions:
    pause       block until the file ``<failpoints dir>/<name>.release`` exists
    sleep(ms)   sleep that many milliseconds
    exit(code)  leave the process at once with that exit code (``os._exit``: no cleanup)

Filters: ``when`` (the event type, for points whose context has ``event``), ``job`` (a job id; it
also matches the attempt ids ``<id>.<n>``), ``nth`` and ``count``. Arrivals that do not match pass
untouched. Matching arrivals are numbered 1, 2, ... across processes by appending one line each to
``<failpoints dir>/<name>.arrivals``; the action runs for numbers ``nth`` .. ``nth + count - 1``
(every one from ``nth`` on when ``count`` is None), the others pass.

Every hit that acted appends one JSON line (n, pid, time, action and the context) to
``<failpoints dir>/<name>.hit``, which a harness waits on, and logs one line. The failpoints dir
is ``<state dir>/failpoints`` when the point is given a state dir, else ``$TENGINE_FAILPOINTS_DIR``,
else ``<tmp>/tengine-failpoints``.

An unarmed point costs one environment lookup, plus one failed ``open`` when a state dir is given.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .logfmt import kv

ENV_VAR = "TENGINE_FAILPOINTS"
DIR_ENV_VAR = "TENGINE_FAILPOINTS_DIR"
SUBDIR = "failpoints"
POLL_INTERVAL = 0.02  # seconds between looks for the release file while paused

_ACTION_RE = re.compile(r"^\s*(pause|sleep|exit)\s*(?:\(\s*(-?\d+)\s*\))?\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

_default_logger = logging.getLogger("tengine_min.failpoints")


class FailpointError(ValueError):
    """An armed failpoint whose name, action or filter cannot be understood."""


# --- the catalogue -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One point of the catalogue."""

    name: str
    process: str  # the process that reaches it: "core" or "watcher"
    label: str  # the protocol point a process held there stands at (a coverage matrix column)
    doc: str
    context: tuple[str, ...]  # the keyword arguments every call site passes


POINTS: dict[str, Point] = {point.name: point for point in (
    Point("driver.after_connect", "core", "start: ssh connected, watcher not started",
          "The driver is connected (and logged in) and its command not yet sent; every attempt "
          "of a start or a kill.", ("job", "command")),
    Point("driver.before_kill", "core", "stop: kill decided, not sent",
          "Right after driver.after_connect on an attempt of a kill.", ("job",)),
    Point("core.after_commit_before_ack", "core", "core: event committed, not acked",
          "The core committed an event's transaction and has not acked its message yet.",
          ("event", "key", "job")),
    Point("watcher.before_record_started", "watcher", "start: job spawned, start not recorded",
          "The watchdog spawned the script and has not written started.json yet.", ("job",)),
    Point("watcher.before_pid_report", "watcher", "start: job spawned, pid not reported",
          "tengine-watcher run knows the script's PID and has not printed it yet (also on a "
          "duplicate start).", ("job",)),
    Point("watcher.after_kill", "watcher", "stop: kill sent, not reported",
          "tengine-watcher kill sent and recorded its signals and has printed nothing yet.",
          ("job",)),
    Point("watcher.before_publish_finished", "watcher", "end: job ended, result not published",
          "The watchdog recorded the script's result and has sent nothing yet.", ("job",)),
)}

# Filter -> the context key it reads.
FILTER_KEYS = {"when": "event", "job": "job"}


def point(name: str, *, where: str) -> Point:
    """The catalogue's point ``name``; FailpointError listing the known ones otherwise."""
    found = POINTS.get(name)
    if found is None:
        raise FailpointError(f"{where}: unknown failpoint {name!r} (known: "
                             f"{', '.join(sorted(POINTS))})")
    return found


# --- actions and arming --------------------------------------------------------------------------

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


@dataclass(frozen=True)
class Arming:
    """An armed point: its action, and which arrivals it acts on."""

    action: Action
    when: str | None = None
    job: str | None = None
    nth: int = 1
    count: int | None = None

    def matches(self, context: Mapping[str, object]) -> bool:
        if self.when is not None and context.get("event") != self.when:
            return False
        return self.job is None or job_matches(self.job, context.get("job"))

    def acts_on(self, n: int) -> bool:
        """Whether the ``n``-th matching arrival runs the action."""
        return n >= self.nth and (self.count is None or n < self.nth + self.count)

    def filters(self) -> dict[str, str | int]:
        """The filters that differ from "every arrival", as arm() takes them."""
        given = {"when": self.when, "job": self.job, "count": self.count}
        found: dict[str, str | int] = {key: value for key, value in given.items()
                                       if value is not None}
        if self.nth != 1:
            found["nth"] = self.nth
        return found


def job_matches(wanted: str, value: object) -> bool:
    """``wanted`` is the job ``value`` names: the same id, or an attempt ``<wanted>.<n>``."""
    if not isinstance(value, str):
        return False
    if value == wanted:
        return True
    attempt = value.removeprefix(wanted + ".")
    return attempt != value and attempt.isdigit()


def make_arming(name: str, action: str, *, where: str, when: object = None, job: object = None,
                nth: object = 1, count: object = None) -> Arming:
    """Check a point's arming against the catalogue; FailpointError says what and where."""
    known = point(name, where=where)
    first = _whole_number("nth", nth, where)
    if first is None:
        raise FailpointError(f"{where}: nth must be a whole number from 1, got None")
    return Arming(parse_action(action, where=where),
                  when=_filter_text("when", when, known, where),
                  job=_filter_text("job", job, known, where),
                  nth=first, count=_whole_number("count", count, where))


def _filter_text(option: str, value: object, known: Point, where: str) -> str | None:
    if value is None:
        return None
    key = FILTER_KEYS[option]
    if key not in known.context:
        raise FailpointError(
            f"{where}: failpoint {known.name!r} cannot filter by {option} (its context has no "
            f"{key!r}; its keys: {', '.join(known.context)})")
    if not isinstance(value, str) or not value.strip():
        raise FailpointError(f"{where}: {option} must be a non-empty string, got {value!r}")
    return value


def _whole_number(option: str, value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FailpointError(f"{where}: {option} must be a whole number from 1, got {value!r}")
    return value


_FILE_KEYS = ("action", "when", "job", "nth", "count")


def parse_file(text: str, name: str, *, where: str) -> Arming:
    """An arming file: just an action (``pause``), or a JSON object with the filters."""
    if not text.lstrip().startswith("{"):
        return make_arming(name, text, where=where)
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FailpointError(f"{where}: not a JSON object: {exc}") from None
    if not isinstance(fields, dict):
        raise FailpointError(f"{where}: not a JSON object")
    unknown = sorted(set(fields) - set(_FILE_KEYS))
    if unknown:
        raise FailpointError(f"{where}: unknown key(s) {', '.join(unknown)} (expected "
                             f"{', '.join(_FILE_KEYS)})")
    action = fields.pop("action", None)
    if not isinstance(action, str):
        raise FailpointError(f"{where}: 'action' must be a string such as \"pause\", "
                             f"got {action!r}")
    return make_arming(name, action, where=where, **fields)


def parse_env(value: str) -> dict[str, Arming]:
    """Parse the ``TENGINE_FAILPOINTS`` value into {name: arming}.

    Entries ``name=action`` or ``name=action?when=<event type>&job=<id>&nth=<n>&count=<n>``,
    separated by ``;``.
    """
    armed: dict[str, Arming] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not sep or not _NAME_RE.match(name):
            raise FailpointError(
                f"{ENV_VAR}: cannot read {item.strip()!r} (expected name=action; entries "
                "separated by ';')")
        where = f"{ENV_VAR} entry {name!r}"
        action, _, query = rest.partition("?")
        armed[name] = make_arming(name, action, where=where, **_env_filters(query, where))
    return armed


def _env_filters(query: str, where: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for pair in query.split("&") if query.strip() else ():
        key, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or key not in ("when", "job", "nth", "count"):
            raise FailpointError(f"{where}: cannot read filter {pair.strip()!r} (expected "
                                 "when=, job=, nth= or count=, joined by '&')")
        if key in found:
            raise FailpointError(f"{where}: filter {key!r} given twice")
        if key in ("nth", "count"):
            if not text.isdigit():
                raise FailpointError(f"{where}: {key} must be a whole number, got {text!r}")
            found[key] = int(text)
        else:
            found[key] = text
    return found


_env_cache: tuple[str, dict[str, Arming]] | None = None


def _armed_by_env(name: str) -> Arming | None:
    global _env_cache
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    if _env_cache is None or _env_cache[0] != value:
        _env_cache = (value, parse_env(value))
    return _env_cache[1].get(name)


def failpoints_dir(state_dir: str | Path | None) -> Path:
    """Where arming files, arrivals, hit markers and release files of a point live."""
    if state_dir is not None:
        return Path(state_dir) / SUBDIR
    env_dir = os.environ.get(DIR_ENV_VAR)
    if env_dir:
        return Path(env_dir)
    return Path(tempfile.gettempdir()) / "tengine-failpoints"


def _armed_by_file(name: str, state_dir: str | Path) -> Arming | None:
    path = Path(state_dir) / SUBDIR / name
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parse_file(text, name, where=str(path))


# --- the point -----------------------------------------------------------------------------------

def failpoint(name: str, *, state_dir: str | Path | None = None,
              logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
              **context: object) -> None:
    """Run the armed action of point ``name`` if this arrival is one it acts on; else nothing.

    ``context`` is what the call site knows (the catalogue's ``POINTS[name].context``): the
    filters read it and the hit marker records it. The environment wins over a file when both
    arm the same point.
    """
    arming = _armed_by_env(name)
    if arming is None and state_dir is not None:
        arming = _armed_by_file(name, state_dir)
    if arming is None or not arming.matches(context):
        return
    directory = failpoints_dir(state_dir)
    log = logger or _default_logger
    n = _arrive(directory, name)
    if not arming.acts_on(n):
        log.debug("failpoint passed %s", kv(name=name, n=n, pid=os.getpid(), **context))
        return
    _hit(name, arming.action, n, context, directory, log)


def _append(fd: int, line: bytes) -> None:
    # One write on an O_APPEND descriptor: lines of several processes never interleave.
    if os.write(fd, line) != len(line):
        raise OSError(f"failpoint: short write of {line!r}")


def _arrive(directory: Path, name: str) -> int:
    """This arrival's number among the matching arrivals of every process, from 1.

    Each arrival appends one unique line, then reads the file back through the same descriptor
    (so a re-arm that removes the file meanwhile cannot lose the line): the line's position is
    its number, whatever the other processes do at the same time.
    """
    directory.mkdir(parents=True, exist_ok=True)
    token = f"{uuid.uuid4().hex} pid={os.getpid()}\n".encode()
    fd = os.open(directory / f"{name}.arrivals", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _append(fd, token)
        chunks = []
        offset = 0
        while chunk := os.pread(fd, 65536, offset):
            chunks.append(chunk)
            offset += len(chunk)
    finally:
        os.close(fd)
    lines = b"".join(chunks).splitlines(keepends=True)
    return lines.index(token) + 1


def _hit(name: str, action: Action, n: int, context: Mapping[str, object], directory: Path,
         logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    pid = os.getpid()
    record: dict[str, object] = {"n": n, "pid": pid, "time": f"{time.time():.6f}",
                                 "action": str(action)}
    record.update((key, str(value)) for key, value in context.items() if value is not None)
    fd = os.open(directory / f"{name}.hit", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _append(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)
    logger.info("failpoint hit %s", kv(name=name, action=action, pid=pid, n=n, **context))
    if action.kind == "sleep":
        time.sleep((action.arg or 0) / 1000.0)
    elif action.kind == "exit":
        logging.shutdown()  # flush our log lines; os._exit skips it
        os._exit(action.arg or 0)
    elif action.kind == "pause":
        release = directory / f"{name}.release"
        while not release.exists():
            time.sleep(POLL_INTERVAL)
        logger.info("failpoint released %s", kv(name=name, pid=pid, n=n))


# --- helpers for a harness (and tests) that drives the points of another process ---------------

def arm(state_dir: str | Path, name: str, action: str, *, when: str | None = None,
        job: str | None = None, nth: int = 1, count: int | None = None) -> None:
    """Arm point ``name`` through its file, for the arrivals the filters choose.

    Clears the point's old arrivals, hit marker and release file first. Without filters the file
    holds just the action, as a person would write it; with filters, a JSON object.
    """
    arming = make_arming(name, action, where=f"arm({name!r})", when=when, job=job, nth=nth,
                         count=count)
    directory = failpoints_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (f"{name}.arrivals", f"{name}.hit", f"{name}.release"):
        (directory / stale).unlink(missing_ok=True)
    filters = arming.filters()
    text = json.dumps({"action": str(arming.action), **filters}) if filters else action
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, directory / name)  # whole arming or none, never half a word


def disarm(state_dir: str | Path, name: str) -> None:
    """Remove the arming file of ``name`` (a point armed by the environment stays armed)."""
    (failpoints_dir(state_dir) / name).unlink(missing_ok=True)


def release(state_dir: str | Path | None, name: str) -> None:
    """Let every process paused at ``name`` go on (and any that pauses there later)."""
    directory = failpoints_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.release").touch()


def hits(state_dir: str | Path | None, name: str) -> list[dict[str, str]]:
    """The hits that acted at ``name``, oldest first: [{"n", "pid", "time", "action", and the
    context keys the call site passed}], every value a string."""
    path = failpoints_dir(state_dir) / f"{name}.hit"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [_hit_fields(line, path) for line in text.splitlines() if line.strip()]


def _hit_fields(line: str, path: Path) -> dict[str, str]:
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FailpointError(f"{path}: not a hit record {line!r}: {exc}") from None
    if not isinstance(record, dict):
        raise FailpointError(f"{path}: not a hit record {line!r}")
    return {str(key): str(value) for key, value in record.items()}


def wait_hit(state_dir: str | Path | None, name: str, timeout: float,
             count: int = 1) -> list[dict[str, str]]:
    """Wait until ``name`` has acted ``count`` times; raise TimeoutError after ``timeout`` s."""
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
