"""Reconciliation: asking a job's host what the queue could not tell the core (S06).

When the monitors gave up on a job (its watcher went silent, its server went down) the core
does not know how the job ended. The watcher does: it keeps each result in its spool, published
or not. The reconciler asks it over the server's transport,

    tengine-watcher status --job-id ID --state-dir DIR --json

and reports what it learnt as ONE event, `reconciled.process.job.tengine` {host_state,
exit_status, signal, finished_at, event_key, published, ...}, through the outbox. The kernel
records a result found there as the job's late result (source `reconciliation`, warn event);
the phase does not change. Then:

* a result the watcher gave up publishing is sent again (`tengine-watcher resend`), so the host
  marks it published and the whole result (output excerpts) reaches the core; the kernel merges
  it into the late result without a second warning;
* a watcher that is gone while its script's process group still runs (the script's children
  outlive it) has that group killed (`tengine-watcher kill`): nobody could ever report its end.

A host that does not answer, or a job still running there, is asked again later (the delay
doubles up to `max_retry_interval`), for up to `give_up_after` seconds. The reconciled event's
key is derived from the job, its run and the answer, so asking twice records once.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, or_, select

from ..events import names as ev
from ..events.envelope import Event
from ..logfmt import kv
from ..model import phases as ph
from ..model.execution import SCRIPT_KINDS
from ..model.ids import watcher_job_id
from ..resources import Resources, Server
from ..store import repo
from ..store.schema import vertices
from ..transport.base import CommandResult, Transport, TransportError
from .identity import CoreIdentity
from .monitors import WATCHER_LOST, job_event_properties

# `tengine-watcher` exit status for an unknown job id (watcher/cli.py).
UNKNOWN_JOB_EXIT = 2
EXCERPT = 500
# Jobs given up on within this window are asked after again when the core starts.
RESUME_WINDOW = timedelta(days=1)
_KEYS = uuid.UUID("6f1c2b0e-5d4a-4f7e-9a51-2b1f0c7d3e88")  # namespace of reconciled event keys

DONE = "done"
RETRY = "retry"
WAIT = "wait"  # the verdict is still on its way through the queue: look again shortly


class BadAnswer(Exception):
    """The watcher's answer cannot be used; says what was wrong."""


def status_command(transport: Transport, job_id: str) -> str:
    return shlex.join([transport.watcher_command, "status", "--job-id", job_id,
                       "--state-dir", transport.watcher_state_dir, "--json"])


def resend_command(transport: Transport, job_id: str) -> str:
    return shlex.join([transport.watcher_command, "resend", "--job-id", job_id,
                       "--state-dir", transport.watcher_state_dir])


def kill_command(transport: Transport, job_id: str, signals: Iterable[str],
                 interval: float) -> str:
    return shlex.join([transport.watcher_command, "kill", "--job-id", job_id,
                       "--state-dir", transport.watcher_state_dir,
                       "--signals", ",".join(signals), "--interval", f"{interval:g}"])


