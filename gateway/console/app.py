"""The agent console: a local web page where an agent signs in, sees screen-pops and saves the pre-filled ticket.

The page gets screen-pops straight from the broker (MQTT over websockets, the agent's own broker account and
ACL), so this app only serves the page and a small JSON API: sign-in, the current call's screen-pop again (for a
page that loads or reconnects after the pop went out), read and save a ticket draft, and ask for
a caller to be restricted (Zhanjiang 12345 rules, art. 9). That request is only *pending*: a supervisor confirms
it with the CLI, so a single agent's click never blocks a number by itself. The agent may also hand the caller to
a linked centre with one key (art. 14), blind or three-way (`linkage.agent_transfer.AgentTransfer.transfer`).

Sign-in uses the agent's broker password (`mosquitto_conf.mqtt_password`): one secret per agent, and the page
needs it anyway to open the broker connection (it keeps it in memory only). The session is a random token in an
HttpOnly, SameSite=Strict cookie, mapped server-side; together with requiring a JSON body on every state-changing
request that is the CSRF defence (a cross-site form can send neither the cookie nor application/json).
Caller numbers never reach the log unmasked (article 20).

Tickets are named by their random public id, never by their (sequential) number, and shown only to those who may
see them (`gateway.console.access`: the ticket's agent, agents who answered its call or were assigned it,
supervisors); every access by anyone but the ticket's agent, and every refusal, is written to the store's access
audit before anything is shown or changed. A refusal answers 404, like an unknown id, so it tells nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path

from aiohttp import web

from ami_handlers.screenpop import DEFAULT_LOW_CONFIDENCE, assemble_screenpop
from gateway.basics.phone import mask
from gateway.basics.write_health import STORE_ERRORS
from gateway.console.access import (
    ROLE_AGENT,
    ROLE_SUPERVISOR,
    Access,
    TicketHolders,
    Viewer,
    decide,
)
from gateway.console.callbacks_api import CallBack, add_callback_routes
from gateway.console.current_call import current_screenpop
from gateway.console.headers import security_headers
from gateway.console.office_api import OfficeSettings, add_office_routes
from gateway.console.recordings_api import add_recording_routes
from gateway.console.replies import error_reply, http_error, json_reply, read_json_body
from gateway.console.sessions import (
    CONFIG_KEY,
    SESSION_COOKIE,
    SESSION_TTL,
    SESSIONS_KEY,
    STORE_KEY,
    ConsoleConfig,
    Session,
    drop_expired,
    signed_in,
)
from gateway.console.ticket_fields import FieldError, validate_ticket_fields
from gateway.contract import is_valid_name, screenpop_topic
from gateway.mqtt.passwords import mqtt_password
from linkage.agent_transfer import MODES as TRANSFER_MODES
from linkage.agent_transfer import TransferError

log = logging.getLogger("gateway.console.app")

STATIC_DIR = Path(__file__).with_name("static")
# A failed sign-in costs the guesser this long; the same for unknown agents, so timing names no agent.
LOGIN_FAILURE_DELAY_S = 0.5
MAX_BODY_BYTES = 64 * 1024
_REASON_LIMIT = 500
_AGENT_LIMIT = 64
_TICKET_NUMBER_LIMIT = 20
_PASSWORD_LIMIT = 256

TransferFunction = Callable[..., Awaitable[int]]

_transfer_key = web.AppKey("transfer", object)
_centres_key = web.AppKey("centres", object)


def create_console_app(
    *, store, state_dir: Path, agents: list[str], ws_url: str, clock: Callable[[], datetime],
    transfer: TransferFunction | None = None, centres: Callable[[], list[dict]] | None = None,
    supervisors: Iterable[str] = (), low_confidence: float = DEFAULT_LOW_CONFIDENCE,
    call_back: CallBack | None = None, office: OfficeSettings | None = None,
) -> web.Application:
    """The console app. `ws_url` is the broker's websockets URL as the *browser* reaches it (CSP allows it).
    `agents` may sign in; those also in `supervisors` (config: `role = "supervisor"`) see every ticket.

    `transfer(call_id=, centre=, mode=, agent=, ticket_id=)` hands a caller to a linked centre and returns the
    hand-off id (raises `TransferError`); without it the transfer API answers 503. `centres()` lists what the page
    offers, as `{"name", "label"}` dicts (`linkage.agent_transfer.centre_choices`). `call_back(task_id, agent=)`
    starts an agent's call-back (`gateway.aftercall.outbound.OutboundCalls.call_back`). ``office``: the
    supervisors' page (`gateway.console.office_api`), off without it.
    """
    app = web.Application(middlewares=[security_headers(ws_url)], client_max_size=MAX_BODY_BYTES)
    app[STORE_KEY] = store
    app[_transfer_key] = transfer
    app[_centres_key] = centres or (list)
    unknown = set(supervisors) - set(agents)
    if unknown:
        raise ValueError(f"supervisors must be agents too: {', '.join(sorted(unknown))}")
    app[CONFIG_KEY] = ConsoleConfig(state_dir=Path(state_dir), agents=frozenset(agents),
                                    supervisors=frozenset(supervisors), ws_url=ws_url, clock=clock,
                                    low_confidence=low_confidence)
    app[SESSIONS_KEY] = {}
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/session", _session)
    app.router.add_get("/api/screenpop", _current_screenpop)
    app.router.add_get("/api/tickets", _find_ticket)
    app.router.add_get("/api/tickets/{public_id}", _get_ticket)
    app.router.add_put("/api/tickets/{public_id}", _put_ticket)
    app.router.add_post("/api/tickets/{public_id}/abusive", _mark_abusive)
    app.router.add_post("/api/tickets/{public_id}/transfer", _transfer)
    app.router.add_post("/api/tickets/{public_id}/assign", _assign)
    app.router.add_get("/api/centres", _centres)
    add_recording_routes(app)
    add_callback_routes(app, call_back)
    if office is not None:
        add_office_routes(app, office)
    return app


# -- page -------------------------------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})


# -- sign-in ----------------------------------------------------------------------------------------------------


async def _login(request: web.Request) -> web.Response:
    config: ConsoleConfig = request.app[CONFIG_KEY]
    body = await read_json_body(request)
    agent, password = body.get("agent"), body.get("password")
    if not (isinstance(agent, str) and isinstance(password, str)
            and 0 < len(agent) <= _AGENT_LIMIT and len(password) <= _PASSWORD_LIMIT):
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
        return error_reply(401, "credentials", "wrong agent or password")
    known = agent in config.agents
    # Unknown agents are compared against a throwaway secret so the work done (and the answer) is the same.
    expected = mqtt_password(config.state_dir, agent) if known else secrets.token_urlsafe(24)
    if not (hmac.compare_digest(password.encode(), expected.encode()) and known):
        log.info("event=console_login_failed known_agent=%s", "yes" if known else "no")
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
        return error_reply(401, "credentials", "wrong agent or password")
    sessions: dict[str, Session] = request.app[SESSIONS_KEY]
    now = config.clock()
    drop_expired(sessions, now)
    token = secrets.token_urlsafe(32)
    viewer = Viewer(agent, ROLE_SUPERVISOR if agent in config.supervisors else ROLE_AGENT)
    sessions[token] = Session(viewer=viewer, expires=now + SESSION_TTL)
    log.info("event=console_login agent=%s role=%s", agent, viewer.role)
    response = web.json_response(_session_details(config, viewer))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(SESSION_TTL.total_seconds()))
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        request.app[SESSIONS_KEY].pop(token, None)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _session(request: web.Request) -> web.Response:
    """Who is signed in: a page that was reloaded shows its workspace (and its current pop) at once."""
    return json_reply(_session_details(request.app[CONFIG_KEY], signed_in(request)))


def _session_details(config: ConsoleConfig, viewer: Viewer) -> dict:
    return {"agent": viewer.name, "role": viewer.role, "ws_url": config.ws_url, "topic": screenpop_topic(viewer.name)}


# -- the current call's screen-pop -------------------------------------------------------------------------------


async def _current_screenpop(request: web.Request) -> web.Response:
    """The pop of the signed-in agent's current call (``{"pop": null}`` without one). The page asks on load and
    each time its broker connection is (re)established, after subscribing: what was published while it was away
    arrives this way, what comes later over MQTT; the page drops the repeat by the pop's id."""
    viewer = signed_in(request)
    config: ConsoleConfig = request.app[CONFIG_KEY]
    store = request.app[STORE_KEY]
    pop = await current_screenpop(store, viewer.name, now=config.clock(), low_confidence=config.low_confidence)
    if pop is not None and pop.get("ticket"):
        draft = await store.ticket_by_public_id(pop["ticket"].get("public_id") or "")
        # The pop was sent to this agent because they answered; the rule still decides (a ticket they may no
        # longer see is not shown).
        if draft is None or not await _permitted(request, viewer, draft, "screenpop"):
            pop = None
    return json_reply({"pop": pop})


