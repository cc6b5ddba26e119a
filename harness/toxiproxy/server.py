"""The Toxiproxy HTTP API (JSON) over the proxies of this server, after Toxiproxy's ``api.go``.

Endpoints, status codes and JSON shapes are Toxiproxy 2.x's:

    GET /version                          200 {"version": ...}
    POST /reset                           204 enable every proxy, remove every toxic
    GET /proxies                          200 {name: proxy, ...}
    POST /proxies                         201 proxy | 400 bad input | 409 name taken | 500 bind
    POST /populate                        201 {"proxies": [...]} | 400 (nothing changed)
    GET|POST|PATCH|DELETE /proxies/{p}    200 proxy | 204 (delete) | 404
    GET|POST /proxies/{p}/toxics          200 [toxic...] | 200 toxic | 400 | 404 | 409
    GET|POST|PATCH|DELETE /proxies/{p}/toxics/{t}   200 toxic | 204 (delete) | 404

A proxy is {"name", "listen", "upstream", "enabled", "toxics": [...]}, a toxic {"name", "type",
"stream", "toxicity", "attributes"}, an error {"error": message, "status": code}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from .http_server import Request, Response, serve_connection
from .proxy import Proxy, ProxyError, split_address
from .toxics import BadAttributes, toxic_type
from .toxics.base import DOWNSTREAM, STREAMS, ProxyToxic

VERSION = "2.x-compatible (tengine_min fallback)"
DEFAULT_LISTEN = "127.0.0.1:0"  # Toxiproxy listens on every interface when listen is empty

log = logging.getLogger("harness.toxiproxy")

Route = Callable[..., Awaitable[Response]]


def json_response(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode() + b"\n")


def error_response(error: ProxyError) -> Response:
    return json_response(error.status, {"error": error.message, "status": error.status})


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:  # also bad UTF-8
        reason = "EOF" if not body.strip() else str(error)
        raise ProxyError(f"bad request body: {reason}", 400) from error


def json_object(body: bytes, what: str) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ProxyError(f"bad request body: a {what} must be a JSON object", 400)
    return data


def field(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """``data[name]`` checked to be of ``kind`` (null or absent: ``default``)."""
    value = data.get(name)
    if value is None:
        return default
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ProxyError(f"bad request body: field {name!r} must be a {kind.__name__}, "
                         f"got {value!r}", 400)
    return value


class ToxiproxyServer:
    """Every proxy of one server, and the HTTP API over them."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()  # one change to the set of proxies at a time
        self._http: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}  # API connections
        self._routes: list[tuple[list[str], dict[str, Route]]] = [
            (["version"], {"GET": self.version}),
            (["reset"], {"POST": self.reset}),
            (["populate"], {"POST": self.populate}),
            (["proxies"], {"GET": self.proxy_index, "POST": self.proxy_create}),
            (["proxies", "{proxy}"], {"GET": self.proxy_show, "POST": self.proxy_update,
                                      "PATCH": self.proxy_update, "DELETE": self.proxy_delete}),
            (["proxies", "{proxy}", "toxics"], {"GET": self.toxic_index,
                                                "POST": self.toxic_create}),
            (["proxies", "{proxy}", "toxics", "{toxic}"],
             {"GET": self.toxic_show, "POST": self.toxic_update, "PATCH": self.toxic_update,
              "DELETE": self.toxic_delete}),
        ]

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 8474) -> tuple[str, int]:
        """Serve the API on host:port (0: any free port); returns the address it listens on."""
        self._http = await asyncio.start_server(self._serve, host, port)
        bound = self._http.sockets[0].getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop serving: API connections closed (idle keep-alive ones too), proxies stopped."""
        if self._http is not None:
            self._http.close()
        for writer in self._clients.values():
            writer.close()
        if self._clients:  # their handlers see the close and end on their own
            await asyncio.wait(list(self._clients), timeout=2.0)
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        try:
            await serve_connection(reader, writer, self.handle)
        finally:
            del self._clients[task]

    # --- dispatch --------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            # As Toxiproxy: no browsers, so a web page cannot drive it.
            return Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        parts = [part for part in request.path.split("/") if part]
        for pattern, methods in self._routes:
            params = match(pattern, parts)
            if params is None:
                continue
            route = methods.get(request.method)
            if route is None:
                return Response(405, b"method not allowed\n", "text/plain; charset=utf-8")
            try:
                return await route(request, **params)
            except ProxyError as error:
                return error_response(error)
            except Exception as error:  # a bug here must not take the server down
                log.exception("%s %s failed", request.method, request.path)
                return error_response(ProxyError(f"internal error: {error}", 500))
        return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def get_proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ProxyError("proxy not found", 404)
        return proxy

    # --- endpoints -------------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return Response(200, json.dumps({"version": VERSION}).encode() + b"\n",
                        "application/json;charset=utf-8")

    async def reset(self, request: Request) -> Response:
        async with self._lock:
            for proxy in list(self.proxies.values()):
                await proxy.start()
                await proxy.toxics.reset()
        return Response(204)

    async def proxy_index(self, request: Request) -> Response:
        return json_response(200, {name: p.to_json() for name, p in self.proxies.items()})

    async def proxy_create(self, request: Request) -> Response:
        name, listen, upstream, enabled = self._proxy_fields(json_object(request.body, "proxy"))
        async with self._lock:
            if name in self.proxies:
                raise ProxyError("proxy already exists", 409)
            proxy = Proxy(name, listen, upstream)
            if enabled:
                await proxy.start()  # a bind failure leaves nothing behind
            self.proxies[name] = proxy
        return json_response(201, proxy.to_json())

    async def populate(self, request: Request) -> Response:
        data = parse_json(request.body)
        if not isinstance(data, list):
            raise ProxyError("bad request body: populate takes a JSON array of proxies", 400)
        wanted: list[tuple[str, str, str, bool]] = []
        for index, item in enumerate(data, start=1):  # check all before changing anything
            if not isinstance(item, dict):
                raise ProxyError(f"bad request body: proxy {index} is not a JSON object", 400)
            fields = self._proxy_fields(item, where=f" at proxy {index}")
            if any(fields[0] == other[0] for other in wanted):
                raise ProxyError(f"bad request body: duplicate proxy name {fields[0]!r}", 400)
            wanted.append(fields)
        done: list[Proxy] = []
        async with self._lock:
            for name, listen, upstream, enabled in wanted:
                existing = self.proxies.get(name)
                if existing and existing.listen == listen and existing.upstream == upstream:
                    done.append(existing)
                    continue
                if existing:
                    await existing.stop()
                    del self.proxies[name]
                proxy = Proxy(name, listen, upstream)
                try:
                    if enabled:
                        await proxy.start()
                except ProxyError as error:
                    return json_response(error.status, {
                        "error": error.message, "status": error.status,
                        "proxies": [p.to_json() for p in done]})
                self.proxies[name] = proxy
                done.append(proxy)
        return json_response(201, {"proxies": [p.to_json() for p in done]})

    async def proxy_show(self, request: Request, proxy: str) -> Response:
        return json_response(200, self.get_proxy(proxy).to_json())

    async def proxy_update(self, request: Request, proxy: str) -> Response:
        found = self.get_proxy(proxy)
        data = json_object(request.body, "proxy")
        listen = field(data, "listen", str, found.listen)
        upstream = field(data, "upstream", str, found.upstream)
        enabled = field(data, "enabled", bool, found.enabled)
        async with self._lock:
            await found.update(listen, upstream, enabled)
        return json_response(200, found.to_json())

    async def proxy_delete(self, request: Request, proxy: str) -> Response:
        async with self._lock:
            found = self.get_proxy(proxy)
            await found.stop()
            del self.proxies[proxy]
        return Response(204)

    async def toxic_index(self, request: Request, proxy: str) -> Response:
        return json_response(200, [t.to_json() for t in self.get_proxy(proxy).toxics.all()])

    async def toxic_create(self, request: Request, proxy: str) -> Response:
        found = self.get_proxy(proxy)
        data = json_object(request.body, "toxic")
        stream = field(data, "stream", str, DOWNSTREAM)
        if stream not in STREAMS:
            raise ProxyError("stream was invalid, can be either upstream or downstream", 400)
        type_name = field(data, "type", str, "")
        name = field(data, "name", str, "") or f"{type_name}_{stream}"
        toxicity = float(field(data, "toxicity", float, 1.0))
        cls = toxic_type(type_name)
        if cls is None:
            raise ProxyError("invalid toxic type", 400)
        if found.toxics.find(name) is not None:
            raise ProxyError("toxic already exists", 409)
        try:
            toxic = cls.from_attributes(data.get("attributes"))
        except BadAttributes as error:
            raise ProxyError(f"bad request body: {error}", 400) from error
        added = ProxyToxic(name, stream, toxicity, toxic)
        await found.toxics.add(added)
        return json_response(200, added.to_json())

    async def toxic_show(self, request: Request, proxy: str, toxic: str) -> Response:
        found = self.get_proxy(proxy).toxics.find(toxic)
        if found is None:
            raise ProxyError("toxic not found", 404)
        return json_response(200, found.to_json())

    async def toxic_update(self, request: Request, proxy: str, toxic: str) -> Response:
        toxics = self.get_proxy(proxy).toxics
        found = toxics.find(toxic)
        if found is None:
            raise ProxyError("toxic not found", 404)
        data = json_object(request.body, "toxic")
        toxicity = float(field(data, "toxicity", float, found.toxicity))
        try:  # attributes not given keep their value
            updated = type(found.toxic).from_attributes(data.get("attributes"), base=found.toxic)
        except BadAttributes as error:
            raise ProxyError(f"bad request body: {error}", 400) from error
        return json_response(200, (await toxics.update(toxic, updated, toxicity)).to_json())

    async def toxic_delete(self, request: Request, proxy: str, toxic: str) -> Response:
        await self.get_proxy(proxy).toxics.remove(toxic)
        return Response(204)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _proxy_fields(data: dict[str, Any], where: str = "") -> tuple[str, str, str, bool]:
        name = field(data, "name", str, "")
        upstream = field(data, "upstream", str, "")
        listen = field(data, "listen", str, "") or DEFAULT_LISTEN
        enabled = field(data, "enabled", bool, True)
        if not name:
            raise ProxyError(f"missing required field: name{where}", 400)
        if not upstream:
            raise ProxyError(f"missing required field: upstream{where}", 400)
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        return name, listen, upstream, enabled


def match(pattern: list[str], parts: list[str]) -> dict[str, str] | None:
    """Path parameters when ``parts`` fits ``pattern`` ("{name}" takes any one segment)."""
    if len(pattern) != len(parts):
        return None
    params: dict[str, str] = {}
    for expected, part in zip(pattern, parts, strict=True):
        if expected.startswith("{"):
            params[expected[1:-1]] = part
        elif expected != part:
            return None
    return params
