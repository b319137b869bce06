"""Which incident announcement is in force (art. 18), and what an operator may enter: pure decisions."""
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from gateway.announcement import (
    MAX_TEXT_CHARS, Announcement, check_text, check_window, in_force, parse_time, prompt_name,
)
from gateway.basics.clock import SHANGHAI

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


def announcement(id, start_h=0, end_h=10, removed_h=None, text="停水通知"):
    return Announcement(id=id, text=text, prompt=f"announce_{id}", starts_at=T0 + timedelta(hours=start_h),
                        until=T0 + timedelta(hours=end_h), created_by="lead1", created_at=T0,
                        removed_at=None if removed_h is None else T0 + timedelta(hours=removed_h),
                        removed_by=None if removed_h is None else "lead1")


def test_none_is_in_force_without_announcements():
    assert in_force([], T0) is None


def test_in_force_from_its_start_inclusive_to_its_until_exclusive():
    a = announcement(1, start_h=1, end_h=2)
    assert in_force([a], T0 + timedelta(hours=1) - timedelta(microseconds=1)) is None
    assert in_force([a], T0 + timedelta(hours=1)) == a
    assert in_force([a], T0 + timedelta(hours=2) - timedelta(microseconds=1)) == a
    assert in_force([a], T0 + timedelta(hours=2)) is None


def test_a_removed_announcement_ends_at_its_removal():
    a = announcement(1, end_h=10, removed_h=3)
    assert a.ends_at == T0 + timedelta(hours=3)
    assert in_force([a], T0 + timedelta(hours=3) - timedelta(microseconds=1)) == a
    assert in_force([a], T0 + timedelta(hours=3)) is None


def test_a_removal_after_the_until_changes_nothing():
    a = announcement(1, end_h=2, removed_h=5)
    assert a.ends_at == a.until


def test_of_overlapping_announcements_the_latest_added_wins():
    first, second = announcement(1, start_h=0, end_h=10), announcement(2, start_h=2, end_h=4)
    assert in_force([first, second], T0 + timedelta(hours=1)) == first
    assert in_force([second, first], T0 + timedelta(hours=3)) == second   # order of the list does not matter
    assert in_force([first, second], T0 + timedelta(hours=4)) == first     # the first again once the second ends


def test_an_earlier_added_announcement_starting_later_does_not_win_over_a_later_added_one():
    later_added, earlier_added = announcement(5, start_h=0, end_h=10), announcement(3, start_h=2, end_h=10)
    assert in_force([earlier_added, later_added], T0 + timedelta(hours=3)) == later_added


def test_removing_the_latest_brings_back_the_one_before():
    first, second = announcement(1, end_h=10), announcement(2, end_h=10, removed_h=5)
    assert in_force([first, second], T0 + timedelta(hours=4)) == second
    assert in_force([first, second], T0 + timedelta(hours=5)) == first


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 20), st.one_of(st.none(), st.integers(0, 30))),
                max_size=8), st.integers(-2, 32))
def test_in_force_is_the_highest_id_among_those_whose_window_holds_the_moment(specs, hour):
    listed = [announcement(i + 1, start, start + length, removed) for i, (start, length, removed) in enumerate(specs)]
    at = T0 + timedelta(hours=hour)
    holding = [a for a in listed if a.starts_at <= at < min(a.until, a.removed_at or a.until)]
    found = in_force(listed, at)
    assert found == (max(holding, key=lambda a: a.id) if holding else None)


def test_in_force_wants_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        in_force([], datetime(2026, 12, 1, 9))


def test_text_is_spoken_with_one_space_for_each_run_of_whitespace():
    assert check_text("  赤坎区停水，\n 预计今晚恢复。 ") == "赤坎区停水， 预计今晚恢复。"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   \n", "empty"), ("停" * (MAX_TEXT_CHARS + 1), f"at most {MAX_TEXT_CHARS}"),
    ("-v en 停水", "start with '-'"), ("停水\x07通知", "control"), (None, "must be text")])
def test_bad_text_is_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        check_text(text)


def test_text_of_the_longest_length_is_taken():
    assert check_text("停" * MAX_TEXT_CHARS) == "停" * MAX_TEXT_CHARS


def test_window_must_end_in_the_future_and_after_its_start():
    check_window(T0, T0 + timedelta(hours=1), T0)
    check_window(T0 - timedelta(hours=1), T0 + timedelta(seconds=1), T0)   # begun already: in force at once
    with pytest.raises(ValueError, match="not in the future"):
        check_window(T0 - timedelta(hours=2), T0, T0)
    with pytest.raises(ValueError, match="not after from"):
        check_window(T0 + timedelta(hours=3), T0 + timedelta(hours=2), T0)
    with pytest.raises(ValueError, match="at most 30 days"):
        check_window(T0, T0 + timedelta(days=30, seconds=1), T0)


def test_parse_time_reads_civil_time_unless_an_offset_is_given():
    assert parse_time("2026-12-01T18:00", SHANGHAI, T0) == datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI)
    assert parse_time("2026-12-01 18:00:30", SHANGHAI, T0) == datetime(2026, 12, 1, 18, 0, 30, tzinfo=SHANGHAI)
    assert parse_time("2026-12-01T10:00Z", SHANGHAI, T0) == datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI)
    assert parse_time("2026-12-01T18:00+08:00", SHANGHAI, T0) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_time("2026-12-01T18:00:00+0100", SHANGHAI, T0) == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def test_parse_time_reads_minutes_hours_and_days_from_now():
    assert parse_time("+90m", SHANGHAI, T0) == T0 + timedelta(minutes=90)
    assert parse_time("+4h", SHANGHAI, T0) == T0 + timedelta(hours=4)
    assert parse_time(" +2d ", SHANGHAI, T0) == T0 + timedelta(days=2)


@pytest.mark.parametrize("text", ["tonight", "18:00", "2026-12-01", "2026-13-01T18:00", "2026-12-01T25:00",
                                  "+4", "+4w", "-4h", "", "2026-12-01T18:00 +08:00"])
def test_bad_times_are_refused_with_the_forms_accepted(text):
    with pytest.raises(ValueError, match="time"):
        parse_time(text, SHANGHAI, T0)


def test_the_prompt_name_follows_the_text_and_voice_only():
    name = prompt_name("赤坎区停水", "cmn-latn-pinyin")
    assert name == prompt_name("赤坎区停水", "cmn-latn-pinyin")
    assert name.startswith("announce_") and len(name) == len("announce_") + 16
    assert name != prompt_name("赤坎区停电", "cmn-latn-pinyin")
    assert name != prompt_name("赤坎区停水", "cmn")
