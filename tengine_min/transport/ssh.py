"""The ssh transport: run one command line on a job host over ssh (paramiko).

One fresh connection per command: connect, check the host key, authenticate, run, read, close.
It costs one handshake per start or kill, and in exchange no connection is ever shared, reused
after a fault or left half-open; a retry is simply a new connection (core/retry.py).

Steps and what each failure becomes (the TransportError classes of base.py):

| step | failure | error | the command ran? |
|---|---|---|---|
| resolve the address | unknown host name | UnknownHost (never retried) | no |
| TCP connect | refused, reset, timed out, no route | CannotConnect | no |
| banner and key exchange | closed, timed out | CannotConnect | no |
| host key | not the pinned one | BadHostKey (never retried) | no |
| authentication | refused | AuthFailed (never retried) | no |
| authentication | link lost, timed out | CannotConnect | no |
| open a session | link lost | CannotConnect | no |
| exec and read | link lost, channel closed without exit status | ConnectionLost | maybe |
| exec and read | no exit status within the command timeout | CommandTimeout | maybe |

A silent cut (a black hole: nothing arrives, nothing is reset) is noticed by a keepalive probe:
every `keepalive_interval` seconds the client sends OpenSSH's `keepalive@openssh.com` global
request with want-reply set, as `ssh -o ServerAliveInterval` does; when a probe gets no answer
within `keepalive_timeout` seconds the link is closed, so a cut is noticed within the sum of the
two, whatever the remote command is doing. (paramiko's own `set_keepalive` asks for no reply, so
it cannot notice a black hole: the bytes vanish and nothing comes back to miss.)

The failpoint hook `on_connected` runs when ssh is up and authenticated and the command is not
yet sent: the driver hangs `driver.after_connect` (and for a kill `driver.before_kill`) there.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import paramiko

from ..resources import Credential, Server
from .base import (
    AuthFailed,
    CannotConnect,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
    TransportError,
)

WATCHER_DEFAULT_STATE_DIR = "~/.tengine-watcher"  # of the ssh user, as tengine-watcher's default
KEEPALIVE_REQUEST = "keepalive@openssh.com"  # OpenSSH's ServerAliveInterval probe
READ_POLL = 0.1  # seconds between looks at the deadline while reading
OUTPUT_CAP = 1 << 20  # bytes kept of each stream; the watcher prints a line or two
_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")
# Host key algorithms to prefer when a key of this type is pinned (RSA keys sign with SHA-2).
_ALGORITHMS_OF = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}

# paramiko logs its own view of each failure (tracebacks included) to stderr when nobody set up
# its logger; here every failure is classified and the driver logs it once, in the core log.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class UnknownHost(CannotConnect):
    """The server's address is a host name that does not resolve: a mistake, not a fault."""

    retryable = False


class BadHostKey(TransportError):
    """The host key the server offered is not the pinned one (or none is pinned for it)."""

    retryable = False


def _failed(cls: type[TransportError], message: str, detail: str) -> TransportError:
    """An error whose message is the reason a person reads, and whose `detail` is the short
    cause the attempt log shows (`error="connection refused"`)."""
    error = cls(message)
    error.detail = detail  # type: ignore[attr-defined]
    return error


