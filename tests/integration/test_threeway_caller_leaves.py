"""A three-way transfer whose caller hangs up while the centre still rings: the centre's call is cancelled at
once (nobody is left to hand over) and the hand-off log says why, on the real stack."""
from __future__ import annotations

import threading
import time

import pytest

from gateway.sandbox.processes import wait_until
from tests.integration.test_linkage import _answered_call, _console, handoffs

pytestmark = pytest.mark.integration


def test_a_caller_who_hangs_up_while_the_centre_rings_has_the_centres_call_cancelled(sandbox, silent_119, agents):
    centre_log = silent_119
    number = "13800138041"
    caller = threading.Thread(target=lambda: sandbox.call(number, "3", hold_s=40), daemon=True)
    caller.start()
    try:
        call = _answered_call(sandbox, number)
        # the screen-pop makes the ticket the answering agent's, for the console, on the same AgentConnect
        assert wait_until(lambda: sandbox.store_query(lambda s: s.ticket_draft_for_call(call["call_id"]))["agent"],
                          5, 0.1)
        ticket = sandbox.store_query(lambda s: s.ticket_draft_for_call(call["call_id"]))
        invites_before = _count(centre_log, "INVITE sip:")
        post = _console(sandbox, call["agent"])
        status, body = post(f"/api/tickets/{ticket['public_id']}/transfer", {"centre": "119", "mode": "threeway"})
        assert status == 202, body
        assert wait_until(lambda: _count(centre_log, "INVITE sip:") > invites_before, 5, 0.1), "119 never rang"

        hung_up = time.monotonic()
        out = sandbox.stack.root.cli(f"channel request hangup {call['channel']}")
        assert out.returncode == 0, out.stderr
        cancelled = wait_until(lambda: _count(centre_log, "CANCEL sip:") > 0, 4, 0.05)
        cancel_s = time.monotonic() - hung_up
        detail = lambda: (handoffs(sandbox, call["call_id"])[0]["detail"] or "")
        logged = wait_until(lambda: "the caller hung up before the centre answered" in detail(), 4, 0.1)
        print(f"three-way, caller gone while 119 rang: centre's call cancelled {cancelled} after {cancel_s:.2f} s "
              f"(its answer timeout is 6 s); hand-off detail {detail()!r}")
        assert cancelled and cancel_s < 4, "the centre kept ringing for a caller who had gone"
        assert logged, detail()
    finally:
        caller.join(45)


def _count(path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0
