"""The HTTP API through which the office's work-order system tells the gateway how the units handle a ticket
(art. 10-13), so that the IVR's progress query (art. 12) announces the real status, unit and due date.

    POST /api/v1/tickets/{ticket}/status   {"status": "transferred", "unit": "市住建局", "reason": "..."}
    GET  /api/v1/tickets/{ticket}          where the ticket stands and every report on it

Every request carries ``Authorization: Bearer <token>`` (the token comes from the environment or the state
directory, never from the code); it listens on loopback unless the config says otherwise. Answers: 200 with the
ticket's handling; 400 a body that is not a JSON object with a text ``status``; 401 no or a wrong token; 404 a
ticket the hotline never made; 409 an unknown status or a step the life cycle refuses, with the reason; 413 a body
over 16 KiB.
"""
from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.workorder.lifecycle import TransitionRefused, UnknownStatus, handling_json

__all__ = ["MAX_BODY_BYTES", "create_status_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
_store_key = web.AppKey("store", object)
_token_key = web.AppKey("token", str)
_clock_key = web.AppKey("clock", object)


def create_status_app(*, store: Any, token: str, clock: Callable[[], datetime]) -> web.Application:
    """The status API app; ``token`` must be non-empty (an API nobody can authenticate to is not started)."""
    if not token:
        raise ValueError("the work-order status API needs a token")
    app = web.Application(middlewares=[_bearer_only], client_max_size=MAX_BODY_BYTES)
    app[_store_key], app[_token_key], app[_clock_key] = store, token, clock
    app.router.add_post("/api/v1/tickets/{ticket}/status", _report_status)
    app.router.add_get("/api/v1/tickets/{ticket}", _show)
    return app


@web.middleware
async def _bearer_only(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[_token_key]
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        log.warning("event=workorder_api_unauthorised peer=%s path=%s", request.remote, request.path)
        return _error(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


async def _report_status(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
    except (ValueError, UnicodeDecodeError, RecursionError):   # RecursionError: nested ~1,000 deep
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return _error(400, 'the body is a JSON object with a "status" text')
    unit, reason = body.get("unit"), body.get("reason")
    if not all(value is None or isinstance(value, str) for value in (unit, reason)):
        return _error(400, '"unit" and "reason" are texts')
    ticket = request.match_info["ticket"]
    try:
        handling = await request.app[_store_key].report_ticket_status(
            ticket, body["status"], unit=unit, reason=reason, at=request.app[_clock_key](), source="api")
    except LookupError:
        return _error(404, f"no ticket {ticket}")
    except (UnknownStatus, TransitionRefused) as exc:
        return _error(409, str(exc))
    log.info("event=ticket_status_reported ticket=%s status=%s unit=%s", ticket, handling.status, handling.unit)
    return web.json_response(handling_json(ticket, handling), dumps=_dumps)


async def _show(request: web.Request) -> web.Response:
    ticket = request.match_info["ticket"]
    store = request.app[_store_key]
    handling = await store.ticket_handling(ticket)
    if handling is None:
        return _error(404, f"no ticket {ticket}")
    log_entries = [{**e, "at": e["at"].isoformat(), "due": e["due"].isoformat() if e["due"] else None}
                   for e in await store.ticket_status_log(ticket)]
    return web.json_response({**handling_json(ticket, handling), "log": log_entries}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers, dumps=_dumps)
