"""Who may see a ticket on the agent console: a pure decision over plain data, no I/O.

A ticket holds a caller's number, words and address (Zhanjiang 12345 rules, art. 20: no caller identity or content
to anyone without need). Its agent (the one who answered the call last) works on it; so may every other agent who
answered the call or was assigned the ticket (by a supervisor, or for a return call: the store's
``ticket_assignments``), and every supervisor. Nobody else, whatever ticket id they hold. Every access by anyone
but the ticket's agent is audited, and so is every refusal.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = ["ROLES", "ROLE_AGENT", "ROLE_SUPERVISOR", "Access", "TicketHolders", "Viewer", "decide"]

ROLE_AGENT = "agent"
ROLE_SUPERVISOR = "supervisor"
ROLES = (ROLE_AGENT, ROLE_SUPERVISOR)


@dataclass(frozen=True)
class Viewer:
    """A signed-in console user."""

    name: str
    role: str = ROLE_AGENT

    @property
    def is_supervisor(self) -> bool:
        return self.role == ROLE_SUPERVISOR


@dataclass(frozen=True)
class TicketHolders:
    """Who a ticket belongs to: its agent (None while no agent has answered) and every agent who answered its call
    or was assigned it."""

    agent: str | None
    assigned: frozenset[str] = frozenset()

    @classmethod
    def of(cls, agent: str | None, assigned: Iterable[str] = ()) -> TicketHolders:
        return cls(agent=agent or None, assigned=frozenset(assigned))


class Access(Enum):
    """The answer, and on what grounds; ``audited`` says whether it must be written to the access audit."""

    OWN = "own"                 # the ticket's agent
    ASSIGNED = "assigned"       # another agent who answered the call or was assigned the ticket
    SUPERVISOR = "supervisor"   # a supervisor sees every ticket
    DENIED = "denied"

    @property
    def allowed(self) -> bool:
        return self is not Access.DENIED

    @property
    def audited(self) -> bool:
        return self is not Access.OWN


def decide(viewer: Viewer, holders: TicketHolders) -> Access:
    """Whether ``viewer`` may read and work on the ticket ``holders`` describe."""
    if holders.agent is not None and viewer.name == holders.agent:
        return Access.OWN
    if viewer.name in holders.assigned:
        return Access.ASSIGNED
    if viewer.is_supervisor:
        return Access.SUPERVISOR
    return Access.DENIED
