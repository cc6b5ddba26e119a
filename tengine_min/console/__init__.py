"""The web console: Tengine's screens (events, executions, jobnet monitor, job detail, jobnets)
and a JSON API under /api, on FastAPI. `create_app(settings)` makes the app,
`run_console(settings)` serves it."""

from .app import create_app
from .server import run_console
from .settings import ConsoleConfigError, ConsoleSettings

__all__ = ["ConsoleConfigError", "ConsoleSettings", "create_app", "run_console"]
