"""What every request of one console app shares: settings, the store, the bus, the actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import tzinfo

from fastapi import Request
from sqlalchemy import Engine

from .actions import Actions
from .bus import Bus
from .settings import ConsoleSettings
from .watcher_log import WatcherLog, watcher_log


@dataclass
class Console:
    settings: ConsoleSettings
    engine: Engine
    bus: Bus
    actions: Actions
    log: logging.Logger

    @property
    def zone(self) -> tzinfo:
        return self.settings.zone

    def watcher_log(self, server_name: str | None, vertex_id: str,
                    credential_name: str | None = None) -> WatcherLog:
        return watcher_log(self.settings.runtime, self.settings.resources_file, server_name,
                           vertex_id, credential_name)


def console_of(request: Request) -> Console:
    """FastAPI dependency: the Console of the app serving this request."""
    return request.app.state.console
