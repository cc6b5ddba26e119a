"""The JSON API under /api: the same data and actions as the screens.

Bad input gets a 4xx whose JSON `detail` says what and where, and changes nothing: an unknown
id 404, a malformed filter or body 422, an action the target's state does not allow 409.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status

from ..model.execution import SCRIPT_KINDS
from . import queries
from .actions import ActionResult, NotFound
from .context import Console, console_of
from .filters import EventFilter, ExecutionFilter, parse_text
from .i18n import label_pair, status_pair
from .models import (
    ActionDone,
    Confirmed,
    EventPage,
    ExecutionDetail,
    ExecutionPage,
    JobDetail,
    Jobnet,
    RerunRequest,
    RunRequest,
    StatusRequest,
)
from .watcher_log import WatcherLog

router = APIRouter(prefix="/api")
ConsoleDep = Annotated[Console, Depends(console_of)]
Page = Annotated[int, Query(ge=1, description="1-based page number")]
PerPage = Annotated[int, Query(ge=1, le=500, description="rows per page (max 500)")]
TEXT_HELP = "prefix match, or /regex/ matched anywhere"
TIME_HELP = "ISO 8601; without a zone, the console's display zone"


# --- executions -----------------------------------------------------------------------------


@router.get("/executions", response_model=ExecutionPage, tags=["executions"],
            summary="Executions (実行ジョブ一覧), newest first")
def list_executions(
    console: ConsoleDep,
    id: Annotated[str | None, Query(description=TEXT_HELP)] = None,
    name: Annotated[str | None, Query(description=f"root jobnet name: {TEXT_HELP}")] = None,
    since: Annotated[str | None, Query(description=f"ran at or after: {TIME_HELP}")] = None,
    until: Annotated[str | None, Query(description=f"ran at or before: {TIME_HELP}")] = None,
    status_: Annotated[list[str] | None, Query(alias="status",
                                               description="phase keys, repeatable")] = None,
    page: Page = 1, per_page: PerPage = 50,
) -> dict[str, Any]:
    flt = ExecutionFilter.parse(id=id, name=name, since=since, until=until, statuses=status_,
                                zone=console.zone)
    with console.engine.connect() as conn:
        result = queries.list_executions(conn, flt, page, per_page)
    return {"total": result.total, "page": result.page, "per_page": result.per_page,
            "pages": result.pages, "items": [execution_out(e) for e in result.items]}


@router.get("/executions/{execution_id}", response_model=ExecutionDetail, tags=["executions"],
            summary="One execution with its whole tree (ジョブネット監視)")
def get_execution(execution_id: str, console: ConsoleDep) -> dict[str, Any]:
    with console.engine.connect() as conn:
        detail = queries.execution_detail(conn, execution_id)
    if detail is None:
        raise NotFound(f"no execution with id {execution_id!r}")
    out = execution_out(detail)
    out["vertices"] = [vertex_out(v) for v in detail["vertices"]]
    return out


@router.post("/executions/{execution_id}/stop", response_model=ActionDone,
             status_code=status.HTTP_202_ACCEPTED, tags=["executions"],
             summary="Force stop an execution (stop.execution.job.tengine, user_stop)")
def stop_execution(execution_id: str, console: ConsoleDep) -> dict[str, Any]:
    return done(console.actions.stop_execution(execution_id))


@router.post("/executions/{execution_id}/rerun", response_model=ActionDone,
             status_code=status.HTTP_202_ACCEPTED, tags=["executions"],
             summary="Rerun a whole execution (its root jobnet)")
def rerun_execution(execution_id: str, console: ConsoleDep) -> dict[str, Any]:
    with console.engine.connect() as conn:
        execution = queries.get_execution(conn, execution_id)
    if execution is None:
        raise NotFound(f"no execution with id {execution_id!r}")
    return done(console.actions.rerun(execution["root_jobnet_id"]))


# --- jobs and jobnets of an execution -------------------------------------------------------


@router.get("/jobs/{vertex_id}", response_model=JobDetail, tags=["jobs"],
            summary="A job (or jobnet): every field, output excerpts, watcher log lines, "
                    "its events")
def get_job(vertex_id: str, console: ConsoleDep) -> dict[str, Any]:
    with console.engine.connect() as conn:
        detail = queries.vertex_detail(conn, vertex_id)
    if detail is None:
        raise NotFound(f"no job or jobnet with id {vertex_id!r}")
    out = vertex_out(detail)
    out["execution"] = execution_out(detail["execution"])
    out["ancestors"] = [relative_out(a) for a in detail["ancestors"]]
    out["children"] = [relative_out(c) for c in detail["children"]]
    out["events"] = detail["events"]
    if detail["kind"] in SCRIPT_KINDS:
        out["watcher_log"] = asdict(console.watcher_log(detail["server"], vertex_id,
                                                        detail["credential"]))
    else:
        out["watcher_log"] = asdict(WatcherLog(detail["server"], None, None,
                                               note=f"a {detail['kind']} runs no script"))
    return out


@router.post("/jobs/{vertex_id}/stop", response_model=ActionDone,
             status_code=status.HTTP_202_ACCEPTED, tags=["jobs"],
             summary="Force stop a job (stop.job.job.tengine, user_stop)")
def stop_job(vertex_id: str, console: ConsoleDep) -> dict[str, Any]:
    return done(console.actions.stop_job(vertex_id))


@router.post("/jobs/{vertex_id}/rerun", response_model=ActionDone,
             status_code=status.HTTP_202_ACCEPTED, tags=["jobs"],
             summary="Rerun a job or jobnet (restart.job.job.tengine): the selected job only "
                     "(spot) or from it on")
def rerun_job(vertex_id: str, console: ConsoleDep,
              body: Annotated[RerunRequest | None, Body()] = None) -> dict[str, Any]:
    spot = body.spot if body is not None else False
    return done(console.actions.rerun(vertex_id, spot=spot))


@router.post("/jobnets/{vertex_id}/stop", response_model=ActionDone,
             status_code=status.HTTP_202_ACCEPTED, tags=["jobs"],
             summary="Force stop a jobnet of an execution by its id (stop.jobnet.job.tengine)")
def stop_jobnet(vertex_id: str, console: ConsoleDep) -> dict[str, Any]:
    return done(console.actions.stop_jobnet(vertex_id))


@router.post("/vertices/{vertex_id}/status", response_model=ActionDone, tags=["jobs"],
             summary="Status change (ステータス変更): initialized, success or error; the core "
                     "applies it (change_status.job.job.tengine) and fires nothing. 200 once "
                     "applied, 202 when it has not been yet",
             responses={202: {"model": ActionDone, "description": "requested, not applied yet"}})
def change_status(vertex_id: str, body: StatusRequest, console: ConsoleDep,
                  response: Response) -> dict[str, Any]:
    result = console.actions.change_status(vertex_id, body.status)
    if not result.applied:
        response.status_code = status.HTTP_202_ACCEPTED
    return done(result)


# --- templates ------------------------------------------------------------------------------


@router.get("/jobnets", response_model=list[Jobnet], tags=["jobnets"],
            summary="Stored root jobnets (テンプレートジョブ一覧)")
def list_jobnets(console: ConsoleDep,
                 name: Annotated[str | None, Query(description=TEXT_HELP)] = None
                 ) -> list[dict[str, Any]]:
    name_filter = parse_text(name, "name")
    with console.engine.connect() as conn:
        return queries.list_templates(conn, name_filter)


@router.post("/jobnets/{name}/run", response_model=ActionDone,
             status_code=status.HTTP_201_CREATED, tags=["jobnets"],
             summary="Run a stored root jobnet: a new execution, started")
def run_jobnet(name: str, console: ConsoleDep, response: Response,
               body: Annotated[RunRequest | None, Body()] = None) -> dict[str, Any]:
    body = body or RunRequest()
    result = console.actions.run_jobnet(name, timeout_min=body.timeout_min,
                                        alert_min=body.alert_min)
    response.headers["Location"] = f"/api/executions/{result.execution_id}"
    return done(result)


# --- events ---------------------------------------------------------------------------------


@router.get("/events", response_model=EventPage, tags=["events"],
            summary="Events (イベント一覧), newest first")
def list_events(
    console: ConsoleDep,
    type: Annotated[str | None, Query(description=f"event type: {TEXT_HELP}")] = None,
    key: Annotated[str | None, Query(description=TEXT_HELP)] = None,
    source: Annotated[str | None, Query(description=f"source name: {TEXT_HELP}; "
                                                    f"/<id>/ finds a job's or an "
                                                    f"execution's events")] = None,
    sender: Annotated[str | None, Query(description=TEXT_HELP)] = None,
    since: Annotated[str | None, Query(description=f"occurred at or after: {TIME_HELP}")] = None,
    until: Annotated[str | None, Query(description=f"occurred at or before: {TIME_HELP}")] = None,
    level: Annotated[list[str] | None, Query(description="debug, info, warn, error, fatal; "
                                                         "repeatable; none = all")] = None,
    confirmed: Annotated[str | None, Query(description="true or false; empty = all")] = None,
    page: Page = 1, per_page: PerPage = 50,
) -> dict[str, Any]:
    flt = EventFilter.parse(type=type, key=key, source=source, sender=sender, since=since,
                            until=until, levels=level, confirmed=confirmed, zone=console.zone)
    with console.engine.connect() as conn:
        result = queries.list_events(conn, flt, page, per_page)
    return {"total": result.total, "page": result.page, "per_page": result.per_page,
            "pages": result.pages, "items": result.items}


@router.post("/events/{key}/confirm", response_model=Confirmed, tags=["events"],
             summary="Confirm an event (通知確認済み)")
def confirm_event(key: str, console: ConsoleDep) -> dict[str, Any]:
    return {"key": key, "confirmed_rows": console.actions.confirm_event(key)}


# --- shaping --------------------------------------------------------------------------------


def execution_out(execution: dict[str, Any]) -> dict[str, Any]:
    out = dict(execution)
    out["phase_label"] = label_pair(execution["phase"], execution["stop_reason"])
    out["status_label"] = status_pair(execution["phase"], execution["stop_reason"],
                                      execution["stuck_inside"])
    return out


def vertex_out(vertex: dict[str, Any]) -> dict[str, Any]:
    out = dict(vertex)
    out["phase_label"] = label_pair(vertex["phase"], vertex["stop_reason"])
    return out


def relative_out(vertex: dict[str, Any]) -> dict[str, Any]:
    out = dict(vertex)
    out["phase_label"] = label_pair(vertex["phase"], vertex["stop_reason"])
    return out


def done(result: ActionResult) -> dict[str, Any]:
    return asdict(result)
