"""The HTML screens (Jinja2): Tengine's event list, execution list, jobnet monitor, job detail,
jobnet list, and the settings pages of run, rerun and status change.

Buttons are small forms that POST here and come back (303) to the screen with a message; the
same Actions as the API do the work. Screens take the same filter parameters as the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..model import phases as ph
from ..model.execution import SCRIPT_KINDS
from . import i18n, queries
from .actions import ActionError, Invalid
from .context import Console, console_of
from .filters import LEVELS, EventFilter, ExecutionFilter, FilterError, parse_text

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(console_of)]
Page = Annotated[int, Query(ge=1)]
PerPage = Annotated[int, Query(ge=1, le=500)]
Refresh = Annotated[int | None, Query(ge=0, le=86400)]
LONG_TEXT = 400  # longer property values are shortened on the event screen


# --- rendering helpers ----------------------------------------------------------------------


def lang_of(request: Request) -> str:
    return (i18n.normalize(request.query_params.get("lang"))
            or i18n.normalize(request.cookies.get(i18n.COOKIE)) or i18n.DEFAULT_LANG)


def render(request: Request, console: Console, name: str, context: dict[str, Any], *,
           status_code: int = 200, refresh: int = 0) -> HTMLResponse:
    lang = lang_of(request)
    zone = console.zone

    def dt(value: Any) -> str:
        if not value:
            return ""
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def url_with(**changes: Any) -> str:
        """This page's URL with some query parameters replaced (None removes)."""
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
        for key, value in changes.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                params.extend((key, str(v)) for v in value)
            else:
                params.append((key, str(value)))
        query = urlencode(params)
        return request.url.path + (f"?{query}" if query else "")

    base = {
        "request": request, "lang": lang, "t": lambda key: i18n.t(key, lang),
        "phase_label": lambda phase, reason=None: i18n.phase_label(phase, reason, lang),
        "status_label": lambda phase, reason, stuck: i18n.status_with_notice(
            phase, reason, stuck, lang),
        "dt": dt, "url_with": url_with, "refresh": refresh,
        "zone_name": _zone_name(zone), "message": request.query_params.get("msg"),
        "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    }
    base.update(context)
    response = TEMPLATES.TemplateResponse(request, name, base, status_code=status_code)
    chosen = i18n.normalize(request.query_params.get("lang"))
    if chosen:
        response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 86400, samesite="lax")
    return response


def _zone_name(zone: Any) -> str:
    from datetime import datetime

    now = datetime.now(zone)
    offset = now.strftime("%z")
    return f"{now.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def error_page(request: Request, console: Console, status_code: int, message: str) -> Response:
    return render(request, console, "error.html", {"status_code": status_code,
                                                   "error": message}, status_code=status_code)


def back(target: str | None, fallback: str, message: str) -> RedirectResponse:
    """303 to a local page (never elsewhere) with the message shown there."""
    local = target and target.startswith("/") and not target.startswith(("//", "/\\"))
    path = _without_msg(target if target and local else fallback)
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}{urlencode({'msg': message})}", status_code=303)


def _without_msg(path: str) -> str:
    if "?" not in path:
        return path
    base, _, query = path.partition("?")
    kept = [part for part in query.split("&") if not part.startswith("msg=")]
    return base + ("?" + "&".join(kept) if kept else "")


def short_yaml(properties: dict[str, Any]) -> str:
    """Properties as YAML, long strings shortened (the job detail has them in full)."""
    def shorten(value: Any) -> Any:
        if isinstance(value, str) and len(value) > LONG_TEXT:
            omitted = len(value) - LONG_TEXT
            return (f"{value[:150]}\n... ({omitted} characters omitted) ...\n"
                    f"{value[-(LONG_TEXT - 150):]}")
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v) for v in value]
        return value

    return yaml.safe_dump(shorten(properties), allow_unicode=True, sort_keys=False,
                          default_flow_style=False, width=140).rstrip()


GIST_KEYS = ("target_job_name_path", "target_jobnet_name_path", "exit_status", "signal",
             "stop_reason", "phase", "message", "error_message")


def gist(properties: dict[str, Any]) -> list[tuple[str, str]]:
    """The few properties that say what an event is about, one line each value."""
    found: list[tuple[str, str]] = []
    for key in GIST_KEYS:
        value = properties.get(key)
        if value is None or value == "":
            continue
        if key == "target_jobnet_name_path" and properties.get("target_job_name_path"):
            continue  # the job's path says it
        text = " ".join(str(value).split())
        found.append((key, text if len(text) <= 200 else text[:200] + "..."))
    return found


