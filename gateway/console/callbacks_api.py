"""Call-back tasks on the console (Zhanjiang 12345 rules, art. 15): an agent sees the tasks assigned to them, a
supervisor every open one and hands them out; the agent starts the call-back (their own phone rings first, then
the caller's: ``gateway.aftercall.outbound``) and closes the task, with the ticket's one redo if the caller asks.

Numbers are masked (the gateway dials them; an agent never types one). A task that is not the viewer's answers 404
for an agent, like an unknown id.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.basics.phone import mask
from gateway.basics.row_ids import row_id
from gateway.console.access import Viewer
from gateway.console.replies import error_reply, http_error, json_reply, read_json_body
from gateway.console.sessions import CONFIG_KEY, STORE_KEY, signed_in
from gateway.store.aftercall import CALLBACK_OUTCOMES, RedoRefused

__all__ = ["CALL_BACK_KEY", "add_callback_routes"]

log = logging.getLogger("gateway.console.callbacks")

CallBack = Callable[..., Awaitable[None]]
CALL_BACK_KEY = web.AppKey("call_back", object)
_NOTE_LIMIT = 500


def add_callback_routes(app: web.Application, call_back: CallBack | None) -> None:
    """``call_back(task_id, agent=)`` places the call (raises an exception with ``reason`` to show); without it
    starting a call-back answers 503."""
    app[CALL_BACK_KEY] = call_back
    app.router.add_get("/api/callbacks", _list)
    app.router.add_post("/api/callbacks/{task_id}/call", _call)
    app.router.add_post("/api/callbacks/{task_id}/done", _done)
    app.router.add_post("/api/callbacks/{task_id}/assign", _assign)


def _for_page(task: dict) -> dict:
    return {**{k: task[k] for k in ("id", "ticket_id", "reason", "due", "assigned_to", "state", "attempts",
                                    "outcome", "created_at")}, "number": mask(task["number"])}


async def _list(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    tasks = await request.app[STORE_KEY].callback_tasks(agent=None if viewer.is_supervisor else viewer.name)
    return json_reply({"callbacks": [_for_page(t) for t in tasks]})


async def _task_for(request: web.Request, viewer: Viewer) -> dict:
    """The open task named by the URL, if the viewer may work on it (its assignee, or a supervisor); else 404."""
    task_id = row_id(request.match_info["task_id"])
    task = await request.app[STORE_KEY].callback_task(task_id) if task_id is not None else None
    if task is None or task["state"] != "open" or not (viewer.is_supervisor or task["assigned_to"] == viewer.name):
        raise http_error(web.HTTPNotFound, "task", "no such call-back task")
    return task


async def _call(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    await read_json_body(request)        # a JSON body: a cross-site form cannot start a call
    task = await _task_for(request, viewer)
    call_back: CallBack | None = request.app[CALL_BACK_KEY]
    if call_back is None:
        return error_reply(503, "call", "call-backs cannot be placed from this console")
    try:
        await call_back(task["id"], agent=viewer.name)
    except Exception as exc:  # noqa: BLE001 - CallBackError and AMI trouble: the agent is told, nothing breaks
        reason = getattr(exc, "reason", "the phone system did not take the call")
        log.info("event=console_callback_refused task=%s agent=%s reason=%s", task["id"], viewer.name, reason)
        return error_reply(409, "call", reason)
    log.info("event=console_callback_started task=%s agent=%s", task["id"], viewer.name)
    return json_reply({"task": task["id"], "ringing": viewer.name}, status=202)


async def _done(request: web.Request) -> web.Response:
    """``{"outcome": "reached"|..., "redo": bool, "note": "..."}``: close the task."""
    viewer = signed_in(request)
    body = await read_json_body(request)
    outcome, redo, note = body.get("outcome"), body.get("redo", False), body.get("note")
    if outcome is not None and outcome not in CALLBACK_OUTCOMES:
        return error_reply(400, "outcome", f"must be one of {', '.join(sorted(CALLBACK_OUTCOMES))}")
    if not isinstance(redo, bool):
        return error_reply(400, "redo", "must be true or false")
    if note is not None and (not isinstance(note, str) or len(note) > _NOTE_LIMIT):
        return error_reply(400, "note", f"at most {_NOTE_LIMIT} characters")
    task = await _task_for(request, viewer)
    store, now = request.app[STORE_KEY], request.app[CONFIG_KEY].clock()
    if outcome is not None:
        await store.record_callback_attempt(task["id"], agent=viewer.name, outcome=outcome, at=now)
    try:
        await store.finish_callback(task["id"], agent=viewer.name, at=now, note=note, redo=redo)
    except RedoRefused as exc:
        return error_reply(409, "redo", str(exc))
    log.info("event=console_callback_done task=%s agent=%s redo=%s", task["id"], viewer.name, redo)
    return json_reply({"task": task["id"], "state": "done", "redo": redo})


async def _assign(request: web.Request) -> web.Response:
    viewer = signed_in(request)
    if not viewer.is_supervisor:
        return error_reply(403, "role", "only a supervisor assigns call-backs")
    body = await read_json_body(request)
    agent = body.get("agent")
    if not isinstance(agent, str) or agent not in request.app[CONFIG_KEY].agents:
        return error_reply(400, "agent", "choose an agent of this hotline")
    task = await _task_for(request, viewer)
    await request.app[STORE_KEY].assign_callback(task["id"], agent=agent)
    log.info("event=console_callback_assigned task=%s agent=%s by=%s", task["id"], agent, viewer.name)
    return json_reply({"task": task["id"], "agent": agent})
