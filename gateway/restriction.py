"""Article 9 restrictions: who is restricted, from when, until when, and how a refused call ends. Pure decisions,
no I/O.

Zhanjiang 12345 rules, art. 9: a number that disrupts the hotline or harasses, insults or threatens its staff is
restricted for 30 natural days. Counting follows Civil Code art. 201: a period counted in days starts on the day
after the decision, and the last day runs to its end (24:00). Days are local (Asia/Shanghai) calendar days, so a
decision taken at 01:00 on 1 March Beijing time (still 28 February in UTC) counts from 2 March.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from gateway.basics.clock import SHANGHAI

DEFAULT_DAYS = 30
MIN_DAYS = 1
MAX_DAYS = 365


def check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"days must be a whole number, got {days!r}")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}, got {days}")
    return days


def check_aware(value: datetime, name: str = "datetime") -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


def restriction_end(decided_at: datetime, days: int = DEFAULT_DAYS, tz: ZoneInfo = SHANGHAI) -> datetime:
    """The moment the restriction lifts: 00:00 local on day D+days+1, where D is the local day of the decision.

    In force through the whole of day D+days (Civil Code art. 201: the decision day itself is not counted).
    """
    check_aware(decided_at, "decided_at")
    check_days(days)
    decision_day = decided_at.astimezone(tz).date()
    return datetime.combine(decision_day + timedelta(days=days + 1), time(0), tzinfo=tz)


def last_day(until: datetime, tz: ZoneInfo = SHANGHAI) -> date:
    """The last local calendar day on which the restriction is in force (for announcements: 'until 31 March')."""
    check_aware(until, "until")
    # `until` is an exclusive bound, normally local midnight: the last day is the one that ends at it.
    return (until.astimezone(tz) - timedelta(microseconds=1)).date()


@dataclass(frozen=True)
class Restriction:
    id: int
    number: str
    reason: str
    operator: str
    decided_at: datetime
    until: datetime
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None

    def is_active(self, now: datetime) -> bool:
        """In force at `now`: decided, not yet lifted, not yet expired."""
        check_aware(now, "now")
        if now < self.decided_at:
            return False
        if self.lifted_at is not None and self.lifted_at <= now:
            return False
        return now < self.until


def effective(restrictions: Iterable[Restriction], now: datetime) -> Restriction | None:
    """The restriction in force at `now` for one number, or None.

    The latest decision taken by `now` governs alone: a new decision while one is active replaces it (even when
    it ends earlier), and lifting the latest decision lifts the restriction; older decisions never revive.
    """
    check_aware(now, "now")
    latest: Restriction | None = None
    for restriction in restrictions:
        if restriction.decided_at > now:
            continue
        if latest is None or (restriction.decided_at, restriction.id) > (latest.decided_at, latest.id):
            latest = restriction
    if latest is not None and latest.is_active(now):
        return latest
    return None


# -- how a refused call ends ------------------------------------------------------------------------------------
# Art. 9 restricts the number, art. 14 keeps emergency help one key away, art. 2 (7x24 human service) sends every
# failure to an agent. So the hang-up is decided once, at the very end, for the one path that earns it: the caller
# heard the whole announcement and did not ask for emergency help. Until then nothing on the channel says
# "hang up", and a fault (gateway crash, SIGTERM, AGI command timeout, deadline, cancellation) lets the dialplan
# queue the caller: at the emergency sub-menu's top priority once the emergency key was pressed. A fault during the
# announcement itself also ends at an agent: the caller has not yet heard why and until when, may be about to ask
# for emergency help, and the gateway's own failure is no decision against them; an agent can still end the call.


class RefusalEnd(Enum):
    """Where a restricted caller's call goes once the announcement is over (or could not be played)."""

    HANG_UP = "hang_up"            # art. 9: heard why and until when, asked for nothing else
    EMERGENCY_MENU = "emergency"   # art. 14: the emergency sub-menu; its fallback is an agent at top priority
    AGENT = "agent"                # art. 2: the announcement did not play to its end


def refusal_end(*, announced: bool, emergency_key: str | None) -> RefusalEnd:
    """What becomes of a restricted caller: ``announced`` says the announcement played to its end,
    ``emergency_key`` is the key pressed during it for emergency help (None: none).

    A key pressed for emergency help wins over everything, also when the announcement was cut short by it.
    """
    if emergency_key:
        return RefusalEnd.EMERGENCY_MENU
    if not announced:
        return RefusalEnd.AGENT
    return RefusalEnd.HANG_UP