# --- screens --------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/executions", status_code=303)


@router.get("/events", response_class=HTMLResponse)
def events_screen(
    request: Request, console: ConsoleDep, type: str | None = None, key: str | None = None,
    source: str | None = None, sender: str | None = None, since: str | None = None,
    until: str | None = None, level: Annotated[list[str] | None, Query()] = None,
    confirmed: str | None = None, page: Page = 1, per_page: PerPage = 50,
    refresh: Refresh = None, props: str | None = None,
) -> Response:
    form = {"type": type or "", "key": key or "", "source": source or "",
            "sender": sender or "", "since": since or "", "until": until or "",
            "confirmed": confirmed or "", "per_page": per_page, "props": bool(props)}
    context: dict[str, Any] = {"form": form, "levels": LEVELS, "error": None, "result": None,
                               "yaml": short_yaml, "gist": gist}
    try:
        flt = EventFilter.parse(type=type, key=key, source=source, sender=sender, since=since,
                                until=until, levels=level, confirmed=confirmed,
                                zone=console.zone)
    except FilterError as exc:
        context.update(error=str(exc), checked=set(LEVELS))
        return render(request, console, "events.html", context, status_code=422)
    with console.engine.connect() as conn:
        context["result"] = queries.list_events(conn, flt, page, per_page)
    context["checked"] = set(flt.levels)
    return render(request, console, "events.html", context, refresh=refresh or 0)


@router.post("/events/{key}/confirm")
def confirm_event(key: str, request: Request, console: ConsoleDep,
                  next: Annotated[str | None, Form()] = None) -> Response:
    try:
        console.actions.confirm_event(key)
    except ActionError as exc:
        return error_page(request, console, exc.status_code, exc.message)
    return back(next, "/events", f"{i18n.t('confirmed', lang_of(request))}: {key}")


@router.get("/executions", response_class=HTMLResponse)
def executions_screen(
    request: Request, console: ConsoleDep, id: str | None = None, name: str | None = None,
    since: str | None = None, until: str | None = None,
    status: Annotated[list[str] | None, Query()] = None, page: Page = 1,
    per_page: PerPage = 50, refresh: Refresh = None,
) -> Response:
    form = {"id": id or "", "name": name or "", "since": since or "", "until": until or "",
            "per_page": per_page}
    context: dict[str, Any] = {"form": form, "phases": list(ph.PHASES), "error": None,
                               "result": None, "checked": set(status or [])}
    try:
        flt = ExecutionFilter.parse(id=id, name=name, since=since, until=until,
                                    statuses=status, zone=console.zone)
    except FilterError as exc:
        context["error"] = str(exc)
        return render(request, console, "executions.html", context, status_code=422)
    with console.engine.connect() as conn:
        context["result"] = queries.list_executions(conn, flt, page, per_page)
    return render(request, console, "executions.html", context, refresh=refresh or 0)


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
def monitor_screen(execution_id: str, request: Request, console: ConsoleDep,
                   refresh: Refresh = None) -> Response:
    with console.engine.connect() as conn:
        detail = queries.execution_detail(conn, execution_id)
    if detail is None:
        return error_page(request, console, 404, f"no execution with id {execution_id!r}")
    events_url = "/events?" + urlencode({"source": f"/{detail['root_jobnet_id']}/"})
    return render(request, console, "monitor.html",
                  {"execution": detail, "events_url": events_url},
                  refresh=console.settings.monitor_refresh if refresh is None else refresh)


@router.post("/executions/{execution_id}/stop")
def stop_execution(execution_id: str, request: Request, console: ConsoleDep,
                   next: Annotated[str | None, Form()] = None) -> Response:
    return _act(request, console, next, f"/executions/{execution_id}",
                lambda: console.actions.stop_execution(execution_id))


@router.get("/jobs/{vertex_id}", response_class=HTMLResponse)
def job_screen(vertex_id: str, request: Request, console: ConsoleDep,
               refresh: Refresh = None) -> Response:
    with console.engine.connect() as conn:
        detail = queries.vertex_detail(conn, vertex_id)
    if detail is None:
        return error_page(request, console, 404, f"no job or jobnet with id {vertex_id!r}")
    log = (console.watcher_log(detail["server"], vertex_id, detail["credential"])
           if detail["kind"] in SCRIPT_KINDS else None)
    return render(request, console, "job.html",
                  {"job": detail, "watcher_log": log, "yaml": short_yaml,
                   "statuses": ph.SETTABLE}, refresh=refresh or 0)


