"""Who may see a ticket on the agent console (gateway.console.access) and which call is an agent's current one
(gateway.console.current_call): pure decisions over plain data."""

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.basics.clock import SHANGHAI
from gateway.console.access import Access, TicketHolders, Viewer, decide
from gateway.console.current_call import CURRENT_FOR, is_current

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)
names = st.sampled_from(["agent1", "agent2", "agent3", "lead1"])


def test_the_tickets_agent_sees_it_without_an_audit_row():
    access = decide(Viewer("agent1"), TicketHolders.of("agent1"))
    assert access is Access.OWN and access.allowed and not access.audited


def test_another_agent_is_refused_and_the_refusal_is_audited():
    access = decide(Viewer("agent2"), TicketHolders.of("agent1", ["agent1"]))
    assert access is Access.DENIED and not access.allowed and access.audited


def test_a_ticket_no_agent_has_answered_is_nobodys_but_a_supervisors():
    unanswered = TicketHolders.of(None)
    assert decide(Viewer("agent1"), unanswered) is Access.DENIED
    assert decide(Viewer("agent2"), TicketHolders.of("")) is Access.DENIED
    assert decide(Viewer("lead1", "supervisor"), unanswered) is Access.SUPERVISOR


def test_an_agent_who_answered_earlier_or_was_assigned_sees_it_audited():
    holders = TicketHolders.of("agent2", ["agent1", "agent2", "agent3"])
    for name in ("agent1", "agent3"):
        access = decide(Viewer(name), holders)
        assert access is Access.ASSIGNED and access.allowed and access.audited


def test_a_supervisor_sees_every_ticket_audited_unless_it_is_their_own():
    assert decide(Viewer("lead1", "supervisor"), TicketHolders.of("agent1", ["agent1"])) is Access.SUPERVISOR
    assert decide(Viewer("lead1", "supervisor"), TicketHolders.of("lead1", ["lead1"])) is Access.OWN


@given(viewer=names, supervisor=st.booleans(), agent=st.none() | names, assigned=st.frozensets(names))
def test_access_is_granted_exactly_to_the_agent_the_assigned_and_supervisors(viewer, supervisor, agent, assigned):
    access = decide(Viewer(viewer, "supervisor" if supervisor else "agent"), TicketHolders.of(agent, assigned))
    assert access.allowed == (viewer == agent or viewer in assigned or supervisor)
    assert access.audited == (viewer != agent)


def test_a_call_in_progress_is_current_whatever_its_tickets_state():
    assert is_current(popped_at=NOW, call={"ended_at": None}, ticket={"status": "saved"}, now=NOW)


def test_an_ended_call_stays_current_until_its_ticket_is_saved():
    ended = {"ended_at": NOW}
    assert is_current(popped_at=NOW, call=ended, ticket={"status": "draft"}, now=NOW + timedelta(minutes=5))
    assert not is_current(popped_at=NOW, call=ended, ticket={"status": "saved"}, now=NOW + timedelta(minutes=5))
    assert not is_current(popped_at=NOW, call=ended, ticket=None, now=NOW)


def test_a_pop_older_than_a_shift_is_never_current():
    assert not is_current(popped_at=NOW, call={"ended_at": None}, ticket={"status": "draft"},
                          now=NOW + CURRENT_FOR + timedelta(seconds=1))
