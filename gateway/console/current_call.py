"""The agent's current call, for a console that (re)connects: the last screen-pop sent to the agent, rebuilt from
the store, while its call goes on or its ticket waits to be saved.

The broker acknowledges a pop whether or not the agent's console is subscribed at that moment (a clean MQTT
session keeps nothing for a client that is away), and the outbox row then goes; so a console that loads, reloads
or reconnects asks the gateway for this pop and drops it if it had it already (same message id).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ami_handlers.screenpop import (
    DEFAULT_LOW_CONFIDENCE,
    ScreenPopStore,
    assemble_screenpop,
)

__all__ = ["CURRENT_FOR", "current_screenpop", "is_current"]

# A call record whose end was never written (the gateway was down at AgentComplete) stops being current here.
CURRENT_FOR = timedelta(hours=12)


def is_current(*, popped_at: datetime, call: Mapping[str, Any] | None, ticket: Mapping[str, Any] | None,
               now: datetime) -> bool:
    """Whether the call of a pop sent at ``popped_at`` is still the agent's work: the call has not ended, or its
    ticket has not been saved yet (the agent writes it up after the caller hung up); never past ``CURRENT_FOR``."""
    if now - popped_at > CURRENT_FOR:
        return False
    call_on = call is not None and call.get("ended_at") is None
    ticket_open = ticket is not None and ticket.get("status") == "draft"
    return call_on or ticket_open


async def current_screenpop(store: Any, agent: str, *, now: datetime, history_days: int = 90,
                            low_confidence: float = DEFAULT_LOW_CONFIDENCE) -> dict | None:
    """The pop of ``agent``'s current call, or None. ``store`` is a `ScreenPopStore` with ``latest_screenpop``."""
    record = await store.latest_screenpop(agent)
    if record is None:
        return None
    pop_store: ScreenPopStore = store
    call = await pop_store.get_call(record["call_id"])
    ticket = await pop_store.get_ticket_draft(record["ticket_id"]) if record.get("ticket_id") else None
    if not is_current(popped_at=record["created_at"], call=call, ticket=ticket, now=now):
        return None
    # Under the first copy's message id, so a console that has it drops this one; the ticket is as saved since.
    return await assemble_screenpop(
        pop_store, message_id=record["message_id"], agent=agent,
        call=call or {"call_id": record["call_id"], "number": None, "ivr_path": []}, ticket=ticket,
        reason=record.get("reason"), created_at=record["created_at"], now=now, history_days=history_days,
        low_confidence=low_confidence)
