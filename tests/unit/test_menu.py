import dataclasses
import tomllib

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.menu import (
    DEFAULT_MENU_PATH, MenuError, MenuState, fault_priority, load_menu, next_step, start, validate_prompts,
)
from ivr.menu_steps import (
    AnnounceTicket, CollectTicket, DigitEvent, LookupTicket, PlayAndWait, Played, Queue, TicketEntered,
    TicketLookedUp, Timeout,
)
from ivr.prompts import DEFAULT_CATALOGUE_PATH, load_catalogue

MENU = load_menu(DEFAULT_MENU_PATH)
REQUEST_OF_KEY = {"1": "consultation", "2": "help", "3": "complaint", "4": "report", "5": "suggestion"}
EMERGENCY_OF_KEY = {"1": "110", "2": "119", "3": "120", "4": "122", "5": "water", "6": "power", "7": "gas"}
ALL_KEYS = "0123456789*#"


def run(events):
    """Feed events from the start; returns (final state, list of steps)."""
    state, step = start(MENU)
    steps = [step]
    for event in events:
        state, step = next_step(MENU, state, event)
        steps.append(step)
    return state, steps


def keys(*digits):
    return [DigitEvent(d) for d in digits]


# --- the shipped menu --------------------------------------------------------------------------------------


def test_shipped_menu_plays_welcome_with_barge_in_first():
    state, step = start(MENU)
    assert step == PlayAndWait("welcome", 5000, barge_in=True)
    assert state.path == ("welcome",)


def test_shipped_menu_names_only_prompts_in_the_shipped_catalogue():
    validate_prompts(MENU, load_catalogue(DEFAULT_CATALOGUE_PATH))


@pytest.mark.parametrize("key", list(ALL_KEYS))
def test_every_key_at_welcome(key):
    state, steps = run(keys(key))
    step = steps[-1]
    if key in REQUEST_OF_KEY:
        assert step == Queue(REQUEST_OF_KEY[key], 0, None, "selected", announce="transfer_agent")
        assert state.path == ("welcome", key)
    elif key == "0":
        assert step == Queue("unspecified", 0, None, "agent", announce="transfer_agent")
        assert state.path == ("welcome", "0")
    elif key == "6":
        assert step == CollectTicket("ticket_prompt", 20, 8000)
    elif key == "9":
        assert step == PlayAndWait("emergency_menu", 5000)
        assert state.path == ("welcome", "9", "emergency")
    else:
        assert step == PlayAndWait("retry", 5000)
        assert state.invalid_count == 1 and state.path == ("welcome", "invalid")


@pytest.mark.parametrize("key", list(ALL_KEYS))
def test_every_key_at_emergency(key):
    state, steps = run(keys("9", key))
    step = steps[-1]
    if key in EMERGENCY_OF_KEY:
        # no "transferring you to an agent" for an emergency: the hand-off follows at once
        assert step == Queue("help", 10, EMERGENCY_OF_KEY[key], "selected", announce=None)
        assert state.path == ("welcome", "9", "emergency", key)
    elif key == "0":
        assert step == Queue("unspecified", 10, None, "agent", announce="transfer_agent")
    else:
        assert step == PlayAndWait("emergency_retry", 5000)


def test_emergency_9_then_2_is_fire_at_top_priority():
    state, steps = run(keys("9", "2"))
    assert (steps[-1].emergency, steps[-1].priority, steps[-1].reason) == ("119", 10, "selected")
    assert state.path == ("welcome", "9", "emergency", "2")


def test_silence_after_welcome_queues_unspecified_with_reason_timeout():
    state, steps = run([Timeout()])
    assert steps[-1] == Queue("unspecified", 0, None, "timeout", announce="transfer_agent")
    assert state.path == ("welcome", "timeout")


def test_one_invalid_key_then_a_valid_one_is_a_normal_choice():
    state, steps = run(keys("8", "3"))
    assert steps[-1].request_type == "complaint" and steps[-1].reason == "selected"
    assert state.path == ("welcome", "invalid", "3")


@pytest.mark.parametrize("first, second", [("8", "7"), ("*", "#"), ("ab", "12"), ("", "x")])
def test_two_invalid_keys_queue_unspecified_with_reason_invalid(first, second):
    state, steps = run(keys(first, second))
    assert steps[1] == PlayAndWait("retry", 5000)
    assert steps[2] == Queue("unspecified", 0, None, "invalid", announce="transfer_agent")
    assert state.path == ("welcome", "invalid", "invalid")


def test_invalid_then_silence_queues_with_reason_timeout():
    _, steps = run(keys("7") + [Timeout()])
    assert steps[-1].reason == "timeout"


def test_retry_count_restarts_in_the_emergency_submenu():
    _, steps = run(keys("8", "9", "8"))
    assert steps[-1] == PlayAndWait("emergency_retry", 5000)
    _, steps = run(keys("8", "9", "8", "8"))
    assert steps[-1] == Queue("unspecified", 10, None, "invalid", announce="transfer_agent")


