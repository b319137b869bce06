from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.basics.clock import SHANGHAI
from gateway.restriction import RefusalEnd, Restriction, effective, last_day, refusal_end, restriction_end


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def restriction(id=1, decided_at=None, days=30, lifted_at=None, number="+8613800138000") -> Restriction:
    decided_at = decided_at or sh(2026, 3, 1, 15, 0)
    return Restriction(
        id=id, number=number, reason="insulted staff", operator="op1", decided_at=decided_at,
        until=restriction_end(decided_at, days), lifted_at=lifted_at,
        lifted_by="op2" if lifted_at else None, lift_reason="apology" if lifted_at else None,
    )


def test_thirty_days_from_1_march_afternoon_run_through_31_march():
    until = restriction_end(sh(2026, 3, 1, 15, 0), 30)
    assert until == sh(2026, 4, 1, 0, 0)
    assert until.utcoffset() == timedelta(hours=8)
    assert last_day(until) == date(2026, 3, 31)


def test_active_on_the_last_second_and_lifted_at_midnight():
    r = restriction(decided_at=sh(2026, 3, 1, 15, 0))
    assert r.is_active(sh(2026, 3, 1, 15, 0))
    assert r.is_active(sh(2026, 3, 31, 23, 59, 59, 999999))
    assert not r.is_active(sh(2026, 4, 1, 0, 0))
    assert not r.is_active(sh(2026, 4, 1, 0, 0) + timedelta(microseconds=1))


def test_not_active_before_the_decision():
    r = restriction(decided_at=sh(2026, 3, 1, 15, 0))
    assert not r.is_active(sh(2026, 3, 1, 14, 59, 59))


@pytest.mark.parametrize("decided", [sh(2026, 3, 1, 0, 0, 0), sh(2026, 3, 1, 23, 59, 59), sh(2026, 3, 1, 12, 0)])
def test_the_whole_decision_day_counts_as_day_zero(decided):
    assert restriction_end(decided, 30) == sh(2026, 4, 1)


def test_decision_at_one_in_the_morning_counts_from_the_local_day_not_utc():
    decided = sh(2026, 3, 1, 1, 0)
    assert decided.astimezone(UTC).date() == date(2026, 2, 28)
    assert restriction_end(decided, 30) == sh(2026, 4, 1)
    # The same instant written in UTC gives the same answer.
    assert restriction_end(decided.astimezone(UTC), 30) == sh(2026, 4, 1)


def test_decision_late_in_the_utc_evening_is_already_the_next_local_day():
    decided = datetime(2026, 2, 28, 16, 30, tzinfo=UTC)  # 2026-03-01 00:30 in Shanghai
    assert restriction_end(decided, 30) == sh(2026, 4, 1)


@pytest.mark.parametrize(
    ("decided", "days", "last"),
    [
        (sh(2026, 1, 31, 10), 30, date(2026, 3, 2)),  # across a 28-day February
        (sh(2028, 1, 31, 10), 30, date(2028, 3, 1)),  # leap year: 29 February counts
        (sh(2028, 2, 29, 10), 1, date(2028, 3, 1)),
        (sh(2026, 2, 28, 10), 1, date(2026, 3, 1)),
        (sh(2026, 12, 15, 9), 30, date(2027, 1, 14)),  # across the year end
        (sh(2026, 12, 31, 23, 59), 1, date(2027, 1, 1)),
        (sh(2026, 3, 1, 15), 365, date(2027, 3, 1)),
        (sh(2028, 3, 1, 15), 365, date(2029, 3, 1)),
    ],
)
def test_month_year_and_leap_ends(decided, days, last):
    until = restriction_end(decided, days)
    assert last_day(until) == last
    assert until == datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)


@pytest.mark.parametrize("days", [0, -1, 366, 1000])
def test_days_outside_1_to_365_are_refused(days):
    with pytest.raises(ValueError, match="between 1 and 365"):
        restriction_end(sh(2026, 3, 1), days)


@pytest.mark.parametrize("days", [1.5, "30", True])
def test_days_must_be_a_whole_number(days):
    with pytest.raises(ValueError):
        restriction_end(sh(2026, 3, 1), days)


