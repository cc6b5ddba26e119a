"""Servers and credentials that jobnet definitions name (Tengine's resources).

They are read from a resource file: `<state dir>/resources.toml` (or `resources.yaml` /
`resources.yml`), or the file given with `--resources`. Without a file the defaults apply: one
server `local` (jobs run on this machine) and one credential `local`, so the examples run out of
the box.

    [servers.local]
    transport = "local"

    [servers.s1]                          # a job host reached over ssh (docs/ssh.md)
    transport = "ssh"
    address = "10.0.0.2"                  # an IP address or a host name
    ssh_port = 22
    host_key = "ssh-ed25519 AAAAC3..."    # or a known_hosts line, or host_key_file = "..."
    ssh_retry_count = 2                   # default: the setting command_retry_count (0)
    ssh_retry_interval = 1.0

    [credentials.c1]
    type = "ssh_public_key"               # or ssh_password (username + password)
    username = "job"
    private_key_file = "~/.ssh/id_ed25519"
    passphrase = "..."                    # only for an encrypted key

A bad file raises ResourceError naming the file, the entry and the key. A name a job uses but the
file does not define is reported by `tengine load` (validator codes unknown_server /
unknown_credential) and, should the resources change afterwards, at run time:
`Resources.server(name)` raises UnknownResource, "server 'x' is not defined in <file>", which
becomes the job's error reason.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSPORTS = ("local", "ssh")
CREDENTIAL_TYPES = ("local", "ssh_password", "ssh_public_key", "ssh_public_key_file")
SSH_CREDENTIAL_TYPES = ("ssh_password", "ssh_public_key", "ssh_public_key_file")
FILE_NAMES = ("resources.toml", "resources.yaml", "resources.yml")
DEFAULTS_SOURCE = "the built-in resources (no resources file)"


class ResourceError(ValueError):
    """The resource file cannot be used; says which file, entry and key."""


class UnknownResource(LookupError):
    """A server or credential name that the resources do not define."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Server:
    name: str
    transport: str = "local"
    address: str | None = None
    port: int = 22  # `ssh_port` in the file (`port` is accepted too)
    # The sshd's host key, pinned: a public key ("ssh-ed25519 AAAA..."), a known_hosts line, or
    # a known_hosts file. There is no auto-accept: an ssh server needs one of the two.
    host_key: str | None = None
    host_key_file: str | None = None
    amqp_url: str | None = None  # the broker as the watchers on this host reach it
    watcher_command: str | None = None  # tengine-watcher on this host (default from settings)
    watcher_state_dir: str | None = None  # the watcher's state dir on this host
    retry_count: int | None = None  # command retries for this server (default from settings)
    retry_interval: float | None = None
    # ssh timeouts, seconds: TCP connect; banner and key exchange; authentication; and the
    # keepalive probe: one every keepalive_interval, the link counted dead when a probe has no
    # answer within keepalive_timeout (a silent cut is noticed within the sum of the two).
    connect_timeout: float = 10.0
    banner_timeout: float = 10.0
    auth_timeout: float = 10.0
    keepalive_interval: float = 5.0
    keepalive_timeout: float = 15.0

    @property
    def endpoint(self) -> str:
        """`address:port`, as the reasons show it."""
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Credential:
    name: str
    type: str = "local"
    username: str | None = None
    password: str | None = None
    private_key: str | None = None  # the key itself (PEM / OpenSSH text)
    private_key_file: str | None = None
    passphrase: str | None = None  # of an encrypted private key

    @property
    def is_ssh(self) -> bool:
        return self.type in SSH_CREDENTIAL_TYPES


@dataclass(frozen=True)
class Resources:
    servers: dict[str, Server]
    credentials: dict[str, Credential]
    source: str  # the file they came from, or DEFAULTS_SOURCE

    def server(self, name: str | None) -> Server:
        if not name:
            raise UnknownResource(f"no server given (set server_name on the job or a jobnet "
                                  f"above it; servers are defined in {self.source})")
        try:
            return self.servers[name]
        except KeyError:
            raise UnknownResource(f"server {name!r} is not defined in {self.source}") from None

    def credential(self, name: str) -> Credential:
        try:
            return self.credentials[name]
        except KeyError:
            raise UnknownResource(
                f"credential {name!r} is not defined in {self.source}") from None


