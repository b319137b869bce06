"""The progress query on the real stack (art. 12): the work-order system reports a ticket transferred through the
gateway's status API; a sipp caller keys 6 and the ticket number, and hears the status, the unit and the due date,
every prompt found by Asterisk; an agent then answers."""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime

import pytest

from gateway.basics.clock import SHANGHAI
from ivr.prompts import unit_prompt_name
from ivr.say import say_date

pytestmark = pytest.mark.integration
UNIT = "市住房和城乡建设局"     # in the packaged unit catalogue: its name has a prompt


def report(cfg, ticket: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://{cfg.workorder.host}:{cfg.workorder.port}/api/v1/tickets/{ticket}/status",
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {cfg.workorder_token()}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_transferred_ticket_is_announced_with_its_unit_and_due_date(sandbox, agents):
    cfg = sandbox.config
    ticket = sandbox.store_query(lambda s: s.create_ticket_draft(
        call_id="earlier-call", request_type="complaint", created_at=datetime.now(SHANGHAI)))
    status, sent = report(cfg, ticket, {"status": "transferred", "unit": UNIT})
    assert status == 200, sent
    assert report(cfg, ticket, {"status": "closed"})[0] == 409       # the life cycle, enforced by the live API
    messages = cfg.asterisk.root / "var/log/asterisk/messages.log"
    log_offset = len(sandbox.gateway_log())
    asterisk_offset = messages.stat().st_size if messages.exists() else 0

    result = sandbox.call("13800138140", dtmf=f"6,{ticket}#", hold_s=45)

    assert result["sipp_ok"], result
    announced = [line for line in sandbox.gateway_log()[log_offset:].splitlines()
                 if "event=ticket_announced" in line and f"ticket={ticket}" in line]
    assert len(announced) == 1, announced
    prompts = announced[0].split("prompts=")[1].split()[0].split(",")
    due = datetime.fromisoformat(sent["due"]).date()
    assert prompts == ["ticket_status_transferred", "ticket_unit", unit_prompt_name(UNIT), "ticket_due",
                       *say_date(due)]
    missing = [line for line in messages.read_text(errors="replace")[asterisk_offset:].splitlines()
               if "does not exist" in line or "Unable to find" in line] if messages.exists() else []
    assert not missing, missing[:3]
    assert result["answered_by"] in {"agent1", "agent2"}, result
