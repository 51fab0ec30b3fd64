"""HTTP-level guards of `mnistlab serve`, below the FastAPI app: the Host check (DNS rebinding) and JSON bodies for
the 400s uvicorn sends itself (a malformed request line, a bad Content-Length, headers past h11's size limit).

A page on another site can make a browser send requests to 127.0.0.1 under the attacker's own domain name (DNS
rebinding); the browser then lets that page read the answers. Such requests carry the attacker's name in `Host`, so
the server answers only Host names it was told about: the bound host, the localhost names, and IP literals when it
listens on every interface (a rebinding attack needs a domain name, never an address).
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterable

from uvicorn.protocols.http.auto import AutoHTTPProtocol

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def host_name(header: str) -> str:
    """`Host` header → the name alone: 'LocalHost:8000' → 'localhost', '[::1]:8000' → '::1'."""
    h = header.strip().lower()
    if h.startswith("["):  # an IPv6 literal, maybe with a port
        return h[1:h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        h = h.split(":")[0]
    return h.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> tuple[frozenset[str], bool]:
    """(names accepted in `Host`, whether any IP literal is accepted) for a server bound to `bound`."""
    names = {host_name(n) for n in (bound, *LOCAL_NAMES, *extra) if n}
    return frozenset(names), bound in WILDCARDS


class HostCheck:
    """ASGI middleware: a request whose Host is not allowed gets 400 `{"detail": …}` and never reaches the app."""

    def __init__(self, app: Any, *, names: Iterable[str], any_ip: bool = False):
        self.app, self.names, self.any_ip = app, frozenset(names), any_ip

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host_name(header)
            if not (name in self.names or (self.any_ip and _is_ip(name))):
                body = json.dumps({"detail": f"host {header[:100]!r} is not served here (start the server with "
                                             f"--allowed-host NAME to allow it)"}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class JsonErrorProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (h11 or httptools, whichever it picks) with its own 400s as JSON like the app's."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"detail": msg}).encode()
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()
