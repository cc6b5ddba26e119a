"""Settings of the job system, in one place.

From lowest to highest precedence: the defaults below, a TOML file (`<state dir>/tengine.toml`,
or the file given with `--config`), then environment variables. The state dir itself comes from
`--state-dir`, else `TENGINE_STATE_DIR`, else `./.tengine`.

Every key of the TOML file has an environment variable `TENGINE_<KEY IN CAPITALS>`; e.g.
`heartbeat_interval = 1.5` and `TENGINE_HEARTBEAT_INTERVAL=1.5` mean the same. A value of the wrong
type raises ConfigError naming the file (or variable), the key and what was expected. Tests shorten
times through these same settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "TENGINE_STATE_DIR"
DEFAULT_STATE_DIR = ".tengine"
CONFIG_FILE_NAME = "tengine.toml"
ENV_PREFIX = "TENGINE_"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from and what was wanted."""


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    # Where the settings came from, for messages ("defaults", or the TOML file's path).
    source: str = "defaults"
    # The broker. None: the private node of the state dir (`tengine broker start`).
    amqp_url: str | None = None
    # The store. None: SQLite in the state dir.
    db_url: str | None = None
    # Publishing events (the core's relay, the CLI, the watchers): Tengine's 30 x 1 s.
    publish_retry_count: int = 30
    publish_retry_interval: float = 1.0
    # Job heartbeats: the watcher sends one every interval; the monitors call a job lost after
    # expiry seconds of silence (Tengine: 5 s and 20 s).
    heartbeat_interval: float = 5.0
    heartbeat_expiry: float = 20.0
    # Kill defaults for jobs whose definition sets no killing_signals (Tengine: KILL, 5 s).
    kill_signals: tuple[str, ...] = ("KILL",)
    kill_interval: float = 5.0
    # The driver: threads running start/kill commands on the hosts, and how long one may take.
    driver_threads: int = 4
    command_timeout: float = 660.0
    # How long `tengine-watcher run` waits for its watchdog (Tengine's MM_SYSTEM_AGENT_RUN_TIMEOUT).
    watcher_start_timeout: float = 600.0
    # Retries of a start/kill command after a retryable transport error (Tengine has none: 0).
    command_retry_count: int = 0
    command_retry_interval: float = 1.0
    # The watcher program on remote hosts (the local transport uses the one of this install).
    watcher_command: str = "tengine-watcher"
    # Bytes of each output stream a watcher keeps in its spool file (None: everything).
    output_cap: int | None = None
    # The core: how often the outbox relay looks for rows written by other processes, how often
    # the schedules (timeouts, alerts) are checked, and how long a shutdown waits for the driver.
    relay_poll_interval: float = 1.0
    schedule_interval: float = 1.0
    shutdown_grace: float = 10.0
    log_level: str = "INFO"

    # -- derived paths --

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def core_log(self) -> Path:
        return self.log_dir / "core.log"

    @property
    def broker_dir(self) -> Path:
        return self.state_dir / "broker"

    @property
    def watcher_state_dir(self) -> Path:
        """The watcher state dir of the local server (jobs on this machine)."""
        return self.state_dir / "watcher"

    @property
    def resources_file(self) -> Path:
        return self.state_dir / "resources.toml"

    def broker_url(self) -> str:
        """The broker to talk to: the configured URL, else the private node of the state dir."""
        if self.amqp_url:
            return self.amqp_url
        from .broker import Broker

        return Broker(self.broker_dir).url

    def store_target(self) -> str:
        """What store.db.engine_for takes: the db URL, else the state dir (SQLite there)."""
        return self.db_url or str(self.state_dir)


@dataclass(frozen=True)
class _Key:
    """How one setting is read from TOML text and from an environment variable."""

    kind: str  # int | float | str | amqp_url | signals | level
    minimum: float | None = 0
    nullable: bool = False