def parse_status(result: CommandResult, server: str) -> dict[str, Any]:
    """The watcher's `status --json` answer; `{"state": "unknown"}` when the watcher has no
    record of the job. Raises BadAnswer for anything else."""
    if result.exit_code == UNKNOWN_JOB_EXIT and "unknown job" in result.stderr.lower():
        return {"state": "unknown", "detail": _excerpt(result.stderr)}
    if result.exit_code != 0:
        raise BadAnswer(f"tengine-watcher status on {server} exited {result.exit_code}: "
                        f"{_excerpt(result.stderr) or _excerpt(result.stdout) or 'no output'}")
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise BadAnswer(f"tengine-watcher status on {server} did not answer JSON ({exc.msg}): "
                        f"{_excerpt(result.stdout)!r}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("state"), str):
        raise BadAnswer(f"tengine-watcher status on {server} answered without a state: "
                        f"{_excerpt(result.stdout)!r}")
    return answer


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


@dataclass
class _Pending:
    vertex_id: str
    why: str
    due: float
    delay: float
    deadline: float


class Reconciler:
    """`request(job_ids)` from the monitors; `start()` runs a thread that asks the hosts;
    `run_due()` is one pass (tests call it directly). `transport_for(server, credential name)`
    gives the transport the driver would use (Driver.transport)."""

    def __init__(self, engine: Engine, resources: Resources,
                 transport_for: Callable[[Server, str | None], Transport], *,
                 report: Callable[[Event], None], identity: CoreIdentity,
                 log: logging.Logger, command_timeout: float = 60.0,
                 retry_interval: float = 5.0, max_retry_interval: float = 60.0,
                 give_up_after: float = 86_400.0, resend: bool = True,
                 kill_orphans: bool = True, clock: Callable[[], datetime] = repo.utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.resources = resources
        self.transport_for = transport_for
        self.report = report
        self.identity = identity
        self.log = log
        self.command_timeout = command_timeout
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.give_up_after = give_up_after
        self.resend = resend
        self.kill_orphans = kill_orphans
        self.clock = clock
        self.monotonic = monotonic
        self._pending: dict[str, _Pending] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    # -- requests --

    def request(self, job_ids: Iterable[str], why: str = "") -> None:
        """Ask after these jobs (soon: the verdict must reach the kernel first)."""
        now = self.monotonic()
        with self._wake:
            for job_id in job_ids:
                if job_id not in self._pending:
                    self._pending[job_id] = _Pending(job_id, why, now, self.retry_interval,
                                                     now + self.give_up_after)
                    self.log.info("reconciliation requested %s", kv(job_id=job_id, why=why))
            self._wake.notify()

    def server_down(self, server_name: str, job_ids: list[str]) -> None:
        self.request(job_ids, why=f"server {server_name} went down")

    def server_up(self, server_name: str) -> None:
        """The server answers again: ask after its pending jobs now."""
        now = self.monotonic()
        with self._wake:
            ids = list(self._pending)
        servers = self._servers_of(ids)
        with self._wake:
            for job_id, pending in self._pending.items():
                if servers.get(job_id) == server_name:
                    pending.due, pending.delay = now, self.retry_interval
            self._wake.notify()

    def resume(self) -> int:
        """At start-up: jobs the monitors gave up on lately whose outcome is still unknown
        (error, no late result) are asked after again. Returns how many."""
        since = self.clock() - RESUME_WINDOW
        with self.engine.connect() as conn:
            rows = conn.execute(select(vertices.c.id).where(
                vertices.c.phase == ph.ERROR, vertices.c.kind.in_(SCRIPT_KINDS),
                vertices.c.late_result.is_(None), vertices.c.finished_at >= since,
                or_(vertices.c.reason.like(f"{WATCHER_LOST}:%"),
                    vertices.c.reason.like("server % went down:%")))).all()
        self.request([row.id for row in rows], why="resumed at start")
        return len(rows)

    def _servers_of(self, job_ids: list[str]) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            return {row.id: row.server_name for row in conn.execute(
                select(vertices.c.id, vertices.c.server_name).where(vertices.c.id.in_(job_ids)))}

    def pending(self) -> list[str]:
        with self._wake:
            return list(self._pending)

    # -- the thread --

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception as exc:  # noqa: BLE001 - the store unreachable: try again later
                self.log.error("reconciliation failed %s",
                               kv(error=f"{type(exc).__name__}: {exc}"))
            with self._wake:
                if self._stop.is_set():
                    return
                dues = [p.due for p in self._pending.values()]
                wait = (min(dues) - self.monotonic()) if dues else self.max_retry_interval
                if wait > 0:
                    self._wake.wait(min(wait, self.max_retry_interval))

    def run_due(self) -> int:
        """Ask after every job that is due; returns how many were asked after."""
        now = self.monotonic()
        with self._wake:
            due = [p for p in self._pending.values() if p.due <= now]
        for pending in due:
            if self._stop.is_set():
                break
            outcome = self.reconcile(pending.vertex_id)
            with self._wake:
                self._after(pending, outcome)
        return len(due)

    def _after(self, pending: _Pending, outcome: str) -> None:
        now = self.monotonic()
        if outcome == DONE:
            self._pending.pop(pending.vertex_id, None)
        elif now >= pending.deadline:
            self._pending.pop(pending.vertex_id, None)
            self.log.error("reconciliation gave up %s", kv(
                job_id=pending.vertex_id, why=pending.why,
                after=f"{self.give_up_after:g}s",
                note="the result, if any, stays on the host: tengine-watcher status/resend"))
        elif outcome == WAIT:
            pending.due = now + min(1.0, self.retry_interval)
        else:
            pending.due = now + pending.delay
            pending.delay = min(pending.delay * 2, self.max_retry_interval)

    # -- one job --

    def reconcile(self, vertex_id: str) -> str:
        """Ask the host after one job once: DONE, RETRY (ask again later) or WAIT."""
        with self.engine.connect() as conn:
            job = repo.get_vertex(conn, vertex_id)
            if job is None or job.kind not in SCRIPT_KINDS:
                return DONE
            if job.phase in ph.AWAITING_RESULT:
                return WAIT  # the verdict has not been handled yet
            if job.phase != ph.ERROR or job.late_result is not None:
                return DONE  # decided by its own result, rerun, or known already
            props = job_event_properties(conn, job)
        fields = {"job_id": job.id, "name_path": job.name_path, "server": job.server_name}
        try:
            server = self.resources.server(job.server_name)
            transport = self.transport_for(server, job.credential_name)
        except Exception as exc:  # noqa: BLE001 - an unknown server, a transport not available
            self.log.error("reconciliation impossible %s", kv(**fields, error=str(exc)))
            return DONE
        wid = watcher_job_id(job.id, job.attempt)
        try:
            result = transport.run(status_command(transport, wid), timeout=self.command_timeout)
            answer = parse_status(result, server.name)
        except TransportError as exc:
            self.log.info("reconciliation: host not answering %s", kv(**fields, error=str(exc)))
            return RETRY
        except BadAnswer as exc:
            self.log.error("reconciliation: bad answer %s", kv(**fields, error=str(exc)))
            return RETRY
        state = answer["state"]
        if state in ("running", "starting"):
            self.log.info("reconciliation: job still running on its host %s", kv(
                **fields, host_state=state, pid=answer.get("pid")))
            return RETRY
        extra: dict[str, Any] = {}
        if state == "lost" and answer.get("script_alive"):
            extra["orphans_killed"] = self._kill_orphans(job, transport, fields)
        self.report(self._event(job, props, server, wid, answer, **extra))
        self.log.info("reconciled %s", kv(**fields, host_state=state,
                                          exit_status=answer.get("exit_status"),
                                          published=answer.get("published")))
        if state == "finished" and not answer.get("published") and self.resend:
            self._resend(transport, wid, fields)
        return DONE

    def _kill_orphans(self, job: Row, transport: Transport, fields: dict[str, Any]) -> bool:
        """The watcher is gone, its script's process group is not: no one can report its end."""
        if not self.kill_orphans:
            return False
        line = kill_command(transport, watcher_job_id(job.id, job.attempt),
                            job.killing_signals or ("KILL",),
                            float(job.killing_signal_interval or 5))
        try:
            result = transport.run(line, timeout=self.command_timeout)
        except TransportError as exc:
            self.log.warning("reconciliation: orphans not killed %s", kv(**fields,
                                                                          error=str(exc)))
            return False
        self.log.warning("reconciliation: killed the process group left by a lost watcher %s",
                         kv(**fields, exit_code=result.exit_code,
                            output=_excerpt(result.stdout)))
        return result.exit_code == 0

    def _resend(self, transport: Transport, wid: str, fields: dict[str, Any]) -> None:
        try:
            result = transport.run(resend_command(transport, wid), timeout=self.command_timeout)
        except TransportError as exc:
            self.log.warning("reconciliation: resend not done %s", kv(**fields, error=str(exc)))
            return
        word = "resend done" if result.exit_code == 0 else "resend failed"
        self.log.info("reconciliation: %s %s", word, kv(
            **fields, exit_code=result.exit_code,
            output=_excerpt(result.stdout) or _excerpt(result.stderr)))

    def _event(self, job: Row, props: dict[str, Any], server: Server, wid: str,
               answer: dict[str, Any], **extra: Any) -> Event:
        state = answer["state"]
        core = f"{self.identity.host}/{self.identity.pid}"
        props = dict(props)
        props.update(job_id=wid, host_state=state, message=_summary(server.name, wid, answer,
                                                                   extra))
        for name in ("exit_status", "signal", "killed", "started_at", "finished_at",
                     "event_key", "published", "pid", "spawn_error", "stdout_log",
                     "stderr_log", "stdout_bytes", "stderr_bytes", "script_alive"):
            if name in answer:
                props[name] = answer[name]
        props.update(extra)
        key = str(uuid.uuid5(_KEYS, f"{job.id}/{job.attempt}/{state}"))
        return Event(ev.RECONCILED_PROCESS_JOB, key=key,
                     source_name=f"job:{core}/{props['root_jobnet_id']}/{job.id}",
                     sender_name=f"tengined:{core}", level="info",
                     occurred_at=self.clock().isoformat(timespec="microseconds"),
                     properties=props)


def _summary(server: str, wid: str, answer: dict[str, Any], extra: dict[str, Any]) -> str:
    """What the host said, as a person reads it on the event screen."""
    state = answer["state"]
    if state == "finished":
        how = (f"signal {answer['signal']}" if answer.get("signal")
               else f"exit status {answer.get('exit_status')}")
        sent = "and had published it" if answer.get("published") else \
            "that it never managed to publish"
        return (f"the watcher on {server} kept the result of job {wid} ({how}, finished at "
                f"{answer.get('finished_at')}) {sent}")
    if state == "lost":
        if extra.get("orphans_killed"):
            left = "its script's processes were still running unwatched and were killed"
        elif answer.get("script_alive"):
            left = "its script's processes are still running unwatched"
        else:
            left = "its script is not running any more"
        return (f"the watcher of job {wid} on {server} is gone and left no result; {left}; "
                f"how the script ended will never be known")
    if state == "unknown":
        return f"the watcher on {server} has no record of job {wid}: the start never reached it"
    if state == "spawn_failed":
        return f"the script of job {wid} could not be started on {server}: " \
               f"{answer.get('spawn_error')}"
    return f"the watcher on {server} says job {wid} is {state}"