async def _find_ticket(request: web.Request) -> web.Response:
    """A supervisor opens any ticket by the number a caller or an agent reads out (``?number=2026030200001``): the
    answer is shaped like a screen-pop (caller, history, transcript, ticket with its public id)."""
    viewer = signed_in(request)
    if not viewer.is_supervisor:
        return error_reply(403, "role", "only a supervisor looks tickets up by number")
    number = request.query.get("number", "").strip()
    if not (number.isdigit() and len(number) <= _TICKET_NUMBER_LIMIT):
        return error_reply(400, "ticket", "a ticket number is digits")
    config: ConsoleConfig = request.app[CONFIG_KEY]
    store = request.app[STORE_KEY]
    draft = await store.get_ticket_draft(number)
    if draft is None or not await _permitted(request, viewer, draft, "lookup"):
        raise http_error(web.HTTPNotFound, "ticket", "no such ticket")
    call = (await store.get_call(draft["call_id"]) if draft.get("call_id") else None) or {
        "call_id": draft.get("call_id"), "number": None, "ivr_path": []}
    now = config.clock()
    pop = await assemble_screenpop(store, message_id=f"ticket-{draft['public_id']}", agent=viewer.name, call=call,
                                   ticket=draft, reason=None, created_at=now, now=now,
                                   low_confidence=config.low_confidence)
    return json_reply({"pop": pop})


