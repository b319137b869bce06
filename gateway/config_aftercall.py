"""The ``[aftercall]`` settings: the calls the hotline places itself after the intake (return calls on a done
ticket, agents' call-backs), read from the merged configuration tables like every other section."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from gateway.config_checks import ConfigProblem, SettingsReader

__all__ = ["AfterCallSection", "read_aftercall"]

_SIP_CONTACT = re.compile(r"^sips?:[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$")
_HHMM = re.compile(r"^(([01]\d|2[0-3]):([0-5]\d)|24:00)$")


@dataclass(frozen=True)
class AfterCallSection:
    outbound_contact: str           # the trunk the hotline's own calls leave by (PJSIP endpoint hotline-outbound)
    calling_from: time              # return calls are placed only between these times (the hotline's civil time)
    calling_until: time
    return_call_attempts: int       # tries before a return call is given up
    return_call_retry_min: int      # minutes between tries (moved into the next calling window)
    ring_s: int                     # how long a citizen's or an agent's phone rings


def read_aftercall(r: SettingsReader) -> AfterCallSection:
    def hhmm(key: str) -> time | None:
        value = r.get(key, str, check=_HHMM.match, reason='must be "HH:MM" (or "24:00")')
        if not value:
            return None
        return time.max if value == "24:00" else time(int(value[:2]), int(value[3:]))

    section = AfterCallSection(
        outbound_contact=r.get("aftercall.outbound_contact", str, check=_SIP_CONTACT.match,
                               reason="must be a SIP URI like sip:127.0.0.1:5095"),
        calling_from=hhmm("aftercall.calling_from"), calling_until=hhmm("aftercall.calling_until"),
        return_call_attempts=r.get("aftercall.return_call_attempts", int, check=lambda v: 1 <= v <= 10,
                                   reason="must be 1-10"),
        return_call_retry_min=r.get("aftercall.return_call_retry_min", int, check=lambda v: 1 <= v <= 24 * 60,
                                    reason="must be 1-1440 minutes"),
        ring_s=r.get("aftercall.ring_s", int, check=lambda v: 5 <= v <= 120, reason="must be 5-120 seconds"))
    if section.calling_from and section.calling_until and section.calling_from >= section.calling_until:
        r.problems.append(ConfigProblem("aftercall.calling_until", "must be later than aftercall.calling_from"))
    return section
