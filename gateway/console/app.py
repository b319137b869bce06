"""The agent console: a local web page where an agent signs in, sees screen-pops and saves the pre-filled ticket.

The page gets screen-pops straight from the broker (MQTT over websockets, the agent's own broker account and
ACL), so this app only serves the page and a small JSON API: sign-in, read and save a ticket draft, and ask for
a caller to be restricted (Zhanjiang 12345 rules, art. 9). That request is only *pending*: a supervisor confirms
it with the CLI, so a single agent's click never blocks a number by itself. The agent may also hand the caller to
a linked centre with one key (art. 14), blind or three-way (`linkage.agent_transfer.AgentTransfer.transfer`).

Sign-in uses the agent's broker password (`mosquitto_conf.mqtt_password`): one secret per agent, and the page
needs it anyway to open the broker connection (it keeps it in memory only). The session is a random token in an
HttpOnly, SameSite=Strict cookie, mapped server-side; together with requiring a JSON body on every state-changing
request that is the CSRF defence (a cross-site form can send neither the cookie nor application/json).
Caller numbers never reach the log unmasked (article 20).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.mqtt.passwords import mqtt_password
from gateway.contract import REQUEST_TYPES, is_valid_name, screenpop_topic
from gateway.basics.phone import mask, normalise_strict
from linkage.agent_transfer import MODES as TRANSFER_MODES
from linkage.agent_transfer import TransferError

log = logging.getLogger("gateway.console.app")

STATIC_DIR = Path(__file__).with_name("static")
SESSION_COOKIE = "hotline_console"
SESSION_TTL = timedelta(hours=12)
# A failed sign-in costs the guesser this long; the same for unknown agents, so timing names no agent.
LOGIN_FAILURE_DELAY_S = 0.5
MAX_BODY_BYTES = 64 * 1024
# Bounds for the fields an agent edits; generous for real tickets, small enough that nothing abuses the store.
_TEXT_LIMITS = {"category": 64, "unit": 128, "address": 256, "summary": 4000}
_CALLBACK_LIMIT = 32
_REASON_LIMIT = 500
_AGENT_LIMIT = 64
_PASSWORD_LIMIT = 256

TransferFunction = Callable[..., Awaitable[int]]

_store_key = web.AppKey("store", object)
_config_key = web.AppKey("console_config", object)
_sessions_key = web.AppKey("sessions", object)
_transfer_key = web.AppKey("transfer", object)
_centres_key = web.AppKey("centres", object)


@dataclass(frozen=True)
class _Config:
    state_dir: Path
    agents: frozenset[str]
    ws_url: str
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class _Session:
    agent: str
    expires: datetime


class FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def create_console_app(
    *, store, state_dir: Path, agents: list[str], ws_url: str, clock: Callable[[], datetime],
    transfer: TransferFunction | None = None, centres: Callable[[], list[dict]] | None = None,
) -> web.Application:
    """The console app. `ws_url` is the broker's websockets URL as the *browser* reaches it (CSP allows it).

    `transfer(call_id=, centre=, mode=, agent=, ticket_id=)` hands a caller to a linked centre and returns the
    hand-off id (raises `TransferError`); without it the transfer API answers 503. `centres()` lists what the page
    offers, as `{"name", "label"}` dicts (`linkage.agent_transfer.centre_choices`).
    """
    app = web.Application(middlewares=[_security_headers], client_max_size=MAX_BODY_BYTES)
    app[_store_key] = store
    app[_transfer_key] = transfer
    app[_centres_key] = centres or (lambda: [])
    app[_config_key] = _Config(state_dir=Path(state_dir), agents=frozenset(agents), ws_url=ws_url, clock=clock)
    app[_sessions_key] = {}
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/tickets/{ticket_id}", _get_ticket)
    app.router.add_put("/api/tickets/{ticket_id}", _put_ticket)
    app.router.add_post("/api/tickets/{ticket_id}/abusive", _mark_abusive)
    app.router.add_post("/api/tickets/{ticket_id}/transfer", _transfer)
    app.router.add_get("/api/centres", _centres)
    return app


# -- middleware -----------------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        refusal = _refuse_cross_site(request)
        if refusal is not None:
            _apply_headers(request, refusal)
            return refusal
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply_headers(request, exc)
        raise
    _apply_headers(request, response)
    return response


def _refuse_cross_site(request: web.Request) -> web.Response | None:
    if request.content_type != "application/json":
        return _error(415, "content_type", "state-changing requests must send Content-Type: application/json")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return _error(403, "origin", "cross-origin request refused")
    return None


def _apply_headers(request: web.Request, response: web.StreamResponse | web.HTTPException) -> None:
    config: _Config = request.app[_config_key]
    headers = response.headers
    headers["Content-Security-Policy"] = (
        f"default-src 'self'; connect-src 'self' {_origin(config.ws_url)}; script-src 'self'; style-src 'self'; "
        "img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
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


# -- page -------------------------------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})


# -- sign-in ----------------------------------------------------------------------------------------------------


async def _login(request: web.Request) -> web.Response:
    config: _Config = request.app[_config_key]
    body = await _json_body(request)
    agent, password = body.get("agent"), body.get("password")
    if not (isinstance(agent, str) and isinstance(password, str)
            and 0 < len(agent) <= _AGENT_LIMIT and len(password) <= _PASSWORD_LIMIT):
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
        return _error(401, "credentials", "wrong agent or password")
    known = agent in config.agents
    # Unknown agents are compared against a throwaway secret so the work done (and the answer) is the same.
    expected = mqtt_password(config.state_dir, agent) if known else secrets.token_urlsafe(24)
    if not (hmac.compare_digest(password.encode(), expected.encode()) and known):
        log.info("event=console_login_failed known_agent=%s", "yes" if known else "no")
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
        return _error(401, "credentials", "wrong agent or password")
    sessions: dict[str, _Session] = request.app[_sessions_key]
    now = config.clock()
    _drop_expired(sessions, now)
    token = secrets.token_urlsafe(32)
    sessions[token] = _Session(agent=agent, expires=now + SESSION_TTL)
    log.info("event=console_login agent=%s", agent)
    response = web.json_response({"agent": agent, "ws_url": config.ws_url, "topic": screenpop_topic(agent)})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(SESSION_TTL.total_seconds()))
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        request.app[_sessions_key].pop(token, None)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _drop_expired(sessions: dict[str, _Session], now: datetime) -> None:
    for token in [token for token, session in sessions.items() if session.expires <= now]:
        del sessions[token]


def _signed_in_agent(request: web.Request) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    sessions: dict[str, _Session] = request.app[_sessions_key]
    session = sessions.get(token) if token else None
    if session is None or session.expires <= request.app[_config_key].clock():
        if token:
            sessions.pop(token, None)
        raise _http_error(web.HTTPUnauthorized, "session", "sign in first")
    return session.agent


# -- tickets ----------------------------------------------------------------------------------------------------


async def _get_ticket(request: web.Request) -> web.Response:
    agent = _signed_in_agent(request)
    draft = await _draft_for(request, agent)
    return _json(draft)


async def _put_ticket(request: web.Request) -> web.Response:
    agent = _signed_in_agent(request)
    body = await _json_body(request)
    try:
        fields = validate_ticket_fields(body)
    except FieldError as exc:
        return _error(400, exc.field, exc.reason)
    draft = await _draft_for(request, agent)
    store = request.app[_store_key]
    await store.update_ticket_draft(draft["id"], **fields, status="saved", agent=agent,
                                    at=request.app[_config_key].clock())
    log.info("event=console_ticket_saved ticket=%s agent=%s fields=%s", draft["id"], agent,
             ",".join(sorted(fields)))
    return _json(await _draft_for(request, agent))


async def _mark_abusive(request: web.Request) -> web.Response:
    agent = _signed_in_agent(request)
    body = await _json_body(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return _error(400, "reason", "a reason is required")
    if len(reason) > _REASON_LIMIT:
        return _error(400, "reason", f"at most {_REASON_LIMIT} characters")
    draft = await _draft_for(request, agent)
    store = request.app[_store_key]
    call = await store.get_call(draft["call_id"]) if draft.get("call_id") else None
    number = (call or {}).get("number")
    if not number:
        return _error(409, "number", "this call has no caller number to restrict")
    pending_id = await store.add_pending_restriction(
        number=number, reason=reason.strip(), requested_by=agent, call_id=draft["call_id"],
        at=request.app[_config_key].clock(),
    )
    log.info("event=console_abusive_requested ticket=%s call_id=%s number=%s agent=%s pending_id=%s",
             draft["id"], draft["call_id"], mask(number), agent, pending_id)
    return _json({"pending_id": pending_id}, status=201)


# -- transfer to a linked centre --------------------------------------------------------------------------------


async def _centres(request: web.Request) -> web.Response:
    _signed_in_agent(request)
    centres = [{"name": str(c["name"]), "label": str(c.get("label") or c["name"])}
               for c in request.app[_centres_key]()]
    return _json({"centres": centres})


async def _transfer(request: web.Request) -> web.Response:
    agent = _signed_in_agent(request)
    transfer: TransferFunction | None = request.app[_transfer_key]
    if transfer is None:
        return _error(503, "transfer", "transfers to linked centres are not available on this console")
    body = await _json_body(request)
    centre, mode = body.get("centre"), body.get("mode")
    if not is_valid_name(centre):  # as the emergency list allows it (also keeps the log line clean)
        return _error(400, "centre", "choose a linked centre")
    if mode not in TRANSFER_MODES:
        return _error(400, "mode", f"must be one of {', '.join(TRANSFER_MODES)}")
    draft = await _draft_for(request, agent)
    if not draft.get("call_id"):
        return _error(409, "call", "this ticket has no call to transfer")
    try:
        handoff_id = await transfer(call_id=draft["call_id"], centre=centre, mode=mode, agent=agent,
                                    ticket_id=draft["id"])
    except TransferError as exc:
        log.info("event=console_transfer_refused ticket=%s call_id=%s centre=%s mode=%s agent=%s reason=%s",
                 draft["id"], draft["call_id"], centre, mode, agent, exc.reason)
        return _error(409, "transfer", exc.reason)
    log.info("event=console_transfer ticket=%s call_id=%s centre=%s mode=%s agent=%s handoff=%s", draft["id"],
             draft["call_id"], centre, mode, agent, handoff_id)
    return _json({"handoff_id": handoff_id}, status=202)


async def _draft_for(request: web.Request, agent: str) -> dict:
    ticket_id = request.match_info["ticket_id"]
    if len(ticket_id) > 64:
        raise _http_error(web.HTTPNotFound, "ticket", "no such ticket")
    draft = await request.app[_store_key].get_ticket_draft(ticket_id)
    if draft is None:
        raise _http_error(web.HTTPNotFound, "ticket", "no such ticket")
    # A ticket taken by one agent is not another's to edit (article 10: first-contact responsibility).
    if draft.get("agent") not in (None, "", agent):
        raise _http_error(web.HTTPForbidden, "ticket", "this ticket belongs to another agent")
    # The store names the key ticket_id; the page (like the screen-pop's ticket) calls it id.
    return {**draft, "id": ticket_id}


def validate_ticket_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields an agent may edit, checked and converted for the store; FieldError names the first bad one."""
    editable = {"type", *_TEXT_LIMITS, "callback_number", "due"}
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name not in editable:
            raise FieldError(name, "not an editable field")
        if name == "type":
            if value not in REQUEST_TYPES:
                raise FieldError(name, f"must be one of {', '.join(REQUEST_TYPES)}")
            fields[name] = value
        elif name == "due":
            fields[name] = _iso_date(value)
        elif name == "callback_number":
            fields[name] = _callback_number(value)
        else:
            fields[name] = _bounded_text(name, value, _TEXT_LIMITS[name])
    if not fields:
        raise FieldError("body", "no fields to save")
    return fields


