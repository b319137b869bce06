"""Where the AMI connection's reader puts what it reads, apart from action responses: each event callback's own
ordered queue (``Subscriber``), and the events of a list action being collected (``ListCollector``)."""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk.message import Message

__all__ = ["SUBSCRIBER_QUEUE_SIZE", "EventCallback", "ListCollector", "Subscriber", "callback_name"]

log = logging.getLogger(__name__)

EventCallback = Callable[[Mapping[str, Any]], Awaitable[None] | None]

# Events buffered per callback before new ones are dropped (at 200 calls/s x 26 events ~ 1 s of everything).
SUBSCRIBER_QUEUE_SIZE = 10_000


class Subscriber:
    """One callback, the event names it wants, and its own ordered queue and worker task.

    A queue per callback keeps a slow store from delaying action responses on the reader, and keeps one
    callback's events in arrival order (a ``QueueCallerJoin`` is recorded before its ``AgentConnect``).
    """

    def __init__(self, callback: EventCallback) -> None:
        self.callback = callback
        self.names: set[str] = set()
        self.queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0

    def wants(self, name: str) -> bool:
        return "*" in self.names or name.lower() in self.names

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._work())

    def offer(self, event: Mapping[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event=ami_event_dropped callback=%s ami_event=%s dropped=%d",
                            callback_name(self.callback), event.get("Event"), self.dropped)

    async def _work(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                result = self.callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event=ami_callback_failed callback=%s ami_event=%s",
                              callback_name(self.callback), event.get("Event"))
            finally:
                self.queue.task_done()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None


class ListCollector:
    """The events of one list action, gathered until the event that completes the list."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.events: list[Message] = []

    def add(self, event: Message) -> None:
        if self.done.done():
            return
        if str(event.get("EventList", "")).lower() == "complete":
            self.done.set_result(None)
        else:
            self.events.append(event)


def callback_name(callback: Callable[..., Any]) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)
