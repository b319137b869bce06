from datetime import date

import pytest

from ivr.menu import DEFAULT_MENU_PATH, load_menu
from ivr.runner import announce_restriction, run_menu
from ivr.say import say_date

MENU = load_menu(DEFAULT_MENU_PATH)
DIR = "/var/lib/asterisk/sounds/hotline/zh"


class FakeHangup(Exception):
    """Stands in for gateway.agi.server.AGIHangup: the runner must let it through."""


class ScriptedSession:
    """Implements the FastAGI session methods the IVR uses; each media command takes the next scripted answer.

    The script is a list of (command, expected prompt or timeout, answer). A command the script does not expect
    fails the test; running off the end of the script is the caller hanging up.
    """

    def __init__(self, script):
        self.script = list(script)
        self.calls = []
        self.variables = {}

    def _next(self, command, arg):
        self.calls.append((command, arg))
        if not self.script:
            raise FakeHangup(f"caller hung up before {command} {arg}")
        want_command, want_arg, answer = self.script.pop(0)
        assert (command, arg) == (want_command, want_arg), self.calls
        return answer

    async def stream_file(self, name, escape_digits=""):
        self.calls.append(("escape", escape_digits))
        return self._next("stream_file", name)

    async def wait_for_digit(self, timeout_ms):
        return self._next("wait_for_digit", timeout_ms)

    async def get_data(self, name, timeout_ms, max_digits):
        self.calls.append(("get_data_limits", (timeout_ms, max_digits)))
        return self._next("get_data", name)

    async def set_variable(self, name, value):
        self.variables[name] = value

    async def get_variable(self, name):
        return self.variables.get(name)

    def played(self):
        return [arg.rsplit("/", 1)[1] for command, arg in self.calls if command in {"stream_file", "get_data"}]


def play(name, pressed=None):
    return ("stream_file", f"{DIR}/{name}", pressed)


def wait(digit, timeout_ms=5000):
    return ("wait_for_digit", timeout_ms, digit)


TRANSFER = play("transfer_agent")


async def no_tickets(number):
    raise AssertionError("no ticket lookup expected")


async def run(script, lookup=no_tickets, **kw):
    session = ScriptedSession(script)
    outcome = await run_menu(session, MENU, prompt_dir=DIR, lookup_ticket=lookup, **kw)
    assert session.script == [], "the caller was not taken through the whole script"
    return session, outcome


async def test_key_pressed_during_the_welcome_is_taken_as_the_choice():
    session, outcome = await run([play("welcome", "3"), TRANSFER])
    assert (outcome.request_type, outcome.priority, outcome.emergency) == ("complaint", 0, None)
    assert (outcome.reason, outcome.ivr_path, outcome.ticket_query) == ("selected", ["welcome", "3"], None)
    assert ("escape", "0123456789*#") in session.calls
    assert not any(command == "wait_for_digit" for command, _ in session.calls)


async def test_key_after_the_welcome_is_taken_as_the_choice():
    _, outcome = await run([play("welcome"), wait("1"), TRANSFER])
    assert outcome.request_type == "consultation" and outcome.reason == "selected"


async def test_invalid_key_then_valid_key():
    session, outcome = await run([play("welcome", "8"), play("retry"), wait("5"), TRANSFER])
    assert outcome.request_type == "suggestion" and outcome.reason == "selected"
    assert outcome.ivr_path == ["welcome", "invalid", "5"]


async def test_garbage_then_silence_goes_to_the_agent_queue_with_reason_timeout():
    session, outcome = await run([play("welcome"), wait("A"), play("retry"), wait(None), TRANSFER])
    assert (outcome.request_type, outcome.priority, outcome.reason) == ("unspecified", 0, "timeout")
    assert outcome.ivr_path == ["welcome", "invalid", "timeout"]
    assert session.played()[-1] == "transfer_agent"


async def test_two_invalid_keys_go_to_the_agent_queue_with_reason_invalid():
    _, outcome = await run([play("welcome", "*"), play("retry", "#"), TRANSFER])
    assert (outcome.request_type, outcome.reason) == ("unspecified", "invalid")


async def test_silent_caller_goes_to_the_agent_queue():
    _, outcome = await run([play("welcome"), wait(None), TRANSFER])
    assert (outcome.request_type, outcome.reason, outcome.ivr_path) == ("unspecified", "timeout",
                                                                        ["welcome", "timeout"])


async def test_zero_asks_for_an_agent():
    _, outcome = await run([play("welcome", "0"), TRANSFER])
    assert (outcome.request_type, outcome.priority, outcome.reason) == ("unspecified", 0, "agent")


