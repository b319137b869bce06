"""Call recordings on the console (Zhanjiang 12345 rules, art. 20): a list of the recordings the signed-in user may
hear, and the audio itself, served with HTTP Range (the page's audio element seeks with it); for a supervisor, the
pending restriction requests with their call's recording as evidence (art. 9).

The rule is the console's (``gateway.console.access``): the agents who handled the call, and supervisors. A
recording is named by a random public id, never by its (guessable) call id. Every play and download, and every
refusal, is written to the store's ``recording_access_audit`` before a byte is sent; an access that cannot be
audited does not happen (503). Another agent gets 403.
"""
from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from gateway.basics.phone import mask
from gateway.basics.write_health import STORE_ERRORS
from gateway.console.access import TicketHolders, Viewer, decide
from gateway.console.replies import error_reply, json_reply
from gateway.console.sessions import CONFIG_KEY, STORE_KEY, signed_in

__all__ = ["add_recording_routes", "recording_for_page", "recording_url"]

log = logging.getLogger("gateway.console.recordings")

_MIME = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
_LIST_LIMIT = 200


def add_recording_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", _list)
    app.router.add_get("/api/recordings/{public_id}", _open)
    app.router.add_get("/api/restrictions/pending", _pending)


def recording_url(public_id: str) -> str:
    """Where the console serves a recording (audited there)."""
    return f"/api/recordings/{public_id}"


def recording_for_page(row: dict) -> dict:
    """What the page is told of a recording: no file path."""
    return {"id": row["public_id"], "call_id": row["call_id"], "ticket": row["ticket_id"], "agent": row["agent"],
            "recorded_at": row["recorded_at"], "duration_s": row["duration_s"], "size": row["size"],
            "format": row["format"], "state": row["state"], "url": recording_url(row["public_id"])}


async def _list(request: web.Request) -> web.Response:
    """The recordings the viewer may hear, the latest first: an agent's own calls; every call for a supervisor."""
    viewer = signed_in(request)
    rows = await request.app[STORE_KEY].call_recordings(
        limit=_LIST_LIMIT, include_purged=False, handled_by=None if viewer.is_supervisor else viewer.name)
    return json_reply({"recordings": [recording_for_page(r) for r in rows]})


async def _pending(request: web.Request) -> web.Response:
    """For a supervisor deciding restriction requests (art. 9): each pending request with its call's recording,
    the evidence to hear before confirming (``hotline restrict confirm``)."""
    viewer = signed_in(request)
    if not viewer.is_supervisor:
        return error_reply(403, "role", "only a supervisor decides restriction requests")
    store = request.app[STORE_KEY]
    out = []
    for pending in await store.list_pending_restrictions():
        recording = await store.call_recording(pending["call_id"]) if pending.get("call_id") else None
        out.append({"id": pending["id"], "number": mask(pending["number"]), "reason": pending["reason"],
                    "requested_by": pending["requested_by"], "requested_at": pending["requested_at"],
                    "recording": recording_for_page(recording) if recording and recording["state"] != "purged"
                    else None})
    return json_reply({"pending": out})


async def _open(request: web.Request) -> web.StreamResponse:
    viewer = signed_in(request)
    store = request.app[STORE_KEY]
    row = await store.call_recording_by_public_id(request.match_info["public_id"])
    if row is None or row["state"] == "purged":
        return error_reply(404, "recording", "no such recording")
    action = "download" if request.query.get("download") == "1" else "play"
    agent, handlers = await store.call_handlers(row["call_id"])
    access = decide(viewer, TicketHolders.of(agent, handlers))
    if not await _audited(request, viewer, row["call_id"], action, access.allowed):
        return error_reply(503, "audit", "try again shortly")
    if not access.allowed:
        log.warning("event=console_recording_refused call=%s agent=%s action=%s", row["call_id"], viewer.name,
                    action)
        return error_reply(403, "recording", "only the agents who handled the call and supervisors hear it")
    path = Path(row["path"])
    if not path.is_file():
        log.error("event=console_recording_file_missing call=%s", row["call_id"])
        return error_reply(404, "recording", "the file is gone")
    disposition = "attachment" if action == "download" else "inline"
    log.info("event=console_recording_opened call=%s agent=%s action=%s range=%s", row["call_id"], viewer.name,
             action, "yes" if "Range" in request.headers else "no")
    return web.FileResponse(path, headers={
        "Content-Type": _MIME.get(row["format"], "application/octet-stream"),
        "Content-Disposition": f'{disposition}; filename="{row["call_id"]}-call.{path.suffix.lstrip(".")}"',
        "Cache-Control": "no-store"})


async def _audited(request: web.Request, viewer: Viewer, call_id: str, action: str, allowed: bool) -> bool:
    try:
        await request.app[STORE_KEY].audit_recording_access(
            call_id=call_id, viewer=viewer.name, role=viewer.role, action=action, allowed=allowed,
            at=request.app[CONFIG_KEY].clock())
    except (*STORE_ERRORS, OSError, ValueError) as exc:
        log.error("event=console_recording_audit_failed call=%s agent=%s error=%s", call_id, viewer.name,
                  type(exc).__name__)
        return False
    return True