def _bounded_text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise FieldError(name, "must be text")
    value = value.strip()
    if len(value) > limit:
        raise FieldError(name, f"at most {limit} characters")
    if any(ch < " " and ch not in "\n\t" for ch in value):
        raise FieldError(name, "contains control characters")
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise FieldError("due", "must be an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FieldError("due", "must be an ISO date YYYY-MM-DD") from None


def _callback_number(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > _CALLBACK_LIMIT:
        raise FieldError("callback_number", f"must be a phone number of at most {_CALLBACK_LIMIT} characters")
    try:
        return normalise_strict(value)
    except ValueError:
        raise FieldError("callback_number", "not a usable phone number") from None


# -- JSON helpers -----------------------------------------------------------------------------------------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: json's decoder gives up on arrays or objects nested about 1,000 deep
        raise _http_error(web.HTTPBadRequest, "body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise _http_error(web.HTTPBadRequest, "body", "must be a JSON object")
    return body


def _json(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, default=_jsonable,
                                                                                ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _error(status: int, field: str, reason: str) -> web.Response:
    return web.json_response({"field": field, "reason": reason}, status=status)


def _http_error(cls: type[web.HTTPException], field: str, reason: str) -> web.HTTPException:
    return cls(text=json.dumps({"field": field, "reason": reason}), content_type="application/json")
