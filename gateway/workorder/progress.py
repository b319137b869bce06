"""What the IVR's progress query (art. 12) announces of a ticket: the store's status and due date, and the unit
that handles it when a prompt speaking that unit's name was built (ivr.prompts.unit_prompts)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from ivr.prompts import unit_prompt_name

__all__ = ["progress_lookup"]


def progress_lookup(ticket_status: Callable[[str], Awaitable[dict | None]], spoken_units: Collection[str]
                    ) -> Callable[[str], Awaitable[dict | None]]:
    """``ticket_status`` (the store's) with ``unit_prompt`` added: the prompt of the ticket's unit if it is one
    of ``spoken_units``, else None (a unit the work-order system named that has no prompt is left unsaid)."""
    spoken = frozenset(spoken_units)

    async def lookup(ticket_no: str) -> dict[str, Any] | None:
        record = await ticket_status(ticket_no)
        if record is None:
            return None
        unit = record.get("unit")
        return {**record, "unit_prompt": unit_prompt_name(unit) if unit in spoken else None}

    return lookup
