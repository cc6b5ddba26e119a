"""What a person would look at, read by the harness: the console's JSON API, the bus, the watcher
log on a server (through testinfra over its sshd), and the core log.

- `ConsoleClient`: the console's JSON API (`/api/executions`, `/api/events`, run, stop).
- `RunView`: one execution seen through the console: `job(path)`, `wait_for_job(path, phase=)`,
  `events()`.
- `PhasePoller`: records every phase or reason change of the watched executions in the timeline.
- `BusRecorder`: a consumer on its own queue bound to Tengine's exchange, so it sees a copy of
  every event and never takes one from the core.
- `WatcherLog`: the watcher log of a server read over ssh with testinfra (paramiko backend, the
  host key pinned); `CoreLog`: the core's log file.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
import pika
import requests
from pika.exceptions import AMQPError

from tengine_min.bus import topology

from .report import Timeline
from .waiting import wait_for

FINAL_PHASES = {"success", "error", "stuck"}  # a job leaves them only by a rerun


# --- the console's JSON API ---------------------------------------------------------------------


class ConsoleError(RuntimeError):
    """The console answered with an error, or did not answer."""


class ConsoleClient:
    """The console's JSON API at ``url`` (e.g. http://127.0.0.1:8180)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout,
                                            **kwargs)
        except requests.RequestException as exc:
            raise ConsoleError(f"{method} {path}: the console at {self.url} did not answer: "
                               f"{exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:500]
            raise ConsoleError(f"{method} {path}: {response.status_code} {detail}")
        return response.json() if response.content else None

    def answers(self) -> bool:
        try:
            self.get("/api/jobnets")
            return True
        except ConsoleError:
            return False

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class JobView:
    """A job (or jobnet) as the console's monitor shows it."""

    id: str
    name_path: str
    kind: str
    phase: str
    label: str  # Japanese label, refined by the stop reason
    reason: str  # "" when none
    pid: int | None
    exit_status: int | None
    signal: str | None
    stop_reason: str | None
    late_result: Any
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, vertex: dict[str, Any]) -> JobView:
        label = vertex.get("phase_label") or {}
        return cls(id=vertex["id"], name_path=vertex["name_path"], kind=vertex.get("kind", ""),
                   phase=vertex["phase"], label=label.get("ja", ""),
                   reason=vertex.get("reason") or "", pid=vertex.get("pid"),
                   exit_status=vertex.get("exit_status"), signal=vertex.get("signal"),
                   stop_reason=vertex.get("stop_reason"), late_result=vertex.get("late_result"),
                   raw=vertex)

    def summary(self) -> str:
        parts = [f"{self.name_path}={self.phase}"]
        if self.pid is not None:
            parts.append(f"pid={self.pid}")
        if self.exit_status is not None:
            parts.append(f"exit={self.exit_status}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        return " ".join(parts)

    def as_row(self) -> dict[str, Any]:
        return {"name_path": self.name_path, "phase": self.phase, "label": self.label,
                "pid": self.pid, "exit_status": self.exit_status, "signal": self.signal,
                "reason": self.reason, "late_result": self.late_result}


def event_summary(row: dict[str, Any]) -> str:
    """What the event screen shows under a row: the target's path, exit status, signal, stop
    reason and message."""
    props = row.get("properties") or {}
    parts = []
    target = (props.get("target_job_name_path") or props.get("target_jobnet_name_path")
              or props.get("root_jobnet_name_path"))
    if target:
        parts.append(str(target))
    for key in ("exit_status", "signal", "stop_reason"):
        if props.get(key) is not None:
            parts.append(f"{key}={props[key]}")
    if props.get("message"):
        parts.append(" ".join(str(props["message"]).split()))
    return " ".join(parts)


class EventList(list):
    """Event rows (dicts) with the questions a scenario asks of them."""

    def of_type(self, event_type: str) -> EventList:
        return EventList(r for r in self if r.get("event_type_name") == event_type)

    def about(self, job: JobView | str) -> EventList:
        job_id = job.id if isinstance(job, JobView) else job
        return EventList(r for r in self if _names_job(r, job_id))

    def has(self, event_type: str, job: JobView | str | None = None) -> bool:
        found = self.of_type(event_type)
        return bool(found if job is None else found.about(job))

    def types(self) -> list[str]:
        return [r.get("event_type_name", "") for r in self]


def _names_job(row: dict[str, Any], job_id: str) -> bool:
    props = row.get("properties") or {}
    return job_id in (row.get("job_id"), props.get("target_job_id"), props.get("job_id"))


class RunView:
    """One execution, as a person sees it on the console."""

    def __init__(self, console: ConsoleClient, execution_id: str, timeline: Timeline,
                 poller: PhasePoller | None = None) -> None:
        self.console = console
        self.execution_id = execution_id
        self.timeline = timeline
        self.poller = poller
        self._root_jobnet_id: str | None = None

    def __repr__(self) -> str:
        return f"RunView({self.execution_id})"

    def execution(self) -> dict[str, Any]:
        if self.poller is not None:
            # Through the poller, so what the test saw is on the timeline before it acts on
            # it: a fault injected once "the job is running" comes after that phase.
            return self.poller.fetch(self.execution_id)
        return self.console.get(f"/api/executions/{self.execution_id}")

    @property
    def root_jobnet_id(self) -> str:
        if self._root_jobnet_id is None:
            self._root_jobnet_id = self.execution()["root_jobnet_id"]
        return self._root_jobnet_id

    def jobs(self) -> list[JobView]:
        return [JobView.of(v) for v in self.execution()["vertices"]]

    def job(self, name_path: str) -> JobView:
        for job in self.jobs():
            if job.name_path == name_path:
                return job
        raise AssertionError(f"execution {self.execution_id} has no job {name_path!r} "
                             f"(it has {[j.name_path for j in self.jobs()]})")

    def phases(self) -> str:
        try:
            detail = self.execution()
        except ConsoleError as exc:
            return f"(console: {exc})"
        return "; ".join([f"execution={detail['phase']}"]
                         + [JobView.of(v).summary() for v in detail["vertices"]])

    # -- a person's force stop (強制停止), as the console's buttons send it --

    def stop_job(self, job: JobView) -> None:
        self._stop(f"/api/jobs/{job.id}/stop", f"job {job.name_path}")

    def stop_jobnet(self, jobnet: JobView) -> None:
        self._stop(f"/api/jobnets/{jobnet.id}/stop", f"jobnet {jobnet.name_path}")

    def stop_execution(self) -> None:
        self._stop(f"/api/executions/{self.execution_id}/stop", "root jobnet")

    def _stop(self, path: str, what: str) -> None:
        # Written first: the stop's effects can reach the timeline before the POST returns.
        self.timeline.add("action", f"force stop of {what} (強制停止)", source="console")
        self.console.post(path)

    def wait_for_job(self, name_path: str, *, phase: str | Iterable[str],
                     timeout: float = 60.0,
                     check: Callable[[JobView], bool] | None = None) -> JobView:
        """Wait until the job is in ``phase`` (one or several) and ``check`` holds."""
        wanted = {phase} if isinstance(phase, str) else set(phase)

        def reached() -> JobView | None:
            try:
                job = self.job(name_path)
            except (AssertionError, ConsoleError):
                return None
            if job.phase in wanted and (check is None or check(job)):
                return job
            if job.phase in FINAL_PHASES and job.phase not in wanted:
                # Nothing moves a finished job by itself: say so now, not at the deadline.
                raise AssertionError(
                    f"{name_path} ended {job.phase}, not {'/'.join(sorted(wanted))}: "
                    f"{job.summary()}\ntimeline:\n{self.timeline.as_text(last=40)}")
            return None

        return wait_for(reached, timeout=timeout,
                        what=f"{name_path} to be {'/'.join(sorted(wanted))}",
                        last_seen=self.phases, timeline=self.timeline)

    def wait_for_execution(self, phase: str | Iterable[str], timeout: float = 60.0) -> dict:
        wanted = {phase} if isinstance(phase, str) else set(phase)
        return wait_for(lambda: (d := self.execution())["phase"] in wanted and d,
                        timeout=timeout, what=f"execution {self.execution_id} to be "
                                              f"{'/'.join(sorted(wanted))}",
                        last_seen=self.phases, timeline=self.timeline)

    def events(self, **filters: Any) -> EventList:
        """The execution's events as the event screen lists them (newest first): Tengine's
        メッセージ一覧 filter, source ``/<root jobnet id>/``."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.console.get("/api/events", source=f"/{self.root_jobnet_id}/",
                                      per_page=500, page=page, **filters)
            rows += answer["items"]
            if page >= answer["pages"]:
                return EventList(rows)
            page += 1

    def wait_for_event(self, event_type: str, job: JobView | str | None = None,
                       timeout: float = 30.0) -> EventList:
        return wait_for(lambda: self.events().has(event_type, job) and self.events(),
                        timeout=timeout, what=f"event {event_type}"
                                              + (f" about {job}" if job else ""),
                        last_seen=lambda: ", ".join(self.events().types()),
                        timeline=self.timeline)


class PhasePoller:
    """Polls the watched executions and puts every phase or reason change in the timeline."""

    def __init__(self, console: ConsoleClient, timeline: Timeline, interval: float = 0.2) -> None:
        self.console = console
        self.timeline = timeline
        self.interval = interval
        self._watched: list[str] = []
        self._seen: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phase-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, execution_id: str) -> None:
        with self._lock:
            self._watched.append(execution_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll_once()  # the final states too

    def poll_once(self) -> None:
        with self._lock:
            watched = list(self._watched)
        for execution_id in watched:
            try:
                self.fetch(execution_id)
            except ConsoleError:
                continue  # console down (a fault): the next poll catches up

    def fetch(self, execution_id: str) -> dict[str, Any]:
        """``/api/executions/{id}``, its changes noted. The poller's looks and the test's
        go one at a time, so an older answer is never noted after a newer one."""
        with self._fetch_lock:
            detail = self.console.get(f"/api/executions/{execution_id}")
            self._record(detail, execution_id)
            return detail

    def _record(self, detail: dict[str, Any], execution_id: str) -> None:
        label = detail.get("status_label") or detail.get("phase_label") or {}
        self._note(execution_id, "execution", detail["phase"], label.get("ja", ""), "")
        for vertex in detail["vertices"]:
            job = JobView.of(vertex)
            what = f"{job.kind or 'job'} {job.name_path}"  # coverage.py reads the kind
            self._note(execution_id, what, job.phase, job.label, job.reason)

    def _note(self, execution_id: str, what: str, phase: str, label: str, reason: str) -> None:
        key = (execution_id, what)
        text = f"{what} {phase} ({label})" + (f" reason={reason!r}" if reason else "")
        with self._lock:  # the poller's thread and the test's both note: one entry per change
            if self._seen.get(key) == (phase, reason):
                return
            self._seen[key] = (phase, reason)
            self.timeline.add("phase", text, source="console")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()


# --- the bus --------------------------------------------------------------------------------------


class BusRecorder:
    """Records every event published to Tengine's exchange, on a queue of its own.

    The queue is durable and bound with Tengine's routing key, so it gets a copy of each message
    the core's queue gets, keeps them while the broker restarts, and never steals one from the
    core. The recorder reconnects after the broker comes back; it deletes its queue at `stop()`.
    """

    def __init__(self, url: str, timeline: Timeline, heartbeat_interval: float = 1.0) -> None:
        self.url = url
        self.timeline = timeline
        self.heartbeat_interval = heartbeat_interval
        self.queue = f"harness.recorder.{uuid.uuid4().hex[:12]}"
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last_heartbeat: dict[str, float] = {}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-recorder", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        if not self._connected.wait(timeout):
            raise RuntimeError(f"the bus recorder could not connect to the broker within "
                               f"{timeout:g} s")

    def received(self, event_type: str | None = None) -> EventList:
        with self._lock:
            rows = list(self.events)
        return EventList(r for r in rows if event_type is None
                         or r.get("event_type_name") == event_type)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:  # remove our queue; the broker may be down (a fault) and then it stays with it
            connection = pika.BlockingConnection(topology.connection_parameters(self.url, 3))
            try:
                connection.channel().queue_delete(self.queue)
            finally:
                connection.close()
        except (AMQPError, OSError):
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except (AMQPError, OSError) as exc:
                if self._connected.is_set():
                    self.timeline.add("note", f"bus recorder disconnected: "
                                              f"{type(exc).__name__}", source="harness")
                self._connected.clear()
                self._stop.wait(0.5)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(topology.connection_parameters(self.url, 3))
        try:
            channel = connection.channel()
            topology.declare(channel)
            channel.queue_declare(self.queue, durable=True)
            channel.queue_bind(self.queue, topology.EXCHANGE_NAME,
                               routing_key=topology.ROUTING_KEY)
            channel.basic_consume(self.queue, self._on_message, auto_ack=True)
            self._connected.set()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.2)
        finally:
            if connection.is_open:
                try:
                    connection.close()
                except (AMQPError, OSError):
                    pass

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            self.timeline.add("event", f"unreadable message {body[:80]!r}", source="bus")
            return
        with self._lock:
            self.events.append(event)
        name = event.get("event_type_name", "?")
        if name.endswith(".heartbeat.tengine"):
            text = self._heartbeat_text(event)
            if text is None:
                return  # a regular heartbeat: not worth a line
        else:
            text = f"{name} level={event.get('level')} {event_summary(event)}".rstrip()
        self.timeline.add("event", text, source="bus")

    def _heartbeat_text(self, event: dict[str, Any]) -> str | None:
        """A line for the first heartbeat of a series and after a gap; None otherwise."""
        key = str(event.get("key"))
        now = time.time()
        last = self._last_heartbeat.get(key)
        self._last_heartbeat[key] = now
        name = event.get("event_type_name")
        if last is None:
            return f"{name} (first of key {key[:8]})"
        gap = now - last
        if gap > 2.5 * self.heartbeat_interval:
            return f"{name} after a gap of {gap:.1f} s"
        return None


# --- the watcher log on a server, through testinfra ---------------------------------------------


def pinned_testinfra_host(hostspec: str, *, known_hosts: Path, key_file: Path,
                          timeout: int = 5) -> Any:
    """A testinfra host over its paramiko backend, with the host key pinned (RejectPolicy and a
    known_hosts file) instead of the backend's default WarningPolicy, and the key file given
    explicitly. testinfra is a test dependency: imported here, when first needed."""
    import testinfra.host
    from testinfra.backend.paramiko import ParamikoBackend

    class PinnedParamikoBackend(ParamikoBackend):
        @functools.cached_property
        def client(self) -> paramiko.SSHClient:  # type: ignore[override]
            client = paramiko.SSHClient()
            client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(hostname=self.host.name, port=int(self.host.port or 22),
                           username=self.host.user, key_filename=str(key_file),
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                           allow_agent=False, look_for_keys=False)
            return client

    return testinfra.host.Host(PinnedParamikoBackend(hostspec, timeout=timeout))


_LOG_LINE = re.compile(r"^(\S+) (\S+) tengine\.watcher (.*)$")


@dataclass(frozen=True)
class LogLines:
    """Watcher log lines (of one job, or all), with the questions a scenario asks."""

    lines: tuple[str, ...]
    where: str  # which server and file, for messages

    def facts(self) -> list[str]:
        """The fact of each line: its words before the first key=value."""
        out = []
        for line in self.lines:
            match = _LOG_LINE.match(line)
            rest = match.group(3) if match else line
            words = []
            for word in rest.split():
                if "=" in word:
                    break
                words.append(word)
            out.append(" ".join(words))
        return out

    def has(self, fact: str) -> bool:
        return fact in self.facts()

    def lacks(self, fact: str) -> bool:
        return not self.has(fact)

    def count(self, fact: str) -> int:
        return self.facts().count(fact)

    def __str__(self) -> str:
        return f"{self.where}:\n" + ("\n".join(self.lines) or "(no lines)")


def line_time(line: str) -> float | None:
    """The wall time at the start of a watcher log line, or None."""
    match = _LOG_LINE.match(line)
    if not match:
        return None
    try:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class WatcherLog:
    """The watcher log of one server: read over the server's sshd with testinfra, as a person
    would `ssh` in and look; from the server's disk when it is down or cut off (said so in
    `source`)."""

    def __init__(self, host: Any, known_hosts: Path, disk_path: Path | None = None) -> None:
        self.host = host
        self.known_hosts = known_hosts
        self.disk_path = disk_path  # the same file, seen from the harness (local backend)
        self.path = str(PurePosixPath(host.state_dir) / "log" / "watcher.log")
        self.source = ""

    def read(self) -> list[str]:
        reachable = getattr(self.host, "is_up", True) and not getattr(self.host, "partitioned",
                                                                      False)
        if reachable:
            shell = pinned_testinfra_host(
                f"{self.host.user}@{self.host.address}:{self.host.ssh_port}",
                known_hosts=self.known_hosts, key_file=Path(self.host.key_file))
            try:
                found = shell.file(self.path)
                self.source = f"ssh {self.host.user}@{self.host.address}:{self.path}"
                text = found.content_string if found.exists else ""
                return text.splitlines()
            except (paramiko.SSHException, OSError) as exc:
                self.source = f"(ssh failed: {exc})"
            finally:
                if "client" in shell.backend.__dict__:
                    shell.backend.client.close()
        if self.disk_path is not None:
            self.source = f"disk of {self.host.name} (host down or cut off): {self.disk_path}"
            try:
                return self.disk_path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                return []
        raise AssertionError(f"cannot read the watcher log of {self.host.name}: {self.source}")

    def lines_for(self, job: JobView | str) -> LogLines:
        """The lines about one job: ``job_id=<id>`` or ``job_id=<id>.<attempt>``."""
        job_id = job.id if isinstance(job, JobView) else job
        pattern = re.compile(rf"\bjob_id={re.escape(job_id)}(\.\d+)?(\s|$)")
        lines = tuple(line for line in self.read() if pattern.search(line))
        return LogLines(lines, f"watcher log of {self.host.name} ({self.source}), job {job_id}")

    def wait_for(self, job: JobView | str, fact: str, *, timeout: float = 30.0,
                 timeline: Timeline | None = None) -> LogLines:
        return wait_for(lambda: (found := self.lines_for(job)).has(fact) and found,
                        timeout=timeout, what=f"a {fact!r} line in the watcher log of "
                                              f"{self.host.name}",
                        last_seen=lambda: str(self.lines_for(job)), timeline=timeline,
                        interval=0.3)


class CoreLog:
    """The core's log file (`<state dir>/log/core.log`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        try:
            return self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in self.lines() if regex.search(line)]

    def wait_for(self, pattern: str, *, timeout: float = 30.0, count: int = 1,
                 timeline: Timeline | None = None) -> list[str]:
        return wait_for(lambda: len(found := self.matching(pattern)) >= count and found,
                        timeout=timeout, what=f"{count} core log line(s) matching {pattern!r}",
                        last_seen=lambda: "\n".join(self.lines()[-10:]), timeline=timeline)
