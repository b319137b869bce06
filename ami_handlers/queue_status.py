"""Is a caller still waiting in a queue? Asked of Asterisk (AMI ``QueueStatus``) right before the gateway moves a
queued caller, since the store's view of the call trails Asterisk's by the AMI events still on their way.

app_queue lists a caller as a ``QueueEntry`` from ``QueueCallerJoin`` until it leaves the queue's waiting list,
which it does the moment an agent answers (``QueueCallerLeave`` comes before ``AgentConnect`` and the bridge):
an entry is the earliest sign Asterisk gives that the caller is still nobody's. ``BRIDGEPEER`` is set only once
the bridge is made, and ``CHANNEL(appname)`` stays ``Queue`` through the whole agent conversation.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["caller_waiting", "is_waiting"]


def is_waiting(events: Iterable[Mapping[str, Any]], *, queue: str, channel: str) -> bool:
    """Whether ``QueueStatus`` events list ``channel`` as a caller waiting in ``queue``."""
    return any(str(e.get("Event", "")).lower() == "queueentry" and e.get("Queue") == queue
               and e.get("Channel") == channel for e in events)


async def caller_waiting(ami: Any, *, queue: str, channel: str, timeout: float = 2.0) -> bool:
    """Ask Asterisk now; raises AMIError (or AMITimeout) when it cannot say."""
    _, events = await ami.action_list({"Action": "QueueStatus", "Queue": queue}, timeout=timeout)
    return is_waiting(events, queue=queue, channel=channel)
