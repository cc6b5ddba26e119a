"""The harness's view of a network link: a Toxiproxy proxy, driven with ``toxiproxy-python``.

``Links`` finds or starts the toxiproxy server, in this order:

1. ``TOXIPROXY_URL`` (e.g. ``http://127.0.0.1:8474``) names a running one: it is used, and left
   running afterwards;
2. a real ``toxiproxy-server`` on PATH is started on a free port;
3. else our fallback (``python -m harness.toxiproxy``) is started in a background process.

``links.link(name, listen, upstream)`` makes a ``Link``: a proxy from ``listen`` (port 0: any
free port; ``link.listen`` then names it) to ``upstream``, with the verbs a fault needs::

    link.cut()          disable: new connections refused, live ones closed; link.enable() undoes it
    link.blackhole()    a timeout toxic with timeout 0 both ways: data stops, nothing closes
    link.heal()         enable and remove every toxic
    link.latency(ms, jitter=0)   link.bandwidth(kbps)   link.remove_toxics("latency")
    with link.down(): ...        with link.blackholed(): ...

Toxiproxy semantics to know: removing a blackhole (``heal``, leaving ``blackholed()``) closes
the connections it caught, as Toxiproxy's timeout toxic does; new connections then flow.

``toxiproxy-python`` keeps its server address in a class attribute, so every call here first
points it at this ``Links``'s server: use one ``Links`` per thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import requests
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tengine_min.ports import free_port

URL_ENV = "TOXIPROXY_URL"
SERVER_BINARY = "toxiproxy-server"
DEFAULT_PORT = 8474
START_TIMEOUT = 15.0  # s for a server we start to answer
STOP_TIMEOUT = 5.0  # s for it to exit on SIGTERM before SIGKILL
BLACKHOLE = "blackhole"  # name prefix of the blackhole toxics
BOTH = "both"
STREAMS = ("upstream", "downstream")

T = TypeVar("T")


class LinkError(RuntimeError):
    """A link or its toxiproxy server could not do what was asked; the message says why."""


class ToxiproxyServer:
    """Where the toxiproxy API is, and the process behind it when we started it."""

    def __init__(self, host: str, port: int, kind: str,
                 process: subprocess.Popen[bytes] | None = None,
                 log_path: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.kind = kind  # "external" (TOXIPROXY_URL), "toxiproxy-server" or "fallback"
        self.process = process
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, keep_log: bool = False) -> None:
        """Stop the server if we started it (an external one is left alone). Its log is
        removed after a clean exit unless ``keep_log``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode == 0 and self.log_path is not None and not keep_log:
            self.log_path.unlink(missing_ok=True)  # kept only when something went wrong


def find_or_start_server(host: str = "127.0.0.1") -> ToxiproxyServer:
    """The server named by TOXIPROXY_URL, else a toxiproxy-server on PATH, else ours."""
    url = os.environ.get(URL_ENV)
    if url:
        return external_server(url)
    binary = shutil.which(SERVER_BINARY)
    if binary:
        return start_toxiproxy_server(binary, host)
    return start_fallback_server(host)


def external_server(url: str) -> ToxiproxyServer:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise LinkError(f"{URL_ENV}={url!r} is not an http://host:port URL")
    server = ToxiproxyServer(parts.hostname, parts.port or DEFAULT_PORT, "external")
    if not _answers(server):
        raise LinkError(f"no toxiproxy answers at {URL_ENV}={url!r} (GET /version failed): "
                        f"start it, or unset {URL_ENV} to let the harness start one")
    return server