# -- tickets ----------------------------------------------------------------------------------------------------


async def _get_ticket(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    draft = await _draft_for(request, viewer, "read")
    return json_reply(draft)


async def _put_ticket(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    body = await read_json_body(request)
    try:
        fields = validate_ticket_fields(body)
    except FieldError as exc:
        return error_reply(400, exc.field, exc.reason)
    draft = await _draft_for(request, viewer, "save")
    store = request.app[STORE_KEY]
    # The ticket stays its agent's: a supervisor or an assigned agent saving it does not take it over.
    await store.update_ticket_draft(draft["ticket_id"], **fields, status="saved", at=request.app[CONFIG_KEY].clock())
    log.info("event=console_ticket_saved ticket=%s agent=%s fields=%s", draft["ticket_id"], viewer.name,
             ",".join(sorted(fields)))
    return json_reply(_for_page(await store.get_ticket_draft(draft["ticket_id"])))


async def _mark_abusive(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    body = await read_json_body(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return error_reply(400, "reason", "a reason is required")
    if len(reason) > _REASON_LIMIT:
        return error_reply(400, "reason", f"at most {_REASON_LIMIT} characters")
    draft = await _draft_for(request, viewer, "abusive")
    store = request.app[STORE_KEY]
    call = await store.get_call(draft["call_id"]) if draft.get("call_id") else None
    number = (call or {}).get("number")
    if not number:
        return error_reply(409, "number", "this call has no caller number to restrict")
    pending_id = await store.add_pending_restriction(
        number=number, reason=reason.strip(), requested_by=viewer.name, call_id=draft["call_id"],
        at=request.app[CONFIG_KEY].clock(),
    )
    log.info("event=console_abusive_requested ticket=%s call_id=%s number=%s agent=%s pending_id=%s",
             draft["ticket_id"], draft["call_id"], mask(number), viewer.name, pending_id)
    return json_reply({"pending_id": pending_id}, status=201)


async def _assign(request: web.Request) -> web.Response:
    """A supervisor lets another agent work on a ticket (``{"agent": "agent2"}``)."""
    viewer = signed_in(request)
    config: ConsoleConfig = request.app[CONFIG_KEY]
    if not viewer.is_supervisor:
        return error_reply(403, "role", "only a supervisor assigns tickets")
    body = await read_json_body(request)
    agent = body.get("agent")
    if not isinstance(agent, str) or agent not in config.agents:
        return error_reply(400, "agent", "choose an agent of this hotline")
    draft = await _draft_for(request, viewer, "assign")
    await request.app[STORE_KEY].assign_ticket(draft["ticket_id"], agent=agent, source="supervisor",
                                                assigned_by=viewer.name, call_id=draft.get("call_id"),
                                                at=config.clock())
    log.info("event=console_ticket_assigned ticket=%s agent=%s by=%s", draft["ticket_id"], agent, viewer.name)
    return json_reply({"ticket": draft["public_id"], "agent": agent}, status=201)


# -- transfer to a linked centre --------------------------------------------------------------------------------


async def _centres(request: web.Request) -> web.Response:
    signed_in(request)
    centres = [{"name": str(c["name"]), "label": str(c.get("label") or c["name"])}
               for c in request.app[_centres_key]()]
    return json_reply({"centres": centres})


async def _transfer(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    transfer: TransferFunction | None = request.app[_transfer_key]
    if transfer is None:
        return error_reply(503, "transfer", "transfers to linked centres are not available on this console")
    body = await read_json_body(request)
    centre, mode = body.get("centre"), body.get("mode")
    if not is_valid_name(centre):  # as the emergency list allows it (also keeps the log line clean)
        return error_reply(400, "centre", "choose a linked centre")
    if mode not in TRANSFER_MODES:
        return error_reply(400, "mode", f"must be one of {', '.join(TRANSFER_MODES)}")
    draft = await _draft_for(request, viewer, "transfer")
    if not draft.get("call_id"):
        return error_reply(409, "call", "this ticket has no call to transfer")
    ticket_id, agent = draft["ticket_id"], viewer.name
    try:
        handoff_id = await transfer(call_id=draft["call_id"], centre=centre, mode=mode, agent=agent,
                                    ticket_id=ticket_id)
    except TransferError as exc:
        log.info("event=console_transfer_refused ticket=%s call_id=%s centre=%s mode=%s agent=%s reason=%s",
                 ticket_id, draft["call_id"], centre, mode, agent, exc.reason)
        return error_reply(409, "transfer", exc.reason)
    log.info("event=console_transfer ticket=%s call_id=%s centre=%s mode=%s agent=%s handoff=%s", ticket_id,
             draft["call_id"], centre, mode, agent, handoff_id)
    return json_reply({"handoff_id": handoff_id}, status=202)


# -- who may see a ticket ---------------------------------------------------------------------------------------


async def _draft_for(request: web.Request, viewer: Viewer, action: str) -> dict:
    """The draft named by the URL's public id, if ``viewer`` may see it; else 404, the same as an unknown id."""
    draft = await request.app[STORE_KEY].ticket_by_public_id(request.match_info["public_id"])
    if draft is None or not await _permitted(request, viewer, draft, action):
        raise http_error(web.HTTPNotFound, "ticket", "no such ticket")
    return _for_page(draft)


async def _permitted(request: web.Request, viewer: Viewer, draft: dict, action: str) -> bool:
    store = request.app[STORE_KEY]
    holders = TicketHolders.of(draft.get("agent"), await store.ticket_assignees(draft["ticket_id"]))
    access = decide(viewer, holders)
    if access.audited:
        # Written before anything is shown or changed: an access that cannot be audited does not happen.
        try:
            await store.audit_ticket_access(viewer=viewer.name, role=viewer.role, action=action,
                                            ticket_id=draft["ticket_id"], basis=access.value,
                                            at=request.app[CONFIG_KEY].clock())
        except (*STORE_ERRORS, OSError, ValueError) as exc:
            log.error("event=console_audit_failed ticket=%s agent=%s action=%s error=%s", draft["ticket_id"],
                      viewer.name, action, type(exc).__name__)
            raise http_error(web.HTTPServiceUnavailable, "audit", "try again shortly") from None
    if access is Access.DENIED:
        log.warning("event=console_ticket_refused ticket=%s agent=%s action=%s", draft["ticket_id"], viewer.name,
                    action)
    return access.allowed


def _for_page(draft: dict) -> dict:
    # The page shows the ticket number as "id" (as the screen-pop does) and names the ticket by its public id.
    return {**draft, "id": draft["ticket_id"]}
