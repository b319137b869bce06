"""The console's security headers and its CSRF rule, as an aiohttp middleware.

Every response carries a Content-Security-Policy (scripts, styles and connections from the gateway itself and the
broker's websockets only), no-sniff, no framing and no referrer; API answers are never cached. A state-changing
request must send ``Content-Type: application/json`` and, if it names an origin, this one: a cross-site form can
send neither (with the SameSite=Strict session cookie, that is the CSRF defence).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["security_headers"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def security_headers(ws_url: str) -> Middleware:
    """The middleware; ``ws_url`` is the broker's websockets URL as the browser reaches it (CSP allows it)."""
    # worker-src blob:: MQTT.js runs its keepalive timer in a worker it creates from a blob, because browsers
    # throttle a background tab's timers to one a minute, too rare for a 30 s keepalive (the broker would drop it).
    policy = (
        f"default-src 'self'; connect-src 'self' {_origin(ws_url)}; script-src 'self'; style-src 'self'; "
        "worker-src blob:; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            refusal = _refuse_cross_site(request)
            if refusal is not None:
                _apply_headers(request, refusal, policy)
                return refusal
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _apply_headers(request, exc, policy)
            raise
        _apply_headers(request, response, policy)
        return response

    return middleware


def _refuse_cross_site(request: web.Request) -> web.Response | None:
    if request.content_type != "application/json":
        return _error(415, "content_type", "state-changing requests must send Content-Type: application/json")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return _error(403, "origin", "cross-origin request refused")
    return None


def _apply_headers(request: web.Request, response: web.StreamResponse | web.HTTPException, policy: str) -> None:
    headers = response.headers
    # a page that brings its own policy keeps it (gateway.console.office_api: the report's SVG charts)
    headers.setdefault("Content-Security-Policy", policy)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    if request.path.startswith("/api/"):
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    else:
        # The page and its scripts change with a deploy; revalidate rather than run a stale console.
        headers.setdefault("Cache-Control", "no-cache")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _error(status: int, field: str, reason: str) -> web.Response:
    return web.json_response({"field": field, "reason": reason}, status=status)
