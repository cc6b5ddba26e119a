"""The JSON shapes of the console API (they are also its OpenAPI documentation).

Times are ISO 8601 in UTC. Every phase comes with its key (`error`), Tengine's code (80) and its
console label in Japanese and English, refined by the stop reason
(`{"ja": "エラー終了(強制停止済)", "en": "error (force stopped)"}`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Label(BaseModel):
    ja: str
    en: str


class Allowed(BaseModel):
    """What the console offers for the row now (Tengine's rules)."""

    stop: bool
    status: bool
    rerun: bool


class NextJob(BaseModel):
    id: str
    name: str


class Vertex(BaseModel):
    id: str
    execution_id: str
    parent_id: str | None
    position: int
    depth: int
    kind: str = Field(description="jobnet, finally, job, hadoop_job_run, hadoop_job, "
                                  "map_phase or reduce_phase")
    name: str
    name_path: str
    description: str | None
    template_id: str | None
    was_expansion: bool
    phase: str
    phase_code: int
    phase_label: Label
    stop_reason: str | None = Field(description="user_stop or timeout after a force stop")
    reason: str | None = Field(description="what went wrong, as a person reads it "
                                           "(エラーメッセージ)")
    script: str | None
    server: str | None
    credential: str | None
    killing_signals: list[str]
    killing_signal_interval: float | None
    attempt: int = Field(description="starts so far: 1 for the first run, +1 per rerun")
    pid: int | None
    exit_status: int | None
    signal: str | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(
        description="from the watcher: stdout/stderr head and tail excerpts, "
                    "*_dropped_bytes between them, *_bytes in all, *_log spool paths on the "
                    "host, *_spool_dropped_bytes kept out of those files (output cap, failed "
                    "write), *_spool_error why a file stopped short (e.g. a full disk), "
                    "killed, started_at, finished_at, message")
    late_result: dict[str, Any] | None = Field(
        description="a result that arrived after the phase was decided (kept, never dropped)")
    last_heartbeat_at: datetime | None
    next: list[NextJob]
    ancestor_stuck: bool
    actions: Allowed


class Execution(BaseModel):
    id: str
    root_jobnet_id: str
    name: str = Field(description="the root jobnet's name")
    template_id: str | None
    description: str | None
    phase: str
    phase_code: int
    phase_label: Label
    status_label: Label = Field(description="the label with Tengine's notice when a job "
                                            "inside is stuck: 実行中[状態が不明なジョブあり]")
    stop_reason: str | None
    stuck_inside: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timeout_min: int | None
    alert_min: int | None
    actions: Allowed


class ExecutionDetail(Execution):
    server: str | None
    credential: str | None
    vertices: list[Vertex] = Field(description="every vertex in tree order, root first")


class ExecutionPage(BaseModel):
    total: int
    page: int
    per_page: int
    pages: int
    items: list[Execution]


class EventRow(BaseModel):
    id: int
    key: str
    event_type_name: str
    source_name: str
    sender_name: str
    occurred_at: datetime
    level: str
    confirmed: bool
    properties: dict[str, Any]
    received_at: datetime
    job_id: str | None = Field(description="the job or jobnet the event names, if it exists")
    execution_id: str | None = Field(description="the execution the event names, if it exists")


class EventPage(BaseModel):
    total: int
    page: int
    per_page: int
    pages: int
    items: list[EventRow]


class Relative(BaseModel):
    id: str
    name: str
    kind: str
    phase: str
    phase_label: Label
    name_path: str | None = None


class WatcherLog(BaseModel):
    server: str | None
    path: str | None
    command: str | None = Field(description="the grep to run on the host")
    lines: list[str] | None = Field(description="the lines naming the job; null when the "
                                                "console cannot read the host's log")
    note: str
    truncated: bool


class JobDetail(Vertex):
    execution: Execution
    ancestors: list[Relative]
    children: list[Relative]
    events: list[EventRow] = Field(description="the events whose source names this job, "
                                               "newest first")
    watcher_log: WatcherLog


class Jobnet(BaseModel):
    id: str
    name: str
    description: str
    file: str | None
    line: int | None
    loaded_at: datetime
    server: str | None
    credential: str | None
    jobs: int = Field(description="jobs in the template (expansions not counted)")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequest(_Request):
    timeout_min: int | None = Field(None, ge=0, description="強制停止設定: force stop the "
                                                            "execution after N minutes")
    alert_min: int | None = Field(None, ge=0, description="警告設定: fire "
                                                          "alert.execution.job.tengine after "
                                                          "N minutes")


class RerunRequest(_Request):
    spot: bool = Field(False, description="true: the selected job only "
                                          "(選択したジョブのみ); false: from it on "
                                          "(選択したジョブを起点として)")


class StatusRequest(_Request):
    status: str = Field(description="initialized, success or error "
                                    "(初期化済 / 正常終了 / エラー終了)")


class ActionDone(BaseModel):
    message: str
    target_id: str
    execution_id: str
    event_type_name: str | None
    event_key: str | None
    published: bool | None = Field(description="false: the command is stored and the "
                                                "core's relay publishes it when the broker "
                                                "answers")
    applied: bool | None = Field(None, description="a status change: true once the core "
                                                   "applied it, false while it has not yet")


class Confirmed(BaseModel):
    key: str
    confirmed_rows: int