def start_toxiproxy_server(binary: str, host: str = "127.0.0.1") -> ToxiproxyServer:
    """Start a real ``toxiproxy-server`` on a free port and wait until it answers."""
    port = free_port(host)
    log_path = _log_file("toxiproxy-server")
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "-host", host, "-port", str(port)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    server = ToxiproxyServer(host, port, "toxiproxy-server", process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(server):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise LinkError(f"{binary} did not start on {server.url}; its log: {log_path}")
        time.sleep(0.05)
    return server


def start_fallback_server(host: str = "127.0.0.1") -> ToxiproxyServer:
    """Start ``python -m harness.toxiproxy`` on a free port; it prints its address when ready."""
    log_path = _log_file("toxiproxy-fallback")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.toxiproxy", "--host", host, "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = _read_line(process.stdout, START_TIMEOUT)
    if not line.startswith(b"toxiproxy API listening on http://"):
        process.kill()
        process.wait()
        raise LinkError(f"the fallback toxiproxy did not start (said {line!r}); "
                        f"its log: {log_path}")
    process.stdout.close()  # it prints nothing more there
    address = line.decode().strip().rsplit("http://", 1)[1]
    bound_host, _, port = address.rpartition(":")
    return ToxiproxyServer(bound_host, int(port), "fallback", process, log_path)


class Links:
    """The proxies of one toxiproxy server, as the harness's links."""

    def __init__(self, host: str = "127.0.0.1",
                 server: ToxiproxyServer | None = None) -> None:
        self.host = host
        self.server = server
        self.links: dict[str, Link] = {}

    def start(self) -> Self:
        if self.server is None:
            self.server = find_or_start_server(self.host)
        return self

    def close(self) -> None:
        """Stop the server if we started it; on an external one, delete our proxies."""
        if self.server is None:
            return
        if self.server.process is None:
            for link in list(self.links.values()):
                # already gone, or the server is: nothing left to clean
                with contextlib.suppress(LinkError):
                    link.destroy()
        self.server.stop()
        self.server = None
        self.links.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self._started().url

    def call(self, what: str, action: Callable[[toxiproxy.Toxiproxy], T]) -> T:
        """Run ``action`` with a client pointed at our server; errors become LinkError."""
        server = self._started()
        client = toxiproxy.Toxiproxy()
        client.update_api_consumer(server.host, server.port)
        try:
            return action(client)
        except requests.RequestException as error:
            raise LinkError(f"{what}: toxiproxy at {server.url} did not answer: {error}") from error
        except (ProxyExists, NotFound, InvalidToxic) as error:  # 409, 404, 400 with the body
            raise LinkError(f"{what}: toxiproxy at {server.url} refused: "
                            f"{_reason(error.args[0] if error.args else '')}") from error

    def link(self, name: str, listen: str, upstream: str) -> Link:
        """A proxy ``name`` from ``listen`` to ``upstream``, enabled and without toxics (an
        existing one with the same addresses is reused and healed, one with others replaced)."""
        what = f"create link {name!r} ({listen} -> {upstream})"

        def make(client: toxiproxy.Toxiproxy) -> dict[str, Any]:
            existing = client.get_proxy(name)
            if existing is not None:
                if existing.upstream == upstream and _same_listen(listen, existing.listen):
                    return {"name": name, "listen": existing.listen, "upstream": upstream,
                            "reused": True}
                existing.destroy()
            # The client's create() would not notice a 500 (e.g. the port is taken): check here.
            return checked(what, APIConsumer.post("/proxies", json={
                "name": name, "listen": listen, "upstream": upstream, "enabled": True}))

        proxy = self.call(what, make)
        link = Link(self, proxy["name"], proxy["listen"], proxy["upstream"])
        if proxy.get("reused"):
            link.heal()
        self.links[name] = link
        return link

    def reset(self) -> None:
        """Every proxy of the server enabled, every toxic removed (POST /reset)."""
        self.call("reset all links", lambda client: client.reset())

    def _started(self) -> ToxiproxyServer:
        if self.server is None:
            raise LinkError("Links is not started: use `with Links() as links:` or "
                            "links.start()")
        return self.server


class Link:
    """One proxied link: ``listen`` (what clients connect to) -> ``upstream``."""

    def __init__(self, links: Links, name: str, listen: str, upstream: str) -> None:
        self.links = links
        self.name = name
        self.listen = listen
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"Link({self.name!r}, {self.listen!r} -> {self.upstream!r})"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def enabled(self) -> bool:
        return bool(self._proxy_state()["enabled"])

    def toxics(self) -> dict[str, dict[str, Any]]:
        """The toxics on this link by name, as the server shows them."""
        return {toxic["name"]: toxic for toxic in self._proxy_state()["toxics"]}

    def cut(self) -> None:
        """Disable: the listener closes (new connections refused) and live connections are
        closed on both sides."""
        self._set_enabled(False, "cut")

    def blackhole(self) -> None:
        """Data stops both ways and nothing closes, like a pulled cable (timeout 0 toxics)."""
        present = self.toxics()
        for stream in STREAMS:
            name = f"{BLACKHOLE}_{stream}"
            if name not in present:
                self._add_toxic(name, "timeout", stream, {"timeout": 0})

    def unblackhole(self) -> None:
        """Remove the blackhole (Toxiproxy closes the connections it held)."""
        present = self.toxics()
        for stream in STREAMS:
            if f"{BLACKHOLE}_{stream}" in present:
                self._remove_toxic(f"{BLACKHOLE}_{stream}")

    def enable(self) -> None:
        """Undo `cut()`: listen again; the toxics stay."""
        self._set_enabled(True, "enable")

    def heal(self) -> None:
        """Enable the link and remove every toxic on it."""
        self._set_enabled(True, "heal")
        for name in self.toxics():
            self._remove_toxic(name)

    def remove_toxics(self, type_name: str) -> None:
        """Remove every toxic of one type (``latency``, ``bandwidth`` ...), in each direction."""
        for name, toxic in self.toxics().items():
            if toxic["type"] == type_name:
                self._remove_toxic(name)

    def latency(self, ms: int, jitter: int = 0, stream: str = BOTH) -> None:
        """Delay data by ``ms`` +/- ``jitter`` milliseconds in each direction chosen."""
        for one in self._streams(stream):
            self._replace_toxic(f"latency_{one}", "latency", one,
                                {"latency": int(ms), "jitter": int(jitter)})

    def bandwidth(self, kbps: int, stream: str = BOTH) -> None:
        """Limit each direction chosen to ``kbps`` kilobytes (1000 bytes) per second, the
        unit of Toxiproxy's ``rate``."""
        for one in self._streams(stream):
            self._replace_toxic(f"bandwidth_{one}", "bandwidth", one, {"rate": int(kbps)})

    @contextmanager
    def down(self) -> Iterator[Link]:
        """Cut for the duration of the block, then enable again (as the client's down())."""
        self.cut()
        try:
            yield self
        finally:
            self.enable()

    @contextmanager
    def blackholed(self) -> Iterator[Link]:
        """Blackholed for the duration of the block, then the blackhole is removed."""
        self.blackhole()
        try:
            yield self
        finally:
            self.unblackhole()

    def destroy(self) -> None:
        self._call("delete", lambda proxy: proxy.destroy())
        self.links.links.pop(self.name, None)

    # --- through toxiproxy-python ----------------------------------------------------------

    def _call(self, what: str, action: Callable[[toxiproxy.Proxy], T]) -> T:
        def on_proxy(client: toxiproxy.Toxiproxy) -> T:
            proxy = client.get_proxy(self.name)
            if proxy is None:
                raise LinkError(f"{what} link {self.name!r}: proxy not found on "
                                f"{self.links.url} (deleted, or the server restarted)")
            return action(proxy)

        return self.links.call(f"{what} link {self.name!r}", on_proxy)

    def _set_enabled(self, enabled: bool, what: str) -> None:
        # As the client's enable()/disable(), but a 500 (port taken meanwhile) is an error.
        self.links.call(f"{what} link {self.name!r}", lambda client: checked(
            f"{what} link {self.name!r}",
            APIConsumer.post(f"/proxies/{self.name}", json={"enabled": enabled})))

    def _proxy_state(self) -> dict[str, Any]:
        def fetch(client: toxiproxy.Toxiproxy) -> dict[str, Any]:
            return APIConsumer.get(f"/proxies/{self.name}").json()

        return self.links.call(f"read link {self.name!r}", fetch)

    def _add_toxic(self, name: str, type_name: str, stream: str,
                   attributes: dict[str, int]) -> None:
        self._call(f"add {type_name} toxic to", lambda proxy: proxy.add_toxic(
            name=name, type=type_name, stream=stream, toxicity=1.0, attributes=attributes))

    def _remove_toxic(self, name: str) -> None:
        self._call(f"remove toxic {name!r} from", lambda proxy: proxy.destroy_toxic(name))

    def _replace_toxic(self, name: str, type_name: str, stream: str,
                       attributes: dict[str, int]) -> None:
        if name in self.toxics():
            self._remove_toxic(name)
        self._add_toxic(name, type_name, stream, attributes)

    @staticmethod
    def _streams(stream: str) -> tuple[str, ...]:
        if stream == BOTH:
            return STREAMS
        if stream in STREAMS:
            return (stream,)
        raise LinkError(f"stream must be 'upstream', 'downstream' or 'both', got {stream!r}")


# --- helpers -------------------------------------------------------------------------------

def checked(what: str, response: requests.Response) -> dict[str, Any]:
    """The JSON of a 2xx answer; any other answer is a LinkError with the server's reason."""
    if 200 <= response.status_code < 300:
        return response.json()
    reason = _reason(response.content)
    raise LinkError(f"{what}: toxiproxy answered {response.status_code}: {reason}")


def _reason(body: bytes | str) -> str:
    """The "error" of a Toxiproxy error body, else the body itself."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip()


def _answers(server: ToxiproxyServer) -> bool:
    try:
        return requests.get(f"{server.url}/version", timeout=1.0).status_code == 200
    except requests.RequestException:
        return False


def _same_listen(wanted: str, actual: str) -> bool:
    """Whether a proxy listening on ``actual`` fits ``wanted`` (port 0: any port, same host)."""
    wanted_host, _, wanted_port = wanted.rpartition(":")
    return wanted == actual or (wanted_port == "0" and actual.rpartition(":")[0] == wanted_host)


def _log_file(prefix: str) -> Path:
    fd, path = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log")
    os.close(fd)
    return Path(path)


def _read_line(stream: Any, timeout: float) -> bytes:
    """One line from a pipe, or what came before the deadline or the end."""
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                break
            byte = os.read(stream.fileno(), 1)
            if not byte:
                break
            data += byte
    return data