class SshTransport:
    """Runs command lines on `server` as `credential`; see the module docstring."""

    def __init__(self, server: Server, credential: Credential, *, watcher_command: str,
                 on_connected: Callable[[], None] | None = None) -> None:
        self.server = server
        self.credential = credential
        self.server_name = server.name
        # The watcher's own default; it expands the ~ itself (the word reaches it quoted).
        self.watcher_state_dir = server.watcher_state_dir or WATCHER_DEFAULT_STATE_DIR
        self.watcher_command = server.watcher_command or watcher_command
        self.on_connected = on_connected

    # -- the one public verb --

    def run(self, command: str, *, timeout: float) -> CommandResult:
        deadline = time.monotonic() + timeout
        key = self._client_key()  # what is wrong with the configuration shows before any
        pinned = self._pinned_keys()  # connection is made
        sock = self._connect_socket()
        watch: _LinkWatch | None = None
        transport: paramiko.Transport | None = None
        try:
            transport = paramiko.Transport(sock)
            self._handshake(transport, list(pinned))
            self._check_host_key(transport, pinned)
            self._authenticate(transport, key)
            watch = _LinkWatch(transport, self.server.keepalive_interval,
                               self.server.keepalive_timeout, deadline)
            watch.start()
            if self.on_connected is not None:
                self.on_connected()
            channel = self._open_session(transport, watch)
            return self._execute(channel, command, watch, timeout)
        finally:
            if watch is not None:
                watch.stop()
            if transport is not None:
                transport.close()
            sock.close()

    # -- connecting --

    def _cannot(self, detail: str) -> TransportError:
        return _failed(CannotConnect, f"cannot connect to server {self.server.name} "
                                      f"({self.server.endpoint}): {detail}", detail)

    def _connect_socket(self) -> socket.socket:
        address, port = self.server.address, self.server.port
        try:
            candidates = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            code = getattr(exc, "errno", None)
            if code == socket.EAI_AGAIN:  # the resolver itself is down: may pass
                raise self._cannot("temporary failure in name resolution") from None
            raise _failed(UnknownHost, f"unknown host name for server {self.server.name}: "
                                       f"{address}", "unknown host name") from None
        last: OSError | None = None
        for family, kind, proto, _name, sockaddr in candidates:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.server.connect_timeout)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise self._cannot(describe_os_error(last)) from None

    def _handshake(self, transport: paramiko.Transport, pinned_types: list[str]) -> None:
        """Banner and key exchange, both within banner_timeout; the server is asked for a key
        of a pinned type first."""
        transport.banner_timeout = self.server.banner_timeout
        transport.handshake_timeout = self.server.banner_timeout
        options = transport.get_security_options()
        options.key_types = _preferred_key_types(pinned_types, options.key_types)
        done = threading.Event()
        transport.start_client(event=done)
        if not done.wait(self.server.banner_timeout) and transport.is_active():
            raise self._cannot(f"no ssh handshake within {self.server.banner_timeout:g} s")
        if not transport.is_active():
            raise self._cannot(describe_ssh_error(transport.get_exception(), "ssh handshake"))

    def _check_host_key(self, transport: paramiko.Transport,
                        pinned: dict[str, paramiko.PKey]) -> None:
        offered = transport.get_remote_server_key()
        if pinned.get(offered.get_name()) == offered:
            return
        expected = ", ".join(f"{k.get_name()} {k.fingerprint}" for k in pinned.values())
        raise _failed(
            BadHostKey,
            f"host key of server {self.server.name} ({self.server.endpoint}) does not match "
            f"the pinned one: it offered {offered.get_name()} {offered.fingerprint}, expected "
            f"{expected or 'a key of another type'}; if the host was reinstalled, update "
            f"host_key{'_file' if self.server.host_key_file else ''} of {self.server.name}",
            "host key mismatch")

    def _authenticate(self, transport: paramiko.Transport, key: paramiko.PKey | None) -> None:
        user = self.credential.username or ""
        transport.auth_timeout = self.server.auth_timeout
        began = time.monotonic()
        try:
            if key is None:
                left = transport.auth_password(user, self.credential.password or "")
            else:
                left = transport.auth_publickey(user, key)
        except paramiko.BadAuthenticationType as exc:
            raise self._auth_failed(
                f"the server allows only {', '.join(exc.allowed_types)}") from None
        except paramiko.AuthenticationException:
            if not transport.is_active():
                raise self._cannot("connection lost during authentication") from None
            if time.monotonic() - began >= self.server.auth_timeout:
                raise self._cannot(f"no answer to authentication within "
                                   f"{self.server.auth_timeout:g} s") from None
            raise self._auth_failed("refused") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._cannot(describe_ssh_error(exc, "authentication")) from None
        if left or not transport.is_authenticated():
            raise self._auth_failed(f"the server asks for more: {', '.join(left or [])}")

    def _auth_failed(self, detail: str) -> TransportError:
        return _failed(AuthFailed, f"authentication failed for credential "
                                   f"{self.credential.name} on server {self.server.name}",
                       detail)

    def _open_session(self, transport: paramiko.Transport,
                      watch: _LinkWatch) -> paramiko.Channel:
        try:
            return transport.open_session(timeout=self.server.keepalive_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            cause = watch.cause or describe_ssh_error(exc, "opening a session")
            raise self._cannot(f"connection lost before the command was sent ({cause})") \
                from None

    # -- running --

    def _execute(self, channel: paramiko.Channel, command: str, watch: _LinkWatch,
                 timeout: float) -> CommandResult:
        try:
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._after_send(watch, describe_ssh_error(exc, "sending the command"),
                                   timeout) from None
        channel.settimeout(READ_POLL)
        stdout, stderr = bytearray(), bytearray()
        while True:
            _drain_stderr(channel, stderr)
            try:
                data = channel.recv(65536)
            except TimeoutError:
                if watch.timed_out or not channel.get_transport().is_active():
                    break
                continue
            if not data:  # end of output (or the channel closed)
                break
            _keep(stdout, data)
        # The exit status follows the end of output; wait for it as long as the link lives.
        while not channel.status_event.wait(READ_POLL):
            if watch.timed_out or not channel.get_transport().is_active():
                break
        _drain_stderr(channel, stderr)
        if channel.exit_status < 0 or not channel.status_event.is_set():
            raise self._after_send(watch, "the channel closed without an exit status", timeout)
        return CommandResult(channel.exit_status, _text(stdout), _text(stderr))

    def _after_send(self, watch: _LinkWatch, cause: str, timeout: float) -> TransportError:
        """The request went out and no outcome came back."""
        if watch.timed_out:
            return _failed(CommandTimeout, f"no answer from server {self.server.name} within "
                                           f"{timeout:g} s", f"no answer within {timeout:g} s")
        detail = watch.cause or cause
        return _failed(ConnectionLost, f"connection to server {self.server.name} "
                                       f"({self.server.endpoint}) lost after the command was "
                                       f"sent: {detail}", f"connection lost: {detail}")

    # -- keys --

    def _client_key(self) -> paramiko.PKey | None:
        """The credential's private key (None for a password), read before connecting."""
        credential = self.credential
        if credential.type == "ssh_password":
            return None
        if credential.type not in ("ssh_public_key", "ssh_public_key_file"):
            raise _failed(AuthFailed, f"credential {credential.name} is of type "
                                      f"{credential.type}, which cannot log in over ssh "
                                      f"(use ssh_password or ssh_public_key)", "wrong type")
        try:
            return load_private_key(credential)
        except Exception as exc:  # noqa: BLE001 - any reason a key cannot be used
            where = credential.private_key_file or "private_key"
            raise _failed(AuthFailed, f"credential {credential.name}: cannot use the private "
                                      f"key {where}: {describe_key_error(exc)}",
                          "private key unusable") from None

    def _pinned_keys(self) -> dict[str, paramiko.PKey]:
        """key type -> the pinned key of this server (from host_key or host_key_file)."""
        try:
            return pinned_host_keys(self.server)
        except (ValueError, OSError) as exc:
            raise _failed(BadHostKey, f"the pinned host key of server {self.server.name} "
                                      f"cannot be used: {exc}", "pinned host key unusable") \
                from None


class _LinkWatch:
    """Probes the link every `interval` s and closes it when a probe has no answer within
    `patience` s (a silent cut) or when the command's deadline passes."""

    def __init__(self, transport: paramiko.Transport, interval: float, patience: float,
                 deadline: float) -> None:
        self.transport = transport
        self.interval = interval
        self.patience = patience
        self.deadline = deadline
        self.cause: str | None = None  # why the watch closed the link
        self.timed_out = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ssh-link-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        next_probe = time.monotonic() + self.interval
        while not self._stop.is_set() and self.transport.is_active():
            now = time.monotonic()
            if now >= self.deadline:
                self._close(None, timed_out=True)
                return
            if now < next_probe:
                self._stop.wait(min(next_probe, self.deadline) - now)
                continue
            probe = threading.Thread(target=self._probe, name="ssh-keepalive", daemon=True)
            probe.start()
            probe.join(min(self.patience, max(0.0, self.deadline - time.monotonic())))
            if probe.is_alive() and not self._stop.is_set():
                if time.monotonic() >= self.deadline:
                    self._close(None, timed_out=True)
                else:
                    self._close(f"no answer to a keepalive within {self.patience:g} s")
                return
            next_probe = time.monotonic() + self.interval

    def _probe(self) -> None:
        # An error means the link is gone, which the reader sees.
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            # Answered (OpenSSH says "failure" to this request: any answer proves the link).
            self.transport.global_request(KEEPALIVE_REQUEST, wait=True)

    def _close(self, cause: str | None, *, timed_out: bool = False) -> None:
        self.cause = cause
        self.timed_out = timed_out
        self.transport.close()


# --- host keys and private keys -------------------------------------------------------------


def known_hosts_name(server: Server) -> str:
    """How known_hosts names this server: `address`, or `[address]:port` off port 22."""
    if not server.address:  # the resources refuse an ssh server without one
        raise ValueError(f"server {server.name} has no address to look up in known_hosts")
    return server.address if server.port == 22 else f"[{server.address}]:{server.port}"


def pinned_host_keys(server: Server) -> dict[str, paramiko.PKey]:
    """key type -> key pinned for `server`. Raises ValueError (or OSError for the file) saying
    what is wrong with the configured key."""
    name = known_hosts_name(server)
    if server.host_key_file:
        path = Path(server.host_key_file).expanduser()
        keys = paramiko.HostKeys(str(path)).lookup(name)
        if not keys:
            raise ValueError(f"{path} has no key for {name}")
        return dict(keys)
    text = (server.host_key or "").strip()
    words = text.split()
    if not words:
        raise ValueError("no host key configured")
    if words[0].startswith(_KEY_TYPE_PREFIXES):
        return {words[0]: _public_key(words[0], words[1] if len(words) > 1 else "")}
    entry = paramiko.hostkeys.HostKeyEntry.from_line(text)
    if entry is None or entry.key is None:
        raise ValueError(f"cannot read the known_hosts line {text!r}")
    if not any(_names(host, name) for host in entry.hostnames):
        raise ValueError(f"the known_hosts line names {words[0]}, not {name}")
    return {entry.key.get_name(): entry.key}


def _names(host: str, name: str) -> bool:
    """Whether a known_hosts host field (plain or hashed `|1|salt|hash`) stands for `name`."""
    if host.startswith("|1|"):
        return paramiko.HostKeys.hash_host(name, host) == host
    return host == name


def _public_key(key_type: str, data: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException) as exc:
        raise ValueError(f"cannot read the {key_type} key {data[:16]!r}...: {exc}") from None


def load_private_key(credential: Credential) -> paramiko.PKey:
    """The credential's private key, from its file or its text, decrypted with its passphrase."""
    password = credential.passphrase.encode() if credential.passphrase else None
    if credential.private_key_file:
        # paramiko declares a str password but hands it on to cryptography, which takes bytes
        return paramiko.PKey.from_path(Path(credential.private_key_file).expanduser(),
                                       password)  # type: ignore[arg-type]
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(credential.private_key or ""),
                                        password=credential.passphrase)
        except paramiko.PasswordRequiredException:
            raise
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(str(exc))
    raise ValueError("not a private key paramiko can read (" + "; ".join(errors) + ")")