def test_naive_datetimes_are_refused_everywhere():
    naive = datetime(2026, 3, 1, 15)
    with pytest.raises(ValueError, match="timezone-aware"):
        restriction_end(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        last_day(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        restriction().is_active(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        effective([restriction()], naive)


def test_other_time_zone_can_be_used():
    tokyo = ZoneInfo("Asia/Tokyo")
    decided = datetime(2026, 3, 1, 0, 30, tzinfo=tokyo)  # still 28 February in Shanghai
    assert restriction_end(decided, 1, tokyo) == datetime(2026, 3, 3, tzinfo=tokyo)
    assert restriction_end(decided, 1) == sh(2026, 3, 2)


def test_last_day_of_a_non_midnight_until_is_that_day():
    assert last_day(sh(2026, 4, 1, 12, 0)) == date(2026, 4, 1)
    assert last_day(datetime(2026, 3, 31, 16, 0, tzinfo=UTC)) == date(2026, 3, 31)


def test_effective_of_nothing_is_none():
    assert effective([], sh(2026, 3, 5)) is None


def test_lift_ends_it_at_once():
    r = restriction(lifted_at=sh(2026, 3, 5, 10, 0))
    assert r.is_active(sh(2026, 3, 5, 9, 59, 59))
    assert not r.is_active(sh(2026, 3, 5, 10, 0))
    assert effective([r], sh(2026, 3, 6)) is None


def test_a_new_decision_while_active_runs_from_the_new_decision():
    first = restriction(id=1, decided_at=sh(2026, 3, 1, 15))
    second = restriction(id=2, decided_at=sh(2026, 3, 20, 9))
    now = sh(2026, 4, 5)
    assert not first.is_active(now)
    assert effective([first, second], now) == second
    assert effective([second, first], sh(2026, 4, 19, 23, 59)) == second
    assert effective([first, second], sh(2026, 4, 20)) is None


def test_the_latest_decision_wins_even_when_it_ends_earlier():
    long = restriction(id=1, decided_at=sh(2026, 3, 1, 15), days=90)
    short = restriction(id=2, decided_at=sh(2026, 3, 10, 9), days=5)
    assert effective([long, short], sh(2026, 3, 15, 23, 59)) == short
    assert effective([long, short], sh(2026, 3, 16)) is None  # the 90-day decision does not revive


def test_lifting_the_latest_decision_does_not_revive_an_older_one():
    older = restriction(id=1, decided_at=sh(2026, 3, 1, 15))
    newer = restriction(id=2, decided_at=sh(2026, 3, 5, 15), lifted_at=sh(2026, 3, 6, 9))
    assert effective([older, newer], sh(2026, 3, 7)) is None


def test_a_decision_taken_after_now_is_ignored():
    older = restriction(id=1, decided_at=sh(2026, 3, 1, 15))
    future = restriction(id=2, decided_at=sh(2026, 3, 10, 9), days=2)
    assert effective([older, future], sh(2026, 3, 5)) == older


def test_same_instant_decisions_are_ordered_by_id():
    a = restriction(id=7, decided_at=sh(2026, 3, 1, 15), days=30)
    b = restriction(id=8, decided_at=sh(2026, 3, 1, 15), days=3)
    assert effective([b, a], sh(2026, 3, 2)) == b


def test_effective_accepts_any_iterable():
    assert effective((r for r in [restriction()]), sh(2026, 3, 2)) is not None


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


@given(instants, st.integers(min_value=1, max_value=365), offsets)
def test_restriction_covers_exactly_days_whole_local_days_after_the_decision_day(decided, days, offset):
    decided = decided.astimezone(offset)
    until = restriction_end(decided, days)
    local_decision_day = decided.astimezone(SHANGHAI).date()
    assert until.astimezone(SHANGHAI).time() == datetime.min.time()
    assert last_day(until) - local_decision_day == timedelta(days=days)
    assert until > decided
    r = Restriction(1, "+8613800138000", "r", "o", decided, until, None, None, None)
    assert r.is_active(decided)
    assert r.is_active(until - timedelta(microseconds=1))
    assert not r.is_active(until)


@given(st.lists(st.tuples(instants, st.integers(1, 365)), min_size=1, max_size=6), instants)
def test_effective_is_the_latest_decided_or_none(decisions, now):
    rs = [restriction(id=i, decided_at=d, days=n) for i, (d, n) in enumerate(decisions)]
    result = effective(rs, now)
    taken = [r for r in rs if r.decided_at <= now]
    if not taken:
        assert result is None
        return
    latest = max(taken, key=lambda r: (r.decided_at, r.id))
    assert result == (latest if now < latest.until else None)


# -- how a refused call ends (art. 9, 14, 2) ----------------------------------------------------------------------

def test_a_restricted_caller_who_heard_it_all_and_asked_nothing_is_the_only_one_hung_up():
    assert refusal_end(announced=True, emergency_key=None) is RefusalEnd.HANG_UP


@pytest.mark.parametrize("announced", [True, False])
def test_the_emergency_key_always_leads_to_the_emergency_menu(announced):
    # also when pressing it cut the announcement short, which is how it is pressed
    assert refusal_end(announced=announced, emergency_key="9") is RefusalEnd.EMERGENCY_MENU


def test_an_announcement_that_did_not_play_to_its_end_sends_the_caller_to_an_agent():
    assert refusal_end(announced=False, emergency_key=None) is RefusalEnd.AGENT


@given(announced=st.booleans(), key=st.one_of(st.none(), st.sampled_from(list("0123456789*#"))))
def test_hanging_up_needs_the_whole_announcement_and_no_key(announced, key):
    ends_in_hang_up = refusal_end(announced=announced, emergency_key=key) is RefusalEnd.HANG_UP
    assert ends_in_hang_up == (announced and key is None)
