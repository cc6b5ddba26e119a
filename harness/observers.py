"""What a person would look at on the console, read by the harness through its JSON API.

- `ConsoleClient`: the console's JSON API (`/api/executions`, `/api/events`, run, stop).
- `RunView`: one execution seen through the console: `job(path)`, `wait_for_job(path, phase=)`,
  `events()`, and a person's actions on it (force stop), each an `Operation` in the history.
- `JobView`, `EventList`: a job as the monitor shows it, event rows as the event screen does.

The recorders that write what they see into the history are in `recorders.py` (the phase
poller, the bus recorder); the logs (the watcher's over ssh, the core's) in `logs.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from .history import History, Operation
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


class Fetcher(Protocol):
    """Looks at an execution and records what changed (recorders.PhasePoller)."""

    def fetch(self, execution_id: str) -> dict[str, Any]: ...


class RunView:
    """One execution, as a person sees it on the console."""

    def __init__(self, console: ConsoleClient, execution_id: str, history: History,
                 poller: Fetcher | None = None) -> None:
        self.console = console
        self.execution_id = execution_id
        self.history = history
        self.poller = poller
        self._root_jobnet_id: str | None = None

    def __repr__(self) -> str:
        return f"RunView({self.execution_id})"

    def execution(self) -> dict[str, Any]:
        if self.poller is not None:
            # Through the poller, so what the test saw is in the history before it acts on
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
        self._stop(f"/api/jobs/{job.id}/stop", "job", job.name_path)

    def stop_jobnet(self, jobnet: JobView) -> None:
        self._stop(f"/api/jobnets/{jobnet.id}/stop", "jobnet", jobnet.name_path)

    def stop_execution(self) -> None:
        self._stop(f"/api/executions/{self.execution_id}/stop", "root jobnet", "")

    def _stop(self, api_path: str, scope: str, name_path: str) -> None:
        self._act("force_stop", name_path, scope)
        self.console.post(api_path)

    # -- a person's status change (ステータス変更) and rerun (再実行) --

    def change_status(self, job: JobView, status: str) -> None:
        """Set a job or jobnet to ``initialized``, ``success`` or ``error`` by hand."""
        self._act("status_change", job.name_path, status)
        self.console.post(f"/api/vertices/{job.id}/status", {"status": status})

    def rerun(self, job: JobView | None = None, *, spot: bool = False) -> None:
        """Rerun the whole execution (no `job`), or from `job` on, or `job` only (`spot`)."""
        if job is None:
            self._act("rerun", "", "")
            self.console.post(f"/api/executions/{self.execution_id}/rerun")
        else:
            self._act("rerun", job.name_path, "only" if spot else "and what follows it")
            self.console.post(f"/api/jobs/{job.id}/rerun", {"spot": spot})

    def _act(self, action: str, name_path: str, value: str) -> None:
        # Written before the POST: the action's effects can reach the history before it returns.
        self.history.add(Operation(action=action, execution=self.execution_id, path=name_path,
                                   value=value, point=self.history.held_point(),
                                   source="console"))

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
                    f"{job.summary()}\nhistory:\n{self.history.as_text(last=40)}")
            return None

        return wait_for(reached, timeout=timeout,
                        what=f"{name_path} to be {'/'.join(sorted(wanted))}",
                        last_seen=self.phases, history=self.history)

    def wait_for_execution(self, phase: str | Iterable[str], timeout: float = 60.0) -> dict:
        wanted = {phase} if isinstance(phase, str) else set(phase)
        return wait_for(lambda: (d := self.execution())["phase"] in wanted and d,
                        timeout=timeout, what=f"execution {self.execution_id} to be "
                                              f"{'/'.join(sorted(wanted))}",
                        last_seen=self.phases, history=self.history)

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
                        history=self.history)