async def test_emergency_9_then_2_is_fire_at_top_priority():
    _, outcome = await run([play("welcome", "9"), play("emergency_menu"), wait("2")])
    assert (outcome.request_type, outcome.emergency, outcome.priority) == ("help", "119", 10)
    assert outcome.ivr_path == ["welcome", "9", "emergency", "2"]


async def test_ticket_query_found_announces_the_status_then_goes_to_an_agent():
    looked_up = []

    async def lookup(number):
        looked_up.append(number)
        return {"status": "processing", "unit": "住建局"}

    session, outcome = await run([play("welcome", "6"), ("get_data", f"{DIR}/ticket_prompt", ("20260331001", False)),
                                  play("ticket_status_processing"), TRANSFER], lookup)
    assert looked_up == ["20260331001"]
    assert ("get_data_limits", (8000, 20)) in session.calls
    assert (outcome.ticket_query, outcome.reason, outcome.request_type) == ("20260331001", "agent", "unspecified")
    assert outcome.ivr_path == ["welcome", "6", "ticket"]


async def test_ticket_query_not_found_says_so_then_goes_to_an_agent():
    async def lookup(number):
        return None

    _, outcome = await run([play("welcome"), wait("6"), ("get_data", f"{DIR}/ticket_prompt", ("999", True)),
                            play("ticket_not_found"), TRANSFER], lookup)
    assert outcome.ticket_query == "999"


async def test_ticket_with_an_unreadable_status_gets_the_generic_status_prompt():
    async def lookup(number):
        return {"state": "weird"}

    _, outcome = await run([play("welcome", "6"), ("get_data", f"{DIR}/ticket_prompt", ("1", False)),
                            play("ticket_status_other"), TRANSFER], lookup)
    assert outcome.reason == "agent"


async def test_ticket_store_failure_still_reaches_an_agent():
    async def lookup(number):
        raise OSError("database is locked")

    _, outcome = await run([play("welcome", "6"), ("get_data", f"{DIR}/ticket_prompt", ("77", False)), TRANSFER],
                           lookup)
    assert (outcome.ticket_query, outcome.reason) == ("77", "agent")


async def test_hangup_is_not_caught_by_the_runner():
    session = ScriptedSession([play("welcome")])
    with pytest.raises(FakeHangup):
        await run_menu(session, MENU, prompt_dir=DIR, lookup_ticket=no_tickets)


async def test_on_step_sees_every_step_sync_or_async():
    seen = []

    async def on_step(state, step):
        seen.append(type(step).__name__)

    await run([play("welcome", "9"), play("emergency_menu", "1")], on_step=on_step)
    assert seen == ["PlayAndWait", "PlayAndWait", "Queue"]
    seen.clear()
    await run([play("welcome", "1"), TRANSFER], on_step=lambda state, step: seen.append(state.path))
    assert seen == [("welcome",), ("welcome", "1")]


async def test_prompt_dir_with_trailing_slash_is_not_doubled():
    session = ScriptedSession([play("welcome", "1"), TRANSFER])
    await run_menu(session, MENU, prompt_dir=DIR + "/", lookup_ticket=no_tickets)
    assert session.played() == ["welcome", "transfer_agent"]


LAST_DAY = date(2026, 3, 31)
RESTRICTION = ["restricted_intro", *say_date(LAST_DAY), "restricted_outro"]


async def test_restriction_announcement_says_the_last_day():
    session = ScriptedSession([play(name) for name in RESTRICTION])
    assert await announce_restriction(session, prompt_dir=DIR, last_day=LAST_DAY) is None
    assert session.played() == ["restricted_intro", "digit_2", "digit_0", "digit_2", "digit_6", "year", "digit_3",
                                "month", "digit_3", "ten", "digit_1", "day", "restricted_outro"]
    assert {arg for command, arg in session.calls if command == "escape"} == {""}


async def test_restriction_announcement_stops_at_an_emergency_key():
    session = ScriptedSession([play("restricted_intro"), play("digit_2", "9")])
    assert await announce_restriction(session, prompt_dir=DIR, last_day=LAST_DAY, emergency_keys="9") == "9"
    assert ("escape", "9") in session.calls


async def test_restriction_announcement_refuses_non_dtmf_escape_keys():
    with pytest.raises(ValueError):
        await announce_restriction(ScriptedSession([]), prompt_dir=DIR, last_day=LAST_DAY, emergency_keys="x")
