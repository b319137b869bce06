"""From a finished capture to a filled ticket draft: keep the recording, triage the transcript, update the draft.

Zhanjiang 12345 rules, art. 10 and 11: the ticket carries type, unit, address and deadline before the agent says
a word. A DTMF choice from the menu outranks the spoken type; the due date follows the type in working days.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from gateway.basics.write_health import WriteHealth, is_disk_failure, log_write_failure
from gateway.contract import PREFILL_FIELDS, REQUEST_TYPES
from ivr.speech.capture import CaptureResult, store_recording
from ivr.triage.classify import triage
from ivr.triage.model import TriageModel
from linkage.emergency_list import EmergencyList

log = logging.getLogger("ivr.triage.prefill")
RECORDING_TARGET = "recording"


class DraftStore(Protocol):
    """What the pre-fill needs of the store (``gateway.store.database.Store``): it receives one, never imports it."""

    async def ticket_draft_for_call(self, call_id: str) -> dict | None: ...

    async def get_call(self, call_id: str) -> dict | None: ...

    async def update_ticket_draft(self, ticket_id: str, **fields: Any) -> None: ...


def prefilled_snapshot(fields: dict[str, Any]) -> dict[str, str | None]:
    """The ticket fields as the speech pre-fill wrote them, as text (dates ISO): kept beside the draft, so the
    office can count the fields the agent changed before saving (Zhanjiang 12345 rules, art. 5)."""
    return {name: None if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
            for name, value in fields.items() if name in PREFILL_FIELDS}


class TicketPrefill:
    """The SpeechCapture result sink."""

    def __init__(self, store: DraftStore, *, recordings_dir: Path, clock: Callable[[], datetime],
                 emergencies: Callable[[], EmergencyList] | None = None,
                 on_emergency: Callable[..., Awaitable[object]] | None = None,
                 model: TriageModel | None = None, health: WriteHealth | None = None) -> None:
        self.store = store
        self.health = health            # where a recording the disk refused is counted (the store's health)
        self.recordings_dir = recordings_dir
        self.clock = clock
        # art. 14 linkage: a spoken emergency is offered to the caller (LinkageHandoff.offer_from_speech)
        self.on_emergency = on_emergency
        self.emergencies = emergencies  # the emergency list in force (reloaded live); None: the packaged one
        self.model = model              # the office's trained classifier (triage.model); None: the rules alone

    async def __call__(self, result: CaptureResult) -> None:
        now = self.clock()
        path = await self._keep_recording(result, now)
        draft = await self.store.ticket_draft_for_call(result.call_id)
        if draft is None:
            log.warning("call=%s event=prefill_without_draft", result.call_id)
            return
        call = await self.store.get_call(result.call_id) or {}
        dtmf_type = call.get("request_type")
        received = call.get("started_at") or now
        fields: dict = {"transcript": result.transcript or None}
        t = None
        if result.transcript:
            t = triage(result.transcript, dtmf_type=dtmf_type if dtmf_type in REQUEST_TYPES else None,
                       received=received, emergencies=self.emergencies() if self.emergencies else None,
                       model=self.model)
            fields.update(type=t.type, category=t.category, unit=t.unit, address=t.address,
                          callback_number=t.callback_number, emergency=t.emergency,
                          emergency_situation=t.emergency_situation, due=t.due, summary=t.summary,
                          scores=t.scores or None)
            # keep what the menu already established when speech says nothing about it
            fields = {k: v for k, v in fields.items() if v is not None or k == "transcript"}
            fields["prefilled"] = prefilled_snapshot(fields)
        fields = await self._write(draft["ticket_id"], result.call_id, fields)
        if t is not None and t.emergency_situation and self.on_emergency is not None:
            await self.on_emergency(call_id=result.call_id, ticket_id=draft["ticket_id"],
                                    situation_id=t.emergency_situation)
        log.info("call=%s event=ticket_prefilled ticket=%s recording=%s fields=%s", result.call_id, draft["ticket_id"],
                 "yes" if path else "no", ",".join(sorted(k for k, v in fields.items() if v)))

    async def _keep_recording(self, result: CaptureResult, now: datetime) -> Path | None:
        """The caller's description as a file; None when the disk refuses it (the transcript still goes on to
        the ticket and the emergency check)."""
        try:
            path = await store_recording(self.recordings_dir, result, now)
        except OSError as exc:
            if self.health is None or self.health.failed(RECORDING_TARGET, exc) is None:
                log.warning("call=%s event=recording_not_kept error=%s", result.call_id, type(exc).__name__)
            return None
        if path is not None and self.health is not None:
            self.health.succeeded(RECORDING_TARGET)
        return path

    async def _write(self, ticket_id: str, call_id: str, fields: dict) -> dict:
        """Write the fields in one update; if the store refuses one, write the transcript and then each field on
        its own, so one unusable value costs only itself. Logs name the field, never its value (the store's
        error text may quote a caller's number). Returns the fields written."""
        try:
            await self.store.update_ticket_draft(ticket_id, **fields)
            return fields
        except ValueError:
            pass
        except Exception as exc:
            if not is_disk_failure(exc):
                raise
            # the state disk refuses the draft: the emergency offer below still runs on the transcript
            log_write_failure(log, exc, "prefill_not_stored", call=call_id, ticket=ticket_id)
            return {}
        written: dict = {}
        for name in sorted(fields, key=lambda n: n != "transcript"):
            if name == "prefilled":
                continue
            try:
                await self.store.update_ticket_draft(ticket_id, **{name: fields[name]})
                written[name] = fields[name]
            except ValueError:
                log.warning("call=%s event=prefill_field_refused ticket=%s field=%s", call_id, ticket_id, name)
        if "prefilled" in fields:
            await self.store.update_ticket_draft(ticket_id, prefilled=prefilled_snapshot(written))
        return written
