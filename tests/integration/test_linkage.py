"""Linkage on the real stack: the emergency sub-menu hands the caller to a sipp UAS as the 119 centre."""
from __future__ import annotations

import asyncio
import json

import pytest

from gateway.sandbox.processes import wait_until
from gateway.sandbox.testcall import place_call
from tests.integration.test_speech_prefill import Subscriber

pytestmark = pytest.mark.integration


def handoffs(sandbox, call_id):
    return sandbox.store_query(lambda s: s.list_handoffs(call_id=call_id))


def test_fire_key_puts_the_caller_through_to_119_with_the_case_data(sandbox, centre_119):
    with Subscriber(sandbox, "centre-119") as centre, Subscriber(sandbox, "centre-110") as police:
        result = sandbox.call("13800138020", dtmf="9,2", hold_s=10)
        assert wait_until(lambda: centre.messages, 5), "the 119 centre got no case data"

    assert result["sipp_ok"] and result["call_id"], result
    [handoff] = handoffs(sandbox, result["call_id"])
    assert handoff["situation"] == "fire" and handoff["centre"] == "119" and handoff["trigger"] == "menu"
    assert handoff["result"] == "answered"
    assert handoff["requested_at"] <= handoff["ring_at"] <= handoff["answered_at"]
    [case] = [m for m in centre.messages if m["topic"] == "hotline/linkage/119"]
    assert case["call_id"] == result["call_id"] and case["situation"] == "fire"
    assert case["caller_number"] == "+8613800138020" and case["ticket_id"] == result["ticket"]["id"]
    assert police.messages == [], "a centre reads only its own cases (broker ACL)"
    assert not result["queued"], "a call the centre took never waits in the agent queue"


def test_a_centre_that_does_not_answer_sends_the_caller_to_an_agent_at_top_priority(sandbox, silent_119, agents):
    with Subscriber(sandbox, "agent1") as agent1, Subscriber(sandbox, "agent2") as agent2:
        result = sandbox.call("13800138021", dtmf="9,2", hold_s=20)
        assert wait_until(lambda: agent1.messages or agent2.messages, 5), "no screen-pop"

    assert result["answered_by"] in {"agent1", "agent2"}, result
    [pop] = (agent1 if result["answered_by"] == "agent1" else agent2).messages
    assert pop["reason"] == "linkage_no_answer", "the agent must see why the caller is back"
    call = sandbox.store_query(lambda s: s.get_call(result["call_id"]))
    assert call["priority"] == 10
    [handoff] = handoffs(sandbox, result["call_id"])
    assert handoff["result"] == "fallback_queue" and "119:NOANSWER" in (handoff["detail"] or "")
    assert handoff["answered_at"] is None and handoff["ended_at"] is not None


def test_a_restricted_caller_keying_9_reaches_the_centre(sandbox, centre_119):
    sandbox.hotline("restrict", "add", "13911113333", "--reason", "威胁话务员", "--operator", "test")
    # 9 during the announcement, then 2 (fire) in the emergency sub-menu
    result = sandbox.call("13911113333", dtmf="9,2", hold_s=10)

    attempts = sandbox.store_query(lambda s: s.blocked_attempts("+8613911113333"))
    assert [a["call_id"] for a in attempts] == [result["call_id"]]  # the restriction stands and is on record...
    [handoff] = handoffs(sandbox, result["call_id"])
    assert handoff["situation"] == "fire" and handoff["result"] == "answered"  # ...and help was reached
    listed = json.loads(sandbox.hotline("linkage", "handoffs", "--json", "--call", result["call_id"]).stdout)
    assert listed and listed[0]["centre"] == "119"


