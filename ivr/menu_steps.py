"""The IVR menu's steps (what the runner does next) and events (what happened), as ``ivr.menu``'s pure
transitions exchange them with ``ivr.runner``."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeAlias

__all__ = ["AnnounceTicket", "CollectTicket", "DigitEvent", "Event", "LookupTicket", "PlayAndWait", "Played", "Queue",
           "Reason", "Step", "TicketEntered", "TicketLookedUp", "Timeout"]


@dataclass(frozen=True)
class PlayAndWait:
    prompt: str
    timeout_ms: int
    barge_in: bool = True


@dataclass(frozen=True)
class CollectTicket:
    prompt: str
    max_digits: int
    timeout_ms: int


@dataclass(frozen=True)
class LookupTicket:
    ticket: str


@dataclass(frozen=True)
class AnnounceTicket:
    ticket: str
    prompts: tuple[str, ...]


Reason = Literal["selected", "timeout", "invalid", "agent"]


@dataclass(frozen=True)
class Queue:
    request_type: str
    priority: int
    emergency: str | None
    reason: Reason
    ticket_query: str | None = None
    announce: str | None = None


Step: TypeAlias = PlayAndWait | CollectTicket | LookupTicket | AnnounceTicket | Queue


@dataclass(frozen=True)
class DigitEvent:
    digit: str


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class TicketEntered:
    digits: str


@dataclass(frozen=True)
class TicketLookedUp:
    status: str | None
    failed: bool = False
    unit_prompt: str | None = None     # the handling unit's spoken name, when a prompt for it exists
    due: date | None = None


@dataclass(frozen=True)
class Played:
    pass


Event: TypeAlias = DigitEvent | Timeout | TicketEntered | TicketLookedUp | Played