def test_silence_in_the_emergency_submenu_still_queues_at_top_priority():
    _, steps = run(keys("9") + [Timeout()])
    assert steps[-1] == Queue("unspecified", 10, None, "timeout", announce="transfer_agent")


@pytest.mark.parametrize("status, prompt", [
    ("received", "ticket_status_received"), ("processing", "ticket_status_processing"),
    ("done", "ticket_status_done"), ("closed", "ticket_status_closed"), ("returned", "ticket_status_returned"),
    ("transferred", "ticket_status_transferred"), ("extended", "ticket_status_extended"),
    ("lost in the post", "ticket_status_other"), (None, "ticket_not_found"),
])
def test_ticket_query_announces_status_then_goes_to_an_agent(status, prompt):
    state, steps = run(keys("6") + [TicketEntered("202603310001"), TicketLookedUp(status), Played()])
    assert steps[2] == LookupTicket("202603310001")
    assert steps[3] == AnnounceTicket("202603310001", (prompt,))
    assert steps[4] == Queue("unspecified", 0, None, "agent", ticket_query="202603310001",
                             announce="transfer_agent")
    assert state.path == ("welcome", "6", "ticket")


def test_ticket_query_says_the_unit_and_the_due_date_after_the_status():
    looked_up = TicketLookedUp("transferred", unit_prompt="unit_abc", due=date(2026, 12, 22))
    _, steps = run(keys("6") + [TicketEntered("2026113000001"), looked_up, Played()])
    assert steps[3] == AnnounceTicket("2026113000001", (
        "ticket_status_transferred", "ticket_unit", "unit_abc", "ticket_due",
        "digit_2", "digit_0", "digit_2", "digit_6", "year", "ten", "digit_2", "month", "digit_2", "ten", "digit_2",
        "day"))
    # a unit without a prompt is left unsaid; the due date still comes
    _, steps = run(keys("6") + [TicketEntered("2026113000001"), TicketLookedUp("extended", due=date(2026, 1, 5)),
                                Played()])
    assert steps[3].prompts[:2] == ("ticket_status_extended", "ticket_due")


def test_ticket_query_with_garbage_digits_is_not_found_without_a_lookup():
    _, steps = run(keys("6") + [TicketEntered("12*4")])
    assert steps[-1] == AnnounceTicket("12*4", ("ticket_not_found",))


def test_ticket_query_without_digits_goes_to_an_agent_with_reason_timeout():
    state, steps = run(keys("6") + [TicketEntered("")])
    assert steps[-1] == Queue("unspecified", 0, None, "timeout", announce="transfer_agent")
    assert state.path == ("welcome", "6", "timeout")


def test_ticket_store_failure_goes_straight_to_an_agent():
    _, steps = run(keys("6") + [TicketEntered("42"), TicketLookedUp(None, failed=True)])
    assert steps[-1] == Queue("unspecified", 0, None, "agent", ticket_query="42", announce="transfer_agent")


def test_an_event_that_does_not_answer_the_step_is_a_programming_error():
    state, _ = start(MENU)
    with pytest.raises(ValueError):
        next_step(MENU, state, Played())


def test_states_are_immutable_plain_data():
    state, _ = run(keys("6") + [TicketEntered("42")])
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.node = "emergency"
    assert hash(state) == hash(dataclasses.replace(state))


def silent_caller_wait_ms(menu):
    """Sum of the digit waits a caller who never presses a key sits through before the queue decision."""
    state, step = start(menu)
    waited = 0
    while not isinstance(step, Queue):
        assert isinstance(step, PlayAndWait)
        waited += step.timeout_ms
        state, step = next_step(menu, state, Timeout())
    return waited


def test_silent_caller_reaches_the_queue_decision_within_10s_of_the_welcome_end():
    raw = tomllib.loads(DEFAULT_MENU_PATH.read_text(encoding="utf-8"))
    assert silent_caller_wait_ms(MENU) == raw["nodes"][raw["start"]]["timeout_ms"] <= 6000


# --- properties over any caller behaviour ------------------------------------------------------------------

caller_input = st.one_of(
    st.builds(DigitEvent, st.sampled_from(list(ALL_KEYS)) | st.text(max_size=3)),
    st.just(Timeout()),
)


@settings(max_examples=500)
@given(st.lists(caller_input, min_size=8, max_size=8), st.sampled_from(["x1", "x2", "found"]))
def test_any_caller_ends_in_an_agent_queue_within_a_few_inputs(inputs, ticket_kind):
    state, step = start(MENU)
    for n, event in enumerate(inputs):
        if isinstance(step, CollectTicket):
            event = TicketEntered("123")
        elif isinstance(step, LookupTicket):
            event = TicketLookedUp("done" if ticket_kind == "found" else None, failed=ticket_kind == "x2")
        elif isinstance(step, AnnounceTicket):
            event = Played()
        state, step = next_step(MENU, state, event)
        if isinstance(step, Queue):
            break
    assert isinstance(step, Queue), inputs
    assert step.request_type in {"consultation", "help", "complaint", "report", "suggestion", "unspecified"}
    assert (step.priority == 10) == ("emergency" in state.path)
    assert (step.emergency is not None) <= (step.reason == "selected")
    assert step.reason != "timeout" or state.path[-1] == "timeout"
    # "transferring you to an agent" for every way to an agent, never before an emergency hand-off
    assert step.announce == (None if step.emergency else "transfer_agent")
    assert state.path[0] == "welcome"