def test_a_spoken_emergency_confirmed_with_1_reaches_the_centre(sandbox, korean_fire_list, centre_119, slow_agents,
                                                               tmp_path):
    import subprocess

    from tests.integration.conftest import KO_FIRE_SENTENCE
    raw, wav = tmp_path / "raw.wav", tmp_path / "fire.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), KO_FIRE_SENTENCE], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)

    with Subscriber(sandbox, "centre-119") as centre:
        # keys 3 (complaint), describes the matter while queued, then presses 1 at the confirmation prompt
        result = asyncio.run(place_call(sandbox.config, "13800138022", "3", hold_s=30, full=True, say=wav,
                                        speak_after_ms=6000, keys_after_speech="1", keys_after_speech_ms=4000))
        assert wait_until(lambda: centre.messages, 5), "no case data after the caller confirmed"

    [handoff] = handoffs(sandbox, result["call_id"])
    assert handoff["trigger"] == "speech" and handoff["situation"] == "fire", handoff
    assert handoff["result"] == "answered" and "confirmed" in (handoff["detail"] or "")
    assert result["ticket"]["emergency"] == "119"
    [case] = centre.messages
    assert case["call_id"] == result["call_id"] and case["transcript"] == result["ticket"]["transcript"]
    assert result["answered_by"] is None, "the centre took the call; no agent needed"
    [offered] = [line for line in sandbox.gateway_log().splitlines()
                 if result["call_id"] in line and "event=linkage_offered" in line]
    window = offered.split("check_to_redirect_ms=")[1].split()[0]
    print(f"queue check to Redirect: {window} ms (an agent answering inside it would lose the caller to the "
          "confirmation)")


def _console(sandbox, agent):
    """An agent signed in to the console API (cookie session), as the page does it."""
    import http.cookiejar
    import urllib.request

    from gateway.mqtt.passwords import mqtt_password
    cfg = sandbox.config
    base = f"http://{cfg.console.host}:{cfg.console.port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    assert post("/api/login", {"agent": agent, "password": mqtt_password(cfg.state_dir, agent)})[0] == 200
    return post


def _answered_call(sandbox, number):
    from gateway.basics.phone import normalise
    e164 = normalise(number).e164
    found = {}

    def answered():
        for call in sandbox.store_query(lambda s: s.list_calls(limit=10)):
            if call["number"] == e164 and call["outcome"] == "answered":
                found.update(call)
                return True
        return False
    assert wait_until(answered, 20, 0.3), "no agent answered"
    return found


@pytest.mark.parametrize("mode", ["threeway", "blind"])
def test_the_agent_console_transfers_the_caller_to_a_centre(sandbox, centre_119, agents, mode):
    import threading
    number = "13800138031" if mode == "threeway" else "13800138032"
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.update(sandbox.call(number, "3", hold_s=25)))
    caller.start()
    try:
        call = _answered_call(sandbox, number)
        # the screen-pop makes the ticket the answering agent's, for the console, on the same AgentConnect
        assert wait_until(lambda: sandbox.store_query(lambda s: s.ticket_draft_for_call(call["call_id"]))["agent"],
                          5, 0.1)
        ticket = sandbox.store_query(lambda s: s.ticket_draft_for_call(call["call_id"]))
        post = _console(sandbox, call["agent"])
        status, body = post(f"/api/tickets/{ticket['public_id']}/transfer", {"centre": "119", "mode": mode})
        assert status == 202, body

        def conference_users():
            out = sandbox.stack.root.cli("confbridge list").stdout
            rows = [line.split() for line in out.splitlines() if line.startswith("case-")]
            return int(rows[0][1]) if rows else 0
        if mode == "threeway":
            assert wait_until(lambda: conference_users() == 3, 15, 0.3), "caller, agent and 119 in one ConfBridge"
            assert wait_until(lambda: handoffs(sandbox, call["call_id"])[0]["answered_at"] is not None, 5, 0.3)
        [handoff] = handoffs(sandbox, call["call_id"])
        assert handoff["trigger"] == "agent" and handoff["mode"] == mode and handoff["centre"] == "119"
        if mode == "blind":
            assert wait_until(lambda: handoffs(sandbox, call["call_id"])[0]["result"] == "answered", 10, 0.3)
    finally:
        caller.join(40)


