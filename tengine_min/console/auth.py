"""Who may use the console.

Bound to a loopback address the console needs no credentials (only people on this machine reach
it). Bound to any other address it refuses to start unless a token (`Authorization: Bearer`) or
a user and password (HTTP basic) are configured. Configured credentials are always required,
on loopback too. A state-changing request (POST) that a browser sends from another site (its
`Origin` names another host) is refused, so a web page cannot press the console's buttons.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import ENV, ConsoleConfigError, ConsoleSettings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REALM = "tengine console"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_access_config(settings: ConsoleSettings) -> None:
    """Refuse a non-loopback address without credentials (ConsoleConfigError)."""
    if is_loopback(settings.host) or settings.has_credentials:
        return
    raise ConsoleConfigError(
        f"the console would listen on {settings.host}, which is not a loopback address, "
        f"without credentials: set {ENV['token']} (for Authorization: Bearer) or "
        f"{ENV['username']} and {ENV['password']} (for HTTP basic), or listen on 127.0.0.1")


def credentials_ok(authorization: str | None, settings: ConsoleSettings) -> bool:
    """True when no credentials are configured, or the header carries a configured one."""
    if not settings.has_credentials:
        return True
    if not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and settings.token:
        return hmac.compare_digest(value.encode(), settings.token.encode())
    if scheme == "basic" and settings.username and settings.password:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        # Both compared, always, so the time taken says nothing about which one was wrong.
        user_ok = hmac.compare_digest(user.encode(), settings.username.encode())
        password_ok = hmac.compare_digest(password.encode(), settings.password.encode())
        return user_ok and password_ok
    return False


def cross_site(origin: str | None, host: str | None) -> bool:
    """True when a browser says the request comes from a page of another host."""
    if not origin:
        return False  # not a browser's cross-site request (curl, the harness, same-site GET)
    if origin == "null":
        return True  # sandboxed or file: pages
    return urlsplit(origin).netloc.lower() != (host or "").lower()


class AccessGuard:
    """ASGI middleware: credentials on every HTTP request, same origin on state changes."""

    def __init__(self, app: ASGIApp, settings: ConsoleSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if not credentials_ok(headers.get("authorization"), self.settings):
            challenge = (f'Basic realm="{REALM}", charset="UTF-8"' if self.settings.username
                         else f'Bearer realm="{REALM}"')
            await _reply(send, 401, "authentication required: send the console's token "
                                    "(Authorization: Bearer) or its user and password "
                                    "(HTTP basic)", [("www-authenticate", challenge)])
            return
        if scope["method"] in UNSAFE_METHODS and cross_site(headers.get("origin"),
                                                            headers.get("host")):
            await _reply(send, 403, f"refused: a {scope['method']} from another site "
                                    f"(Origin {headers.get('origin')})", [])
            return
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[str, str]]) -> None:
    import json

    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
