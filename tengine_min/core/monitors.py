"""The core's monitors: heartbeat expiry (Tengine's tengine_heartbeat_watchd) and a host monitor.

Both only fire events into the outbox; the kernel handles them like any other event, so the
job's phase is decided in the kernel's transaction, and a job whose finished event is already on
the queue (ahead of the verdict) is not mistaken for a lost one.

**Heartbeat expiry.** A running or dying job whose watcher has been silent for `expiry` seconds
gets `expired.job.heartbeat.tengine` (level error, the key of its heartbeat series, as Tengine)
with the reason `watcher lost: no heartbeat for N s; ...`. Silence is measured on the core's own
clock, from the moment this monitor saw the job's heartbeat change (so a host clock that is off
does not matter), and only while the core is connected to the broker: while the consumer is
disconnected nothing expires, and after each (re)connect every job's clock starts again, since a
heartbeat the core could not hear proves nothing. A job whose server is failing the host checks
is left to the host monitor, whose verdict says more.

**Host monitor.** Every `host_check_interval` seconds each server with running jobs (and each
server it marked down) is checked: a TCP connect to the ssh port of its address, which must
answer with the sshd's banner (a proxy or NAT in between accepts connects alone). A server that
fails `host_down_after` checks in a row is marked down: `down.server.tengine` (level error) and,
for each of its running jobs whose heartbeat has also been silent since the first failed check,
`expired.job.heartbeat.tengine` with the reason `server s1 went down: ...`. A job whose heartbeat
still arrives is alive (only the core's way to the host is cut, not the host's way to the queue):
it gets no verdict and stays under heartbeat expiry. When it answers again: `up.server.tengine`
(info).

**A verdict can be overtaken.** Each verdict carries the job's `last_heartbeat_at` as the monitor
read it; the kernel ignores the verdict when a newer heartbeat was recorded while the verdict sat
in the queue (handlers/results.py, on_heartbeat_expired). Servers on the `local` transport
are this machine: they are up while the core runs, and are not checked.

What happened on the host is asked afterwards by core/reconcile.py (`on_expired`, `on_down`,
`on_up` are its hooks).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from ..config import Settings
from ..events import names as ev
from ..events.envelope import Event
from ..logfmt import kv
from ..model import phases as ph
from ..model.execution import SCRIPT_KINDS
from ..resources import Resources, Server, UnknownResource
from ..store import repo
from ..store.db import write_transaction
from ..store.schema import events, vertices
from .identity import CoreIdentity

# Ours, in Tengine's `<what happened>.<about what>.tengine` pattern (docs/decisions.md).
SERVER_DOWN = "down.server.tengine"
SERVER_UP = "up.server.tengine"

WATCHER_LOST = "watcher lost"
# Phases in which a job has a watcher that should be beating.
WATCHED = (ph.RUNNING, ph.DYING)
HOST_DOWN_AFTER = 3  # failed checks in a row
MAX_PARALLEL_PROBES = 8

Probe = Callable[[Server], "str | None"]  # None: the server answered; else why it did not


@dataclass(frozen=True)
class MonitorSettings:
    """The monitors' times. `heartbeat_expiry` 0 turns expiry off (as does a heartbeat interval
    of 0: watchers then send none); `host_check_interval` 0 turns the host monitor off."""

    heartbeat_expiry: float = 20.0
    expiry_check_interval: float = 1.0
    host_check_interval: float = 5.0
    host_down_after: int = HOST_DOWN_AFTER
    host_check_timeout: float = 3.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitorSettings:
        """Expiry from the heartbeat settings; a host is checked once per heartbeat interval
        and is down after 3 failed checks, so it is found down before its jobs' heartbeats
        expire (Tengine's 5 s and 20 s: down within 15 s, expiry at 20 s)."""
        expiry = settings.heartbeat_expiry if settings.heartbeat_interval > 0 else 0.0
        interval = settings.heartbeat_interval or 5.0
        return cls(heartbeat_expiry=expiry,
                   expiry_check_interval=min(1.0, max(0.05, expiry / 8)) if expiry else 1.0,
                   host_check_interval=interval,
                   host_down_after=HOST_DOWN_AFTER,
                   host_check_timeout=min(3.0, interval))


# --- reading and firing -------------------------------------------------------------------------

def watched_jobs(conn: Connection, server_name: str | None = None) -> list[Row]:
    """Jobs that are running or dying (of one server, when given)."""
    query = select(vertices).where(vertices.c.phase.in_(WATCHED),
                                   vertices.c.kind.in_(SCRIPT_KINDS))
    if server_name is not None:
        query = query.where(vertices.c.server_name == server_name)
    return list(conn.execute(query.order_by(vertices.c.id)))


def heartbeat_marker(job: Row) -> tuple:
    """What changes when a job's watcher beats (or the job is run again)."""
    return (job.attempt, job.heartbeat_key, job.last_heartbeat_at)


def job_event_properties(conn: Connection, job: Row) -> dict[str, Any]:
    """Tengine's common properties of a job event, plus the run (`attempt`) it is about."""
    execution = repo.require_execution(conn, job.execution_id)
    parent = repo.get_vertex(conn, job.parent_id) if job.parent_id else None
    return {"execution_id": execution.id,
            "root_jobnet_id": execution.root_jobnet_id,
            "root_jobnet_name_path": "/" + execution.root_jobnet_name,
            "target_jobnet_id": parent.id if parent else None,
            "target_jobnet_name_path": parent.name_path if parent else None,
            "target_job_id": job.id, "target_job_name_path": job.name_path,
            "attempt": job.attempt, "server_name": job.server_name}


def expired_event(conn: Connection, job: Row, *, message: str, now: datetime,
                  identity: CoreIdentity, **extra: Any) -> Event:
    """`expired.job.heartbeat.tengine` for `job`: the key, source and sender of its heartbeat
    series when it has one (Tengine's heartbeat watcher does the same), else the core's."""
    source = sender = None
    key = job.heartbeat_key
    if key:
        row = conn.execute(select(events.c.source_name, events.c.sender_name)
                           .where(events.c.key == key).limit(1)).first()
        if row is not None:
            source, sender = row.source_name, row.sender_name
    execution = repo.require_execution(conn, job.execution_id)
    core = f"{identity.host}/{identity.pid}"
    props = job_event_properties(conn, job)
    # Its own identity: the key is the series', and a job may get a later verdict too.
    props.update(message=message, verdict_id=uuid.uuid4().hex, **extra)
    fields: dict[str, Any] = {"key": key} if key else {}
    return Event(ev.EXPIRED_JOB_HEARTBEAT,
                 source_name=source or f"job:{core}/{execution.root_jobnet_id}/{job.id}",
                 sender_name=sender or f"tengined:{core}",
                 occurred_at=now.isoformat(timespec="microseconds"), level="error",
                 properties=props, **fields)


def watcher_lost_reason(seconds: float, phase: str) -> str:
    doing = " while it was being stopped" if phase == ph.DYING else ""
    unknown = ("whether the kill ended it is unknown" if phase == ph.DYING
               else "whether the script still runs and how it ends is unknown")
    return f"{WATCHER_LOST}: no heartbeat for {seconds:.0f} s{doing}; {unknown}"


def server_down_reason(server: str, checks: int, error: str) -> str:
    return (f"server {server} went down: no answer to {checks} checks in a row ({error}); "
            f"whether the script still runs and how it ends is unknown")


# --- heartbeat expiry ---------------------------------------------------------------------------

class HeartbeatMonitor:
    """`check()` once per `expiry_check_interval`; `connected()` at each (re)connect of the
    consumer. Silence is measured with `monotonic` (a wall clock that is set back or forward
    must not expire or spare every job); `clock` stamps the events. Tests give fake ones."""

    def __init__(self, engine: Engine, *, expiry: float, identity: CoreIdentity,
                 log: logging.Logger, is_connected: Callable[[], bool],
                 clock: Callable[[], datetime] = repo.utcnow,
                 monotonic: Callable[[], float] = time.monotonic,
                 unhealthy_servers: Callable[[], set[str]] = set,
                 notify: Callable[[], None] = lambda: None,
                 on_expired: Callable[[list[str]], None] = lambda job_ids: None) -> None:
        self.engine = engine
        self.expiry = expiry
        self.identity = identity
        self.log = log
        self.is_connected = is_connected
        self.clock = clock
        self.monotonic = monotonic
        self.unhealthy_servers = unhealthy_servers
        self.notify = notify
        self.on_expired = on_expired
        self._lock = threading.Lock()
        self._connected_since: float | None = None
        # job id -> (what its heartbeat looked like, when this monitor saw it change)
        self._seen: dict[str, tuple[tuple, float]] = {}
        self._fired: dict[str, int] = {}  # job id -> attempt already declared lost

    def connected(self) -> None:
        """The consumer (re)connected: every job's silence counts from now."""
        with self._lock:
            self._connected_since = self.monotonic()
        self.log.info("heartbeat clocks restarted %s", kv(reason="connected to the broker"))

    def check(self) -> list[Event]:
        """One pass: fire the expiry of every job silent for `expiry` s. Returns the events."""
        if self.expiry <= 0:
            return []
        now = self.monotonic()
        with self._lock:
            if not self.is_connected():
                if self._connected_since is not None:
                    self.log.info("heartbeat clocks paused %s",
                                  kv(reason="the core is not connected to the broker"))
                self._connected_since = None
                return []
            if self._connected_since is None:  # connected() was not called: start now
                self._connected_since = now
            since_connect = self._connected_since
        try:
            with self.engine.connect() as conn:
                jobs = watched_jobs(conn)
        except Exception:
            # The store is unreachable: the kernel cannot record heartbeats either, so the
            # silence from now on proves nothing; count it again once the store answers.
            with self._lock:
                self._connected_since = None
            raise
        due = self._silent_jobs(jobs, now, since_connect)
        if not due:
            return []
        fired = self._fire(due, self.clock())
        if fired:
            self.notify()
            self.on_expired([e.properties["target_job_id"] for e in fired])
        return fired

    def _silent_jobs(self, jobs: list[Row], now: float,
                     since_connect: float) -> dict[str, float]:
        """job id -> seconds of silence, for the jobs that are due."""
        unhealthy = self.unhealthy_servers()
        due: dict[str, float] = {}
        live = set()
        for job in jobs:
            live.add(job.id)
            marker = heartbeat_marker(job)
            seen = self._seen.get(job.id)
            if seen is None or seen[0] != marker:
                self._seen[job.id] = (marker, now)
                # It beat: a verdict fired before was overtaken (the kernel ignored it), so
                # a new silence may be declared again.
                self._fired.pop(job.id, None)
                continue
            silent = now - max(seen[1], since_connect)
            if silent < self.expiry or self._fired.get(job.id) == job.attempt:
                continue
            if job.server_name in unhealthy:
                continue  # the host monitor is about to say more than "watcher lost"
            due[job.id] = silent
        for gone in set(self._seen) - live:
            del self._seen[gone]
        for gone in set(self._fired) - live:
            del self._fired[gone]
        return due

    def _fire(self, due: dict[str, float], now: datetime) -> list[Event]:
        fired: list[Event] = []
        with write_transaction(self.engine) as conn:
            for job_id, silent in due.items():
                # The phase is read again in the transaction that fires: a job that ended
                # meanwhile is not declared lost.
                job = repo.get_vertex(conn, job_id)
                if job is None or job.phase not in WATCHED:
                    continue
                seen = self._seen.get(job_id)
                if seen is None or seen[0] != heartbeat_marker(job):
                    continue  # it beat since this check looked: not silent after all
                reason = watcher_lost_reason(silent, job.phase)
                event = expired_event(conn, job, message=reason, now=now,
                                      identity=self.identity, monitor="heartbeat",
                                      silent_for=round(silent, 3),
                                      last_heartbeat_at=_iso(job.last_heartbeat_at))
                repo.enqueue(conn, event, now=now)
                fired.append(event)
        for event in fired:
            job_id = event.properties["target_job_id"]
            self._fired[job_id] = event.properties["attempt"]
            self.log.warning("heartbeat expired %s", kv(
                job_id=job_id, name_path=event.properties["target_job_name_path"],
                silent_for=f"{due[job_id]:.1f}", key=event.key,
                server=event.properties["server_name"]))
        return fired


# --- host monitor -------------------------------------------------------------------------------

def tcp_probe(timeout: float) -> Probe:
    """A probe that connects to the server's ssh port and waits for the sshd's identification
    line (`SSH-2.0-...`, RFC 4253 4.2). A TCP connect alone is not enough: whatever stands in
    between (a NAT, a load balancer, a TCP proxy) accepts it even when the host behind it is
    down. Local servers always answer."""

    def probe(server: Server) -> str | None:
        if server.transport == "local" or not server.address:
            return None
        deadline = time.monotonic() + timeout
        try:
            with socket.create_connection((server.address, server.port), timeout=timeout) as sock:
                missing = _ssh_banner_missing(sock, deadline)
        except OSError as exc:
            missing = exc.strerror or type(exc).__name__
            if isinstance(exc, (TimeoutError, socket.timeout)):
                missing = f"no answer within {timeout:g} s"
        return f"{server.address}:{server.port}: {missing}" if missing else None

    return probe


def _ssh_banner_missing(sock: socket.socket, deadline: float) -> str | None:
    """None once a line starting with `SSH-` arrived, else what went wrong. The server may send
    other lines first (RFC 4253 4.2); 8 KiB without that line is not an sshd."""
    received = b""
    while not any(line.startswith(b"SSH-") for line in received.split(b"\n")[:-1]):
        left = deadline - time.monotonic()
        if len(received) > 8192:
            return "it answers, but not as an sshd"
        try:
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(1024)
        except TimeoutError:
            return "connected, but no ssh banner in time"
        if not chunk:
            return "connection closed before the ssh banner"
        received += chunk
    return None


class HostMonitor:
    """`check()` once per `host_check_interval`."""

    def __init__(self, engine: Engine, resources: Resources, *, probe: Probe, down_after: int,
                 identity: CoreIdentity, log: logging.Logger,
                 clock: Callable[[], datetime] = repo.utcnow,
                 notify: Callable[[], None] = lambda: None,
                 on_down: Callable[[str, list[str]], None] = lambda server, job_ids: None,
                 on_up: Callable[[str], None] = lambda server: None,
                 heartbeats_watched: bool = True) -> None:
        if down_after < 1:
            raise ValueError(f"down_after must be at least 1 check, got {down_after!r}")
        self.engine = engine
        self.resources = resources
        self.probe = probe
        self.down_after = down_after
        self.identity = identity
        self.log = log
        self.clock = clock
        self.notify = notify
        self.on_down = on_down
        self.on_up = on_up
        # Only when heartbeat expiry runs may a job that still beats be spared: it stays
        # watched. Without expiry nothing would ever judge it, so every job gets the verdict.
        self.heartbeats_watched = heartbeats_watched
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._down: set[str] = set()
        # server -> (wall time, {job id: heartbeat marker}) at its first failed check
        self._first_failure: dict[str, tuple[datetime, dict[str, tuple]]] = {}

    def unhealthy_servers(self) -> set[str]:
        """Servers on the way to down (failed their last check, not yet marked down): the
        host monitor's verdict on their jobs is coming. A server marked down has had it; a
        job there that still beat then is left to heartbeat expiry."""
        with self._lock:
            return {name for name, count in self._failures.items()
                    if count > 0 and name not in self._down}

    def check(self) -> list[Event]:
        """Probe each server with running jobs and each server marked down; fire what
        changed. Returns the events fired."""
        with self.engine.connect() as conn:
            names = {job.server_name for job in watched_jobs(conn) if job.server_name}
        with self._lock:
            names |= self._down
            for name in set(self._failures) - names:  # no jobs there any more: forget it
                del self._failures[name]
                self._first_failure.pop(name, None)
        servers = []
        for name in sorted(names):
            try:
                server = self.resources.server(name)
            except UnknownResource:
                continue  # its jobs could not have started; nothing to check
            if server.transport != "local":  # this machine: up while the core runs
                servers.append(server)
        if not servers:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(servers)),
                                thread_name_prefix="host-probe") as pool:
            answers = list(pool.map(self._probe, servers))
        fired: list[Event] = []
        for server, error in zip(servers, answers, strict=True):
            try:
                fired.extend(self._answered(server, error))
            except Exception as exc:  # noqa: BLE001 - the store failed: the other servers still
                self.log.error("host check failed %s", kv(  # get their answer; this one next
                    server=server.name, error=f"{type(exc).__name__}: {exc}"))
        if fired:
            self.notify()
        return fired

    def _probe(self, server: Server) -> str | None:
        try:
            return self.probe(server)
        except Exception as exc:  # noqa: BLE001 - a broken probe is a failed check, said so
            return f"the check itself failed: {type(exc).__name__}: {exc}"

    def _answered(self, server: Server, error: str | None) -> list[Event]:
        name = server.name
        if error is None:
            with self._lock:
                self._failures[name] = 0
                was_down = name in self._down
                self._down.discard(name)
                self._first_failure.pop(name, None)
            if not was_down:
                return []
            event = self._fire_up(server)
            self.log.info("server up %s", kv(server=name, key=event.key))
            self.on_up(name)
            return [event]
        with self._lock:
            count = self._failures.get(name, 0) + 1
            self._failures[name] = count
            already_down = name in self._down
        if already_down:
            self.log.debug("server still down %s", kv(server=name, error=error))
            return []
        self.log.warning("server check failed %s", kv(
            server=name, failed=f"{count}/{self.down_after}", error=error))
        with self._lock:
            first = self._first_failure.get(name)
        if first is None:
            # The first failed check (or the first whose reading of the jobs worked): what each
            # job's heartbeat looked like then is what the verdict compares with.
            now = self.clock()
            with self.engine.connect() as conn:
                beats = {job.id: heartbeat_marker(job) for job in watched_jobs(conn, name)}
            with self._lock:
                self._first_failure[name] = first = (now, beats)
            if count > 1 and count >= self.down_after:
                return []  # no baseline until now: judge at the next check
        if count < self.down_after:
            return []
        fired = self._fire_down(server, count, error, first)
        with self._lock:
            self._down.add(name)
            self._first_failure.pop(name, None)  # only once the verdicts are committed
        job_ids = fired[0].properties["job_ids"]
        beating = fired[0].properties["jobs_still_beating"]
        self.log.error("server down %s", kv(server=name, failed_checks=count, error=error,
                                            jobs=",".join(job_ids) or "none",
                                            still_beating=",".join(beating) or "none"))
        self.on_down(name, job_ids)
        return fired

    def _fire_down(self, server: Server, checks: int, error: str,
                   first: tuple[datetime, dict[str, tuple]]) -> list[Event]:
        """In one transaction: the server's running jobs, read now, each get its verdict,
        except those that beat since the first failed check (`first`)."""
        now = self.clock()
        reason = server_down_reason(server.name, checks, error)
        with write_transaction(self.engine) as conn:
            jobs = watched_jobs(conn, server.name)
            lost = [job for job in jobs if not self._beat_since(job, *first)]
            down = self._server_event(SERVER_DOWN, server, now, "error", failed_checks=checks,
                                      error=error, message=reason,
                                      job_ids=[job.id for job in lost],
                                      jobs_still_beating=[job.id for job in jobs
                                                          if job not in lost])
            fired = [down]
            for job in lost:
                fired.append(expired_event(conn, job, message=reason, now=now,
                                           identity=self.identity, monitor="host",
                                           server_down_key=down.key,
                                           last_heartbeat_at=_iso(job.last_heartbeat_at)))
            for event in fired:
                repo.enqueue(conn, event, now=now)
        return fired

    def _beat_since(self, job: Row, failed_at: datetime, beats: dict[str, tuple]) -> bool:
        """Whether `job` beat after the server's first failed check: its heartbeat changed since
        then, and the new one was sent after it. The second half keeps a heartbeat that was on
        its way when the host died (sent before, recorded after the check) from counting."""
        if not self.heartbeats_watched or job.last_heartbeat_at is None:
            return False
        return (beats.get(job.id) != heartbeat_marker(job)
                and job.last_heartbeat_at >= failed_at)

    def _fire_up(self, server: Server) -> Event:
        now = self.clock()
        event = self._server_event(SERVER_UP, server, now, "info",
                                   message=f"server {server.name} answers again")
        with write_transaction(self.engine) as conn:
            repo.enqueue(conn, event, now=now)
        return event

    def _server_event(self, name: str, server: Server, now: datetime, level: str,
                      **props: Any) -> Event:
        core = f"{self.identity.host}/{self.identity.pid}"
        return Event(name, source_name=f"server:{core}/{server.name}",
                     sender_name=f"tengined:{core}",
                     occurred_at=now.isoformat(timespec="microseconds"), level=level,
                     properties={"server_name": server.name, "address": server.address,
                                 "port": server.port, **props})


# --- running them -------------------------------------------------------------------------------

class Periodic:
    """Calls `action()` every `interval` seconds on a thread of its own until `stop()`; an
    exception (the store unreachable) is logged and the next round tries again."""

    def __init__(self, name: str, interval: float, action: Callable[[], Any],
                 log: logging.Logger) -> None:
        self.interval = interval
        self.action = action
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.action()
            except Exception as exc:  # noqa: BLE001 - keep monitoring; say what failed
                self.log.error("%s failed %s", self._thread.name,
                               kv(error=f"{type(exc).__name__}: {exc}"))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