_KEYS: dict[str, _Key] = {
    "amqp_url": _Key("amqp_url", nullable=True),
    "db_url": _Key("str", nullable=True),
    "publish_retry_count": _Key("int"),
    "publish_retry_interval": _Key("float"),
    "heartbeat_interval": _Key("float"),
    "heartbeat_expiry": _Key("float"),
    "kill_signals": _Key("signals"),
    "kill_interval": _Key("float"),
    "driver_threads": _Key("int", minimum=1),
    "command_timeout": _Key("float", minimum=0.001),
    "watcher_start_timeout": _Key("float", minimum=0.001),
    "command_retry_count": _Key("int"),
    "command_retry_interval": _Key("float"),
    "watcher_command": _Key("str"),
    "output_cap": _Key("int", nullable=True),
    "relay_poll_interval": _Key("float", minimum=0.01),
    "schedule_interval": _Key("float", minimum=0.01),
    "shutdown_grace": _Key("float"),
    "log_level": _Key("level"),
}
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Kept in sync with Settings by a test: every settable field has a reader.
SETTING_NAMES = tuple(_KEYS)


def resolve_state_dir(arg: str | Path | None = None) -> Path:
    """`--state-dir` if given, else $TENGINE_STATE_DIR, else ./.tengine (absolute)."""
    raw = str(arg) if arg else os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(raw).expanduser().absolute()


def load_settings(state_dir: str | Path | None = None, config_file: str | Path | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (`config_file`, else `<state dir>/tengine.toml` when it
    exists), then the environment (`env`, default os.environ). Raises ConfigError."""
    env = dict(os.environ) if env is None else env
    if state_dir is None and env.get(STATE_DIR_ENV):
        state_dir = env[STATE_DIR_ENV]
    root = resolve_state_dir(state_dir)
    settings = Settings(state_dir=root)
    path = Path(config_file).expanduser().absolute() if config_file else root / CONFIG_FILE_NAME
    if config_file is not None or path.exists():
        settings = replace(settings, source=str(path), **_read_toml(path))
    settings = replace(settings, **_read_env(env))
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KEYS:
            known = ", ".join(_KEYS)
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known})")
        values[key] = _convert(key, value, where=f"{path}: key {key!r}")
    return values


def _read_env(env: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in _KEYS:
        name = ENV_PREFIX + key.upper()
        text = env.get(name)
        if text is None or text.strip() == "":
            continue
        values[key] = _convert(key, _from_text(key, text.strip()),
                               where=f"environment variable {name}")
    return values


def _from_text(key: str, text: str) -> Any:
    """An environment variable's text as the TOML value it stands for."""
    spec = _KEYS[key]
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            return text  # _convert reports it with the expected type
    if spec.kind == "float":
        try:
            return float(text)
        except ValueError:
            return text
    if spec.kind == "signals":
        return [word.strip() for word in text.split(",")]
    return text


def _convert(key: str, value: Any, *, where: str) -> Any:
    spec = _KEYS[key]
    if value is None or (spec.nullable and value == ""):
        if spec.nullable:
            return None
        raise ConfigError(f"{where}: a value is required")
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return _at_least(value, spec, where)
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number of seconds, got {value!r}")
        return float(_at_least(value, spec, where))
    if spec.kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
        return value.strip()
    if spec.kind == "amqp_url":
        if not isinstance(value, str) or not value.strip().startswith(("amqp://", "amqps://")):
            raise ConfigError(f"{where}: expected amqp://user:password@host:port/vhost, "
                              f"got {value!r}")
        return value.strip()
    if spec.kind == "level":
        if not isinstance(value, str) or value.strip().upper() not in _LEVELS:
            raise ConfigError(f"{where}: expected one of {', '.join(_LEVELS)}, got {value!r}")
        return value.strip().upper()
    if spec.kind == "signals":
        return _signals(value, where)
    raise AssertionError(f"no reader for setting kind {spec.kind}")


def _at_least(value: float, spec: _Key, where: str) -> float:
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{where}: expected a value >= {spec.minimum:g}, got {value!r}")
    return value


def _signals(value: Any, where: str) -> tuple[str, ...]:
    import signal

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a list of signal names, e.g. [\"TERM\", \"KILL\"]")
    names = []
    for item in value:
        name = str(item).strip().upper().removeprefix("SIG") if isinstance(item, str) else None
        if not name or not hasattr(signal, f"SIG{name}"):
            raise ConfigError(f"{where}: {item!r} is not a signal name (e.g. TERM, KILL)")
        names.append(name)
    return tuple(names)


def describe(settings: Settings) -> list[tuple[str, Any]]:
    """(key, value) of every setting, for `tengine up` and the docs."""
    return [(f.name, getattr(settings, f.name)) for f in fields(settings)
            if f.name in _KEYS]