def _bridge_peer(sandbox, channel):
    """BRIDGEPEER of a channel as Asterisk has it now (empty: not bridged)."""
    out = sandbox.stack.root.cli(f"core show channel {channel}").stdout
    for line in out.splitlines():
        if line.strip().startswith("BRIDGEPEER="):
            return line.strip().split("=", 1)[1]
    return ""


def _offer_now(sandbox, call_id):
    """The gateway's speech offer for `call_id`, run from here against the real Asterisk and store."""
    from ami_handlers.client.connection import AMIConnection
    from gateway.basics.clock import utc_now
    from gateway.store.database import Store
    from linkage.emergency_list import load_emergency_list
    from linkage.handoff import LinkageHandoff
    cfg = sandbox.config
    emergencies = load_emergency_list(sandbox.emergency_list, require_centres=True)

    class NoPush:
        def spawn(self, centre, **case):
            raise AssertionError("no case data may go out for a call an agent has")

    async def run():
        ami = AMIConnection(host=cfg.ami.host, port=cfg.ami.port, username=cfg.ami.username,
                            secret=sandbox.stack._ami_secret(), ping_interval=None)
        store = await Store.open(cfg.store.location)
        try:
            await ami.connect()
            assert await ami.wait_ready(5)
            linkage = LinkageHandoff(store, lambda: emergencies, NoPush(), clock=utc_now, ami=ami,
                                     queue=cfg.queue.name)
            return await linkage.offer_from_speech(call_id=call_id, ticket_id=None, situation_id="fire")
        finally:
            await store.close()
            await ami.close()
    return asyncio.run(run())


def test_an_offer_due_after_the_agent_answered_leaves_the_caller_bridged_with_the_agent(sandbox, agents):
    """The store trails Asterisk: here it still says "queued" when the offer is due, as it does while the
    AgentConnect is on its way. Asterisk, asked, no longer lists the caller in the queue: no Redirect."""
    import threading
    number = "13800138041"
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.update(sandbox.call(number, "3", hold_s=14)))
    caller.start()
    try:
        call = _answered_call(sandbox, number)
        assert wait_until(lambda: _bridge_peer(sandbox, call["channel"]), 5, 0.2), "the agent's bridge"
        sandbox.store_query(lambda s: s.update_call(call["call_id"], outcome="queued"))

        assert _offer_now(sandbox, call["call_id"]) is None
        [handoff] = handoffs(sandbox, call["call_id"])
        print(f"offer after the answer: result={handoff['result']} detail={handoff['detail']!r}")
        assert handoff["result"] == "cancelled" and "no longer waiting" in handoff["detail"]
        peer = _bridge_peer(sandbox, call["channel"])
        assert peer.startswith("PJSIP/agent"), f"the caller must still be bridged with the agent, not {peer!r}"
    finally:
        caller.join(40)
    assert outcome["hangup_by"] == "caller" and outcome["answered_by"] in {"agent1", "agent2"}, outcome


def test_a_spoken_emergency_heard_after_the_agent_answered_keeps_the_caller_with_the_agent(
        sandbox, korean_fire_list, tmp_path):
    """The caller is still speaking when the agent answers: the capture ends on AgentConnect, the recogniser
    then hears "fire", and the offer it would make finds the caller with the agent: nothing moves them.
    The caller talks on for 12 s (the sentence three times), so the agent, 5 s after the queue rang, always
    answers mid-speech, whatever the machine's load does to the timings."""
    import subprocess

    from tests.integration.conftest import KO_FIRE_SENTENCE
    raw, wav = tmp_path / "raw.wav", tmp_path / "fire.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), " ".join([KO_FIRE_SENTENCE] * 3)],
                   check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=5000)
    try:
        result = asyncio.run(place_call(sandbox.config, "13800138042", "3", hold_s=18, full=True, say=wav,
                                        speak_after_ms=500))
    finally:
        for proc in sandbox.stack.agents:
            proc.stop(timeout=3)
    assert result["answered_by"] in {"agent1", "agent2"} and result["hangup_by"] == "caller", result
    assert result["ticket"]["emergency"] == "119", "the recogniser heard the emergency (after the answer)"
    log = sandbox.gateway_log()
    offered = [line for line in log.splitlines() if result["call_id"] in line and "event=linkage_offer" in line]
    print("offer lines:", offered or "none (the store already knew the agent had the call)")
    assert not any("event=linkage_offered" in line for line in offered), offered
    assert all(h["result"] == "cancelled" for h in handoffs(sandbox, result["call_id"]))


