"""The hotline's civil time: Asia/Shanghai, in which days are counted (restrictions, deadlines, reports)."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    """The wall clock, aware, in UTC: the service's default clock (tests pass their own)."""
    return datetime.now(UTC)