def default_resources() -> Resources:
    return Resources(servers={"local": Server("local")},
                     credentials={"local": Credential("local")}, source=DEFAULTS_SOURCE)


def find_resources_file(state_dir: Path) -> Path | None:
    for name in FILE_NAMES:
        path = state_dir / name
        if path.exists():
            return path
    return None


def load_resources(path: str | Path | None = None,
                   state_dir: str | Path | None = None) -> Resources:
    """The resources of `path` (must exist), else of the state dir's resource file, else the
    defaults. Raises ResourceError for a file that cannot be used."""
    if path is None:
        found = find_resources_file(Path(state_dir)) if state_dir is not None else None
        if found is None:
            return default_resources()
        path = found
    path = Path(path).expanduser().absolute()
    data = _read(path)
    return parse_resources(data, str(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ResourceError(f"{path}: resources file not found") from None
    except OSError as exc:
        raise ResourceError(f"{path}: cannot read the resources file: {exc.strerror}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(raw.decode("utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ResourceError(f"{path}: not valid YAML: {exc}") from None
    else:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ResourceError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ResourceError(f"{path}: expected tables [servers.NAME] and [credentials.NAME]")
    return data


# key in the file -> (field of Server / Credential, type). Tengine's own names come first;
# `port`, `retry_count` and `retry_interval` are accepted for the same fields.
_SERVER_KEYS: dict[str, tuple[str, type]] = {
    "transport": ("transport", str), "address": ("address", str),
    "ssh_port": ("port", int), "port": ("port", int),
    "host_key": ("host_key", str), "host_key_file": ("host_key_file", str),
    "amqp_url": ("amqp_url", str), "watcher_command": ("watcher_command", str),
    "watcher_state_dir": ("watcher_state_dir", str),
    "ssh_retry_count": ("retry_count", int), "retry_count": ("retry_count", int),
    "ssh_retry_interval": ("retry_interval", float),
    "retry_interval": ("retry_interval", float),
    "ssh_connect_timeout": ("connect_timeout", float),
    "ssh_banner_timeout": ("banner_timeout", float),
    "ssh_auth_timeout": ("auth_timeout", float),
    "ssh_keepalive_interval": ("keepalive_interval", float),
    "ssh_keepalive_timeout": ("keepalive_timeout", float),
}
_CREDENTIAL_KEYS: dict[str, tuple[str, type]] = {
    key: (key, str) for key in ("type", "username", "password", "private_key",
                                "private_key_file", "passphrase")}
_CREDENTIAL_NEEDS = {"local": (), "ssh_password": ("username", "password"),
                     "ssh_public_key": ("username",),
                     "ssh_public_key_file": ("username", "private_key_file")}
_TIMEOUTS = ("connect_timeout", "banner_timeout", "auth_timeout", "keepalive_interval",
             "keepalive_timeout")
# The first word of a public key line ("ssh-ed25519 AAAA...") as opposed to a known_hosts line,
# which starts with the host names.
_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


def parse_resources(data: dict[str, Any], source: str) -> Resources:
    unknown = set(data) - {"servers", "credentials"}
    if unknown:
        raise ResourceError(f"{source}: unknown section {min(unknown)!r} "
                            f"(expected servers and credentials)")
    servers = {name: Server(name=name, **values) for name, values in
               _entries(data, "servers", _SERVER_KEYS, source).items()}
    credentials = {name: Credential(name=name, **values) for name, values in
                   _entries(data, "credentials", _CREDENTIAL_KEYS, source).items()}
    for server in servers.values():
        _check_server(server, f"{source}: servers.{server.name}")
    for credential in credentials.values():
        _check_credential(credential, f"{source}: credentials.{credential.name}")
    return Resources(servers=servers, credentials=credentials, source=source)


def _check_server(server: Server, where: str) -> None:
    if server.transport not in TRANSPORTS:
        raise ResourceError(f"{where}: transport {server.transport!r} is not one of "
                            f"{', '.join(TRANSPORTS)}")
    if server.transport == "ssh" and not server.address:
        raise ResourceError(f"{where}: an ssh server needs an address")
    if not 0 < server.port < 65536:
        raise ResourceError(f"{where}: port {server.port} is not a TCP port (1-65535)")
    for key in ("retry_count", "retry_interval"):
        value = getattr(server, key)
        if value is not None and value < 0:
            raise ResourceError(f"{where}: {key} must be >= 0, got {value}")
    for key in _TIMEOUTS:
        if getattr(server, key) <= 0:
            raise ResourceError(f"{where}: ssh_{key} must be > 0 seconds, "
                                f"got {getattr(server, key)}")
    if server.transport != "ssh":
        return
    if server.host_key and server.host_key_file:
        raise ResourceError(f"{where}: give host_key or host_key_file, not both")
    if not (server.host_key or server.host_key_file):
        raise ResourceError(
            f"{where}: an ssh server needs its host key pinned (host keys are never accepted "
            f"unseen): host_key = \"ssh-ed25519 AAAA...\" (e.g. from `ssh-keyscan "
            f"{server.address}`) or host_key_file = \"~/.ssh/known_hosts\"")
    if server.host_key:
        words = server.host_key.split()
        if words and words[0].startswith(_KEY_TYPE_PREFIXES):
            shape_ok = len(words) >= 2
        else:  # a known_hosts line: hosts, key type, key
            shape_ok = len(words) >= 3 and not words[0].startswith("@")
        if not shape_ok:
            raise ResourceError(f"{where}: host_key {server.host_key!r} is neither a public "
                                f"key (\"ssh-ed25519 AAAA...\") nor a known_hosts line "
                                f"(\"{server.address} ssh-ed25519 AAAA...\")")


def _check_credential(credential: Credential, where: str) -> None:
    if credential.type not in CREDENTIAL_TYPES:
        raise ResourceError(f"{where}: type {credential.type!r} is not one of "
                            f"{', '.join(CREDENTIAL_TYPES)}")
    for key in _CREDENTIAL_NEEDS[credential.type]:
        if not getattr(credential, key):
            raise ResourceError(f"{where}: a {credential.type} credential needs {key}")
    if credential.type == "ssh_public_key" and not (credential.private_key_file or
                                                     credential.private_key):
        raise ResourceError(f"{where}: a ssh_public_key credential needs private_key_file "
                            f"(or the key itself as private_key)")


def _entries(data: dict[str, Any], section: str, keys: dict[str, tuple[str, type]],
             source: str) -> dict[str, dict[str, Any]]:
    table = data.get(section) or {}
    if not isinstance(table, dict):
        raise ResourceError(f"{source}: {section} must be a table of named entries "
                            f"([{section}.NAME])")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in table.items():
        where = f"{source}: {section}.{name}"
        if not isinstance(entry, dict):
            raise ResourceError(f"{where}: expected a table of settings, got {entry!r}")
        values: dict[str, Any] = {}
        given: dict[str, str] = {}  # field -> the key that set it
        for key, value in entry.items():
            if key not in keys:
                raise ResourceError(f"{where}: unknown key {key!r} (known: {', '.join(keys)})")
            field_name, kind = keys[key]
            if field_name in given:
                raise ResourceError(f"{where}: {given[field_name]!r} and {key!r} set the same "
                                    f"thing; keep one")
            given[field_name] = key
            values[field_name] = _typed(value, kind, f"{where}: key {key!r}")
        out[str(name)] = values
    return out


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = {str: "a string", int: "a whole number", float: "a number"}[kind]
        raise ResourceError(f"{where}: expected {expected}, got {value!r}")
    return value
