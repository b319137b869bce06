"""A case push to an HTTP centre still retrying when the gateway dies: on the real stack, the gateway is killed
(SIGKILL) mid-retry and started again; the push is delivered once more with the same Idempotency-Key, or, when
the centre no longer takes HTTP pushes, marked failed with the reason in `hotline linkage handoffs`."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from typing import Self

import pytest
from aiohttp import web

from gateway.sandbox.broker import free_port
from gateway.sandbox.processes import is_alive, wait_until

pytestmark = pytest.mark.integration


class HTTPCentre:
    """A centre's dispatch endpoint (aiohttp, in a thread with its own loop): 503 while busy, 200 after."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/cases"
        self.busy = True
        self.requests: list[tuple[str | None, dict, float]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _case(self, request: web.Request) -> web.Response:
        self.requests.append((request.headers.get("Idempotency-Key"), await request.json(), time.monotonic()))
        return web.Response(status=503, text="dispatch busy") if self.busy else web.json_response({"ok": True})

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        app.router.add_post("/cases", self._case)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(5), "the HTTP centre did not start"
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def _edit_list(sandbox, text: str) -> None:
    """Write the emergency list and wait until the running gateway has loaded it."""
    before = sandbox.gateway_log().count("event=emergency_list_loaded")
    sandbox.emergency_list.write_text(text, encoding="utf-8")
    assert wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > before, 10), \
        "the gateway did not load the edited emergency list"


def _centre_119(text: str, block: str) -> str:
    return re.sub(r"(?ms)^\[centres\.119\]\n.*?(?=^\[centres\.)", block + "\n", text, count=1)


@pytest.fixture
def http_119(sandbox, centre_119):
    """119 takes the case over HTTP (plain http:// on loopback) with many retries; the voice goes to the sipp
    centre as usual. The list and a running gateway are restored afterwards."""
    original = sandbox.emergency_list.read_text(encoding="utf-8")
    with HTTPCentre() as centre:
        _edit_list(sandbox, _centre_119(original, f'[centres.119]\nname = "消防 119"\ndial = "PJSIP/centre-119"\n'
                                                  f'answer_timeout_s = 6\npush = "http"\nhttp_url = "{centre.url}"\n'
                                                  'http_timeout_s = 2\nhttp_retries = 10\n'))
        centre.original_list = original
        try:
            yield centre
        finally:
            if not sandbox.stack.gateway.pid():
                sandbox.hotline("stack", "up")
            _edit_list(sandbox, original)


def _pushes(sandbox, call_id):
    return sandbox.store_query(lambda s: s.list_pushes(call_id=call_id))


def _kill_gateway_mid_retry(sandbox, centre, number):
    """Place a fire call (menu 9, 2), let the push fail twice, kill -9 the gateway; the call's id."""
    caller = threading.Thread(target=lambda: sandbox.call(number, dtmf="9,2", hold_s=8), daemon=True)
    caller.start()
    assert wait_until(lambda: len(centre.requests) >= 2, 20, 0.05), "the HTTP centre was never tried twice"
    pid = sandbox.stack.gateway.pid()
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: not is_alive(pid), 5, 0.05)
    killed_at = time.monotonic()
    caller.join(30)
    [push] = [p for p in sandbox.store_query(lambda s: s.list_pushes(limit=5)) if p["push_id"] == centre.requests[0][0]]
    assert push["state"] == "pending" and push["attempts"] >= 2, push
    return push, killed_at


def test_a_push_retrying_when_the_gateway_is_killed_is_delivered_once_more_after_the_restart(sandbox, http_119):
    centre = http_119
    push, killed_at = _kill_gateway_mid_retry(sandbox, centre, "13800138051")
    tried = len(centre.requests)
    centre.busy = False
    restart = time.monotonic()
    sandbox.hotline("stack", "up")
    assert wait_until(lambda: _pushes(sandbox, push["call_id"])[0]["state"] == "sent", 20, 0.2), \
        _pushes(sandbox, push["call_id"])
    [after] = _pushes(sandbox, push["call_id"])
    delivered_at = centre.requests[-1][2]
    print(f"push resumed: {tried} attempts before the kill, {len(centre.requests) - tried} after the restart; "
          f"delivered {delivered_at - restart:.2f} s after `stack up` began ({delivered_at - killed_at:.2f} s after "
          f"the kill); attempts on record {after['attempts']}")
    assert len(centre.requests) == tried + 1, "exactly one more delivery after the restart"
    assert {key for key, _, _ in centre.requests} == {push["push_id"]}, "the same Idempotency-Key throughout"
    first, last = centre.requests[0][1], centre.requests[-1][1]
    assert last == first, "the case rebuilt from the rows is the case first sent"
    assert last["caller_number"] == "+8613800138051" and last["situation"] == "fire"
    assert after["resumed_at"] is not None and after["attempts"] == tried + 1
    listed = json.loads(sandbox.hotline("linkage", "handoffs", "--json", "--call", push["call_id"]).stdout)
    assert listed[0]["pushes"][0]["state"] == "sent" and listed[0]["pushes"][0]["resumed_at"]


def test_a_push_whose_centre_no_longer_takes_http_is_marked_failed_with_the_reason_after_the_restart(
        sandbox, http_119):
    centre = http_119
    push, _ = _kill_gateway_mid_retry(sandbox, centre, "13800138052")
    tried = len(centre.requests)
    # while the gateway is down the office moves 119 back to MQTT
    sandbox.emergency_list.write_text(centre.original_list, encoding="utf-8")
    sandbox.hotline("stack", "up")
    assert wait_until(lambda: _pushes(sandbox, push["call_id"])[0]["state"] == "failed", 20, 0.2)
    [after] = _pushes(sandbox, push["call_id"])
    print(f"push not resumed: {after['last_error']}")
    assert "centre 119 now takes push = 'mqtt', not 'http'" in after["last_error"]
    assert len(centre.requests) == tried, "nothing more goes to the old endpoint"
    out = sandbox.hotline("linkage", "handoffs", "--call", push["call_id"]).stdout
    assert "http failed" in out and "not resumed after the restart" in out
