"""Settings of the console: the job system's settings (store, broker, state dir) plus where the
console listens and who may use it.

The console keys come from the environment (config.py's TOML file takes only the job system's
keys): `TENGINE_CONSOLE_HOST` (default 127.0.0.1), `TENGINE_CONSOLE_PORT` (8180),
`TENGINE_CONSOLE_TOKEN`, `TENGINE_CONSOLE_USER` + `TENGINE_CONSOLE_PASSWORD`,
`TENGINE_CONSOLE_TIMEZONE` (an IANA zone for the times shown; default the machine's) and
`TENGINE_RESOURCES` (the resource file; default the one in the state dir).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8180
ENV = {
    "host": "TENGINE_CONSOLE_HOST",
    "port": "TENGINE_CONSOLE_PORT",
    "token": "TENGINE_CONSOLE_TOKEN",
    "username": "TENGINE_CONSOLE_USER",
    "password": "TENGINE_CONSOLE_PASSWORD",
    "timezone": "TENGINE_CONSOLE_TIMEZONE",
    "resources_file": "TENGINE_RESOURCES",
}


class ConsoleConfigError(ValueError):
    """The console cannot start as configured; the message says what to set."""


@dataclass(frozen=True)
class ConsoleSettings:
    runtime: Settings
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timezone: str | None = None  # IANA name; None: the machine's local zone
    resources_file: Path | None = None
    # The command events are in the outbox before they are published, so a broker that does
    # not answer quickly costs the person nothing: the core's relay publishes them later.
    publish_retry_count: int = 2
    publish_retry_interval: float = 0.5
    # How long a status change waits for the core to apply it before answering that it was
    # requested (the core applies it when it handles the event).
    status_change_wait: float = 5.0
    # Auto refresh of the monitor (Tengine: 15 s); the lists default to none.
    monitor_refresh: int = 15

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConsoleConfigError(f"console port {self.port} is not a TCP port (1-65535)")
        if bool(self.username) != bool(self.password):
            raise ConsoleConfigError(
                f"set both {ENV['username']} and {ENV['password']} (or neither)")
        _ = self.zone  # an unknown zone fails here, at start, not on the first screen

    @property
    def zone(self) -> tzinfo:
        if not self.timezone:
            local = datetime.now().astimezone().tzinfo
            assert local is not None
            return local
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConsoleConfigError(f"{ENV['timezone']}={self.timezone!r} is not a time zone "
                                     f"name (e.g. Asia/Tokyo, UTC)") from None

    @property
    def has_credentials(self) -> bool:
        return bool(self.token) or bool(self.username and self.password)

    @classmethod
    def from_env(cls, runtime: Settings, env: dict[str, str] | None = None,
                 **overrides: Any) -> ConsoleSettings:
        """The console keys from `env` (default os.environ); `overrides` (e.g. the command
        line's --host/--port) win. None in overrides means "not given"."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for key, name in ENV.items():
            text = env.get(name, "").strip()
            if text:
                values[key] = text
        if "port" in values:
            try:
                values["port"] = int(values["port"])
            except ValueError:
                raise ConsoleConfigError(f"{ENV['port']}={values['port']!r} is not a port "
                                         f"number") from None
        if "resources_file" in values:
            values["resources_file"] = Path(values["resources_file"]).expanduser().absolute()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(runtime=runtime, **values)