@router.post("/vertices/{vertex_id}/stop")
def stop_vertex(vertex_id: str, request: Request, console: ConsoleDep,
                next: Annotated[str | None, Form()] = None) -> Response:
    return _act(request, console, next, f"/jobs/{vertex_id}",
                lambda: console.actions.stop_vertex(vertex_id))


@router.get("/vertices/{vertex_id}/status", response_class=HTMLResponse)
def status_form(vertex_id: str, request: Request, console: ConsoleDep,
                next: str | None = None) -> Response:
    return _vertex_form(request, console, vertex_id, "status.html", next)


@router.post("/vertices/{vertex_id}/status")
def change_status(vertex_id: str, request: Request, console: ConsoleDep,
                  status: Annotated[str, Form()] = "",
                  next: Annotated[str | None, Form()] = None) -> Response:
    return _act(request, console, next, f"/jobs/{vertex_id}",
                lambda: console.actions.change_status(vertex_id, status))


@router.get("/vertices/{vertex_id}/rerun", response_class=HTMLResponse)
def rerun_form(vertex_id: str, request: Request, console: ConsoleDep,
               next: str | None = None) -> Response:
    return _vertex_form(request, console, vertex_id, "rerun.html", next)


@router.post("/vertices/{vertex_id}/rerun")
def rerun(vertex_id: str, request: Request, console: ConsoleDep,
          method: Annotated[str, Form()] = "from",
          next: Annotated[str | None, Form()] = None) -> Response:
    if method not in ("from", "spot"):
        return error_page(request, console, 422, f"rerun method {method!r}: use from or spot")
    return _act(request, console, next, f"/jobs/{vertex_id}",
                lambda: console.actions.rerun(vertex_id, spot=method == "spot"))


@router.get("/jobnets", response_class=HTMLResponse)
def jobnets_screen(request: Request, console: ConsoleDep, name: str | None = None) -> Response:
    context: dict[str, Any] = {"form": {"name": name or ""}, "error": None, "jobnets": []}
    try:
        name_filter = parse_text(name, "name")
    except FilterError as exc:
        context["error"] = str(exc)
        return render(request, console, "jobnets.html", context, status_code=422)
    with console.engine.connect() as conn:
        context["jobnets"] = queries.list_templates(conn, name_filter)
    return render(request, console, "jobnets.html", context)


@router.get("/jobnets/{name}/run", response_class=HTMLResponse)
def run_form(name: str, request: Request, console: ConsoleDep) -> Response:
    with console.engine.connect() as conn:
        template = queries.get_template(conn, name)
    if template is None:
        return error_page(request, console, 404, f"no stored root jobnet named {name!r}")
    return render(request, console, "run.html", {"jobnet": template})


@router.post("/jobnets/{name}/run")
def run_jobnet(name: str, request: Request, console: ConsoleDep,
               timeout_min: Annotated[str, Form()] = "",
               alert_min: Annotated[str, Form()] = "") -> Response:
    try:
        timeout = _minutes(timeout_min, "timeout_min")
        alert = _minutes(alert_min, "alert_min")
        result = console.actions.run_jobnet(name, timeout_min=timeout, alert_min=alert)
    except ActionError as exc:
        return error_page(request, console, exc.status_code, exc.message)
    return back(f"/executions/{result.execution_id}", "/executions", _done(request, result))


# --- form plumbing --------------------------------------------------------------------------


def _minutes(text: str, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(f"{field}: {text!r} is not a whole number of minutes (0 or empty = none)")
    return int(text)


def _vertex_form(request: Request, console: Console, vertex_id: str, template: str,
                 next: str | None) -> Response:
    with console.engine.connect() as conn:
        detail = queries.vertex_detail(conn, vertex_id)
    if detail is None:
        return error_page(request, console, 404, f"no job or jobnet with id {vertex_id!r}")
    return render(request, console, template, {"job": detail, "statuses": ph.SETTABLE,
                                               "next": next or f"/jobs/{vertex_id}"})


def _act(request: Request, console: Console, next: str | None, fallback: str,
         action: Any) -> Response:
    try:
        result = action()
    except ActionError as exc:
        return error_page(request, console, exc.status_code, exc.message)
    return back(next, fallback, _done(request, result))


def _done(request: Request, result: Any) -> str:
    message = result.message
    if result.published is False:
        suffix = ("ブローカーに届かなかったため、コアが後で送信します" if lang_of(request) == "ja"
                  else "the broker did not answer: the core sends it later")
        message = f"{message} ({suffix})"
    return message