# --- schema validation -------------------------------------------------------------------------------------

GOOD = """
start = "welcome"
transfer_prompt = "transfer_agent"
[nodes.welcome]
prompt = "welcome"
timeout_ms = 5000
max_retries = 1
retry_prompt = "retry"
on_timeout = { action = "agent" }
on_invalid = { action = "agent" }
[nodes.welcome.options]
"1" = { action = "queue", request_type = "consultation" }
"9" = { action = "submenu", node = "welcome" }
"""


def write(tmp_path, text):
    path = tmp_path / "menu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_menu_loads(tmp_path):
    menu = load_menu(write(tmp_path, GOOD))
    assert menu.start == "welcome" and set(menu.nodes["welcome"].options) == {"1", "9"}


@pytest.mark.parametrize("old, new, field, reason", [
    ('node = "welcome"', 'node = "nowhere"', "nodes.welcome.options.9.node", "unknown node 'nowhere'"),
    ('start = "welcome"', 'start = "main"', "start", "unknown node 'main'"),
    ('"1" = {', '"A" = {', "nodes.welcome.options.A", "key must be one of"),
    ('"1" = {', '"12" = {', "nodes.welcome.options.12", "key must be one of"),
    ("timeout_ms = 5000", "timeout_ms = -1", "nodes.welcome.timeout_ms", "out of range"),
    ("timeout_ms = 5000", "timeout_ms = true", "nodes.welcome.timeout_ms", "must be an integer"),
    ("max_retries = 1", "max_retries = -2", "nodes.welcome.max_retries", "out of range"),
    ('action = "queue"', 'action = "dial"', "nodes.welcome.options.1.action", "unknown action 'dial'"),
    ('request_type = "consultation"', 'request_type = "chat"', "nodes.welcome.options.1.request_type",
     "unknown request type"),
    ('request_type = "consultation"', 'request_type = "help", emergency = "999"',
     "nodes.welcome.options.1.emergency", "unknown emergency"),
    ('request_type = "consultation"', 'request_type = "help", priority = 99',
     "nodes.welcome.options.1.priority", "out of range"),
    ('on_timeout = { action = "agent" }', 'on_timeout = { action = "submenu", node = "welcome" }',
     "nodes.welcome.on_timeout.action", "every dead end ends at an agent"),
    ('on_invalid = { action = "agent" }', "", "nodes.welcome.on_invalid", "missing"),
    ('retry_prompt = "retry"', 'retry_prompt = "Retry Prompt"', "nodes.welcome.retry_prompt", "must match"),
    ('prompt = "welcome"', 'prompt = "welcome"\npromt = "x"', "nodes.welcome.promt", "unknown field"),
])
def test_schema_errors_name_the_file_the_field_and_the_reason(tmp_path, old, new, field, reason):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(MenuError) as info:
        load_menu(path)
    assert info.value.file == str(path)
    assert info.value.field_path == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: {field}: ")


def test_a_file_that_is_not_toml_is_named(tmp_path):
    path = write(tmp_path, "start = [")
    with pytest.raises(MenuError, match="not valid TOML") as info:
        load_menu(path)
    assert info.value.file == str(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(MenuError, match="cannot read"):
        load_menu(tmp_path / "absent.toml")


def test_missing_prompts_are_named_with_their_field(tmp_path):
    menu = load_menu(write(tmp_path, GOOD))
    with pytest.raises(MenuError) as info:
        validate_prompts(menu, {"welcome": "…", "transfer_agent": "…"})
    assert info.value.field_path == "nodes.welcome.retry_prompt"
    assert "'retry'" in info.value.reason


def test_missing_ticket_status_prompt_is_named():
    catalogue = set(load_catalogue(DEFAULT_CATALOGUE_PATH)) - {"ticket_status_done"}
    with pytest.raises(MenuError) as info:
        validate_prompts(MENU, catalogue)
    assert info.value.field_path == "nodes.welcome.options.6.status_prompts.done"


def test_a_fault_in_the_emergency_sub_menu_owes_its_own_fallback_top_priority():
    assert fault_priority(MENU, MenuState(node="emergency")) == 10
    assert fault_priority(MENU, MenuState(node="welcome")) == 0


def test_the_fault_priority_follows_the_caller_into_the_emergency_sub_menu():
    state, _ = start(MENU)
    state, _ = next_step(MENU, state, DigitEvent("9"))
    assert state.node == "emergency" and fault_priority(MENU, state) == 10