COAST_CENTRE = ('\n[centres.coast]\nname = "海上搜救"\ndial = "PJSIP/centre-coast"\nanswer_timeout_s = 20\n'
                'push = "mqtt"\n')


def _read_case_as(sandbox, user, topic):
    """Log in to the stack's broker as `user`, subscribe to `topic`, publish one case there as the gateway;
    what `user` received."""
    import aiomqtt

    from gateway.mqtt.passwords import mqtt_password
    cfg = sandbox.config

    async def run():
        async with aiomqtt.Client(cfg.mqtt.host, cfg.mqtt.port, username=user, timeout=5, identifier=f"t-{user}",
                                  password=mqtt_password(cfg.state_dir, user)) as reader:
            await reader.subscribe(topic, qos=1)
            async with aiomqtt.Client(cfg.mqtt.host, cfg.mqtt.port, username="gateway", identifier="t-gateway",
                                      password=mqtt_password(cfg.state_dir, "gateway")) as gateway:
                await gateway.publish(topic, json.dumps({"case": "test"}), qos=1)
            async with asyncio.timeout(5):
                async for message in reader.messages:
                    return json.loads(message.payload)
    return asyncio.run(run())


def test_a_centre_added_to_the_list_while_the_gateway_runs_reads_its_cases_from_the_broker(sandbox):
    path = sandbox.emergency_list
    original = path.read_text(encoding="utf-8")
    loaded = sandbox.gateway_log().count("event=emergency_list_loaded")
    path.write_text(original + COAST_CENTRE, encoding="utf-8")
    try:
        assert wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > loaded, 15), \
            sandbox.gateway_log()[-2000:]
        assert "event=broker_centre_users_added users=centre-coast" in sandbox.gateway_log()
        assert _read_case_as(sandbox, "centre-coast", "hotline/linkage/coast") == {"case": "test"}
        listed = sandbox.hotline("linkage", "list", "--json")
        assert json.loads(listed.stdout)["gateway"]["refused"] is None
    finally:
        loaded = sandbox.gateway_log().count("event=emergency_list_loaded")
        path.write_text(original, encoding="utf-8")
        wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > loaded, 10)


def test_a_centre_the_broker_cannot_take_refuses_the_reload_and_the_cli_says_why(sandbox):
    path = sandbox.emergency_list
    original = path.read_text(encoding="utf-8")
    sandbox.stack.mosquitto.stop()
    refused = sandbox.gateway_log().count("event=emergency_list_refused")
    path.write_text(original + COAST_CENTRE.replace("coast", "coast2"), encoding="utf-8")
    try:
        assert wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_refused") > refused, 15)
        listed = sandbox.hotline("linkage", "list", check=False)
        print(listed.stderr.strip())
        assert listed.returncode == 1 and "REFUSED by the running gateway" in listed.stdout
        assert "mosquitto is not running" in listed.stdout and "centre-coast2" in listed.stdout
        assert wait_until(lambda: json.loads(sandbox.hotline("stack", "status", "--json", check=False).stdout)
                          ["gateway"]["emergency_list"]["refused"], 5, 0.5), "stack status shows the refusal"
    finally:
        loaded = sandbox.gateway_log().count("event=emergency_list_loaded")
        path.write_text(original, encoding="utf-8")
        wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > loaded, 10)
        sandbox.hotline("stack", "up")