# --- describing failures -----------------------------------------------------------------------


def describe_os_error(exc: BaseException | None) -> str:
    """`connection refused`, `timed out`, `no route to host`... as the reasons say it."""
    if exc is None:
        return "no address to connect to"
    if isinstance(exc, TimeoutError) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        return "timed out"
    known = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
             errno.ENETUNREACH: "network is unreachable", errno.ECONNRESET: "connection reset",
             errno.ECONNABORTED: "connection aborted", errno.EPIPE: "connection closed"}
    code = getattr(exc, "errno", None)
    if code in known:
        return known[code]
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).lower()


def describe_ssh_error(exc: BaseException | None, during: str) -> str:
    if exc is None or isinstance(exc, EOFError):
        return f"connection closed during {during}"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return f"{during} failed: {exc}"


def describe_key_error(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, paramiko.PasswordRequiredException) or "password" in text.lower():
        return f"the key is encrypted and its passphrase is missing or wrong ({text})"
    return text


def _preferred_key_types(pinned: list[str], supported: Sequence[str]) -> tuple[str, ...]:
    """The server's host key algorithms with those of the pinned keys first, so a server with
    several keys shows the one we know."""
    first: list[str] = []
    for key_type in pinned:
        first.extend(_ALGORITHMS_OF.get(key_type, (key_type,)))
    first = [t for t in first if t in supported]
    return tuple(dict.fromkeys([*first, *supported]))


def _drain_stderr(channel: paramiko.Channel, into: bytearray) -> None:
    while channel.recv_stderr_ready():
        _keep(into, channel.recv_stderr(65536))


def _keep(buffer: bytearray, data: bytes) -> None:
    room = OUTPUT_CAP - len(buffer)
    if room > 0:
        buffer.extend(data[:room])


def _text(data: bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")
