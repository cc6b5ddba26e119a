"""The console's FastAPI app: screens, JSON API under /api (OpenAPI at /docs), static files.

`create_app(settings)` checks the access settings first (a non-loopback address without
credentials is refused with ConsoleConfigError), opens the store and, unless a bus is given
(tests), a publisher to the broker that is connected on first use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from ..store.db import engine_for
from . import api, screens
from .actions import ActionError, Actions
from .auth import AccessGuard, check_access_config
from .bus import BrokerBus, Bus
from .context import Console
from .filters import FilterError
from .settings import ConsoleSettings

LOGGER = "tengine.console"
STATIC = Path(__file__).parent / "static"


def create_app(settings: ConsoleSettings, *, bus: Bus | None = None,
               engine: Engine | None = None) -> FastAPI:
    check_access_config(settings)
    log = logging.getLogger(LOGGER)
    engine = engine or engine_for(settings.runtime.store_target())
    if bus is None:
        bus = BrokerBus(settings.runtime.broker_url, retry_count=settings.publish_retry_count,
                        retry_interval=settings.publish_retry_interval, log=log)
    console = Console(settings=settings, engine=engine, bus=bus,
                      actions=Actions(engine, bus.publish, settings.runtime, log,
                                      status_change_wait=settings.status_change_wait),
                      log=log)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        console.bus.close()

    app = FastAPI(title="tengine console", lifespan=lifespan,
                  description="Tengine's console screens and their JSON API: executions, "
                              "jobs, events, jobnets, and the actions run, force stop, "
                              "rerun, status change, confirm.")
    app.state.console = console
    app.add_middleware(AccessGuard, settings=settings)
    app.include_router(api.router)
    app.include_router(screens.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app, console)
    return app


def _add_error_handlers(app: FastAPI, console: Console) -> None:
    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(ActionError)
    async def on_action_error(request: Request, exc: ActionError) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        return screens.error_page(request, console, exc.status_code, exc.message)

    @app.exception_handler(FilterError)
    async def on_filter_error(request: Request, exc: FilterError) -> Response:
        if is_api(request):
            return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)
        return screens.error_page(request, console, 422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [_describe(error) for error in exc.errors()]
        detail = "; ".join(problems)
        if is_api(request):
            return JSONResponse({"detail": detail, "errors": _plain(exc.errors())},
                                status_code=422)
        return screens.error_page(request, console, 422, detail)


def _describe(error: dict) -> str:
    """`query parameter 'per_page': Input should be greater than or equal to 1`."""
    loc = [str(part) for part in error.get("loc", ())]
    where = {"query": "query parameter", "path": "path parameter", "body": "body",
             "form": "form field"}.get(loc[0] if loc else "", "input")
    name = ".".join(loc[1:])
    target = f"{where} {name!r}" if name else where
    return f"{target}: {error.get('msg', 'invalid')}"


def _plain(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors without objects JSON cannot carry (exception instances in ctx)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in errors]
