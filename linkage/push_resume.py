"""Pushes the gateway stopped in the middle of, taken up again at its next start (art. 14: the centre gets the
case; art. 20: no second copy of the caller's data is kept for it).

A push is "pending" from its first record until it is delivered, handed to the outbox, or given up; a gateway
killed (or stopped) in between leaves it so. At start-up each pending push is judged (`judge_pending`, pure):
it is resumed with the same push id (the centre's Idempotency-Key, the outbox's message id) and the attempts it
already had, its case rebuilt from the hand-off, call and ticket rows as they are now; or it is marked failed
with the reason, which `hotline linkage handoffs` shows.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from linkage.emergency_list import Centre, EmergencyList

__all__ = ["RESUME_WITHIN", "Resume", "judge_pending", "resume_pending_pushes"]

log = logging.getLogger(__name__)

# A case this old is no longer news to a centre that dispatches on it: the call is long over, and a late copy
# of it could send a second crew. It stays in the hand-off log as failed, for the agent to follow up.
RESUME_WITHIN = timedelta(hours=1)


@dataclass(frozen=True)
class Resume:
    """The verdict on one pending push: the centre to resume it to, or why it is not resumed."""
    centre: Centre | None
    reason: str | None = None


def judge_pending(push: dict, handoff: dict | None, emergencies: EmergencyList, *, now: datetime,
                  within: timedelta = RESUME_WITHIN) -> Resume:
    """Resume a pending push, or say why not. Pure: the rows and the list in force in, a verdict out."""
    age = now - push["created_at"]
    if age > within:
        return Resume(None, f"not resumed after the restart: {_duration(age)} old (resumed within "
                            f"{_duration(within)})")
    if handoff is None:
        return Resume(None, "not resumed after the restart: no hand-off row to rebuild the case from")
    centre = emergencies.get_centre(push["centre"])
    if centre is None:
        return Resume(None, f"not resumed after the restart: centre {push['centre']} is no longer in the "
                            "emergency list")
    if centre.push != push["adapter"]:
        return Resume(None, f"not resumed after the restart: centre {centre.name} now takes push = "
                            f"{centre.push!r}, not {push['adapter']!r}")
    return Resume(centre)


async def rebuild_case(store: Any, push: dict, handoff: dict, emergencies: EmergencyList) -> dict:
    """The case as `push_case` takes it, from the rows the call left (never from a stored copy)."""
    call = await store.get_call(handoff["call_id"]) or {}
    ticket = None
    if handoff.get("ticket_id"):
        ticket = await store.get_ticket_draft(handoff["ticket_id"])
    if ticket is None:
        ticket = await store.ticket_draft_for_call(handoff["call_id"])
    ticket = ticket or {}
    situation = emergencies.get(handoff.get("situation") or "")
    return {
        "call_id": handoff["call_id"], "ticket_id": handoff.get("ticket_id"),
        "caller_number": call.get("number"), "address": ticket.get("address") or None,
        "situation": handoff.get("situation"), "situation_name": situation.name if situation else None,
        "transcript": ticket.get("transcript") or None,
        "agent": call.get("agent") if handoff.get("trigger") == "agent" else None,
        "at": push["created_at"], "handoff_id": handoff["id"],
        "push_id": push["push_id"], "attempts_made": push["attempts"],
    }


async def resume_pending_pushes(store: Any, pusher: Any, emergencies: EmergencyList, *,
                                clock: Callable[[], datetime]) -> tuple[int, int]:
    """Judge every pending push; resume (spawned beside the start-up, never awaited) or fail each.
    Returns (resumed, failed). A push that cannot be read or rebuilt is failed with the reason. Never raises:
    the gateway starts serving calls whatever the state of old pushes."""
    resumed = failed = 0
    try:
        pending = await store.list_pushes(state="pending", limit=10_000)
    except Exception:  # logged; calls come first
        log.exception("event=linkage_push_resume_failed")
        return 0, 0
    for push in reversed(pending):      # oldest first
        now = clock()
        try:
            handoff = await store.get_handoff(push["handoff_id"]) if push.get("handoff_id") else None
            verdict = judge_pending(push, handoff, emergencies, now=now)
            if verdict.centre is not None:
                case = await rebuild_case(store, push, handoff, emergencies)
                await store.update_push(push["id"], resumed_at=now, at=now)
                pusher.spawn(verdict.centre, **case)
                resumed += 1
                log.info("event=linkage_push_resumed call_id=%s centre=%s push_id=%s attempts_before=%d",
                         push.get("call_id"), push["centre"], push["push_id"], push["attempts"])
                continue
            reason = verdict.reason
        except Exception as exc:  # one bad row must not keep the others (or the start) back
            reason = f"not resumed after the restart: {type(exc).__name__}: {exc}"
            log.exception("event=linkage_push_resume_error push_id=%s", push["push_id"])
        try:
            await store.update_push(push["id"], state="failed", last_error=reason, at=now)
        except Exception:  # still pending: the next start judges it again
            log.exception("event=linkage_push_resume_error push_id=%s", push["push_id"])
        failed += 1
        log.warning("event=linkage_push_failed call_id=%s centre=%s push_id=%s attempts=%d error=%s",
                    push.get("call_id"), push["centre"], push["push_id"], push["attempts"], reason)
    return resumed, failed


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
