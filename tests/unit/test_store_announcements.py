"""Incident announcements in the store (art. 18), on both backends: added, listed, removed, the call that heard
one, and the figure of the calls an announcement answered at the edges of its range."""
from datetime import date, datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
DAY = (datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2026, 12, 2, tzinfo=SHANGHAI))


async def add(store, text="赤坎区停水通知", *, start=T0, hours=10, at=T0, by="lead1"):
    return await store.add_announcement(text=text, prompt=f"announce_{abs(hash(text)) % 10**16:016d}",
                                        starts_at=start, until=start + timedelta(hours=hours), created_by=by, at=at)


async def test_an_added_announcement_comes_back_as_written(store):
    added = await add(store, "  赤坎区 停水\n通知 ", start=T0 + timedelta(hours=1))
    assert added.text == "赤坎区 停水 通知"
    assert (added.starts_at, added.until, added.created_by, added.created_at) == (
        T0 + timedelta(hours=1), T0 + timedelta(hours=11), "lead1", T0)
    assert added.removed_at is None and added.removed_by is None
    assert await store.get_announcement(added.id) == added
    assert await store.get_announcement(added.id + 99) is None


@pytest.mark.parametrize("kwargs, reason", [
    ({"text": ""}, "empty"),
    ({"text": "停" * 151}, "at most 150"),
    ({"until": T0 - timedelta(minutes=1)}, "not in the future"),
    ({"starts_at": T0 + timedelta(hours=2), "until": T0 + timedelta(hours=1)}, "not after from"),
    ({"created_by": " "}, "created_by"),
])
async def test_a_bad_announcement_is_refused_and_nothing_is_written(store, kwargs, reason):
    values = dict(text="停水", prompt="announce_x", starts_at=T0, until=T0 + timedelta(hours=1), created_by="lead1",
                  at=T0) | kwargs
    with pytest.raises(ValueError, match=reason):
        await store.add_announcement(**values)
    assert await store.list_announcements(T0, include_ended=True) == []


async def test_the_list_holds_those_not_over_newest_first(store):
    ended = await add(store, "昨日停电", start=T0 - timedelta(days=1), hours=2, at=T0 - timedelta(days=1))
    now_on = await add(store, "停水")
    later = await add(store, "明日停气", start=T0 + timedelta(days=1))
    removed = await add(store, "错误通知")
    await store.remove_announcement(removed.id, by="lead2", at=T0 + timedelta(minutes=5))
    at = T0 + timedelta(minutes=10)
    assert [a.id for a in await store.list_announcements(at)] == [later.id, now_on.id]
    assert [a.id for a in await store.list_announcements(at, include_ended=True)] == [
        removed.id, later.id, now_on.id, ended.id]


async def test_removing_stops_it_once_and_says_who(store):
    a = await add(store)
    removed = await store.remove_announcement(a.id, by="lead2", at=T0 + timedelta(hours=1))
    assert (removed.id, removed.removed_at, removed.removed_by) == (a.id, T0 + timedelta(hours=1), "lead2")
    assert removed.ends_at == T0 + timedelta(hours=1)
    assert await store.remove_announcement(a.id, by="lead3", at=T0 + timedelta(hours=2)) is None
    assert (await store.get_announcement(a.id)).removed_by == "lead2"
    assert await store.remove_announcement(a.id + 5, by="lead2", at=T0) is None


async def test_ids_grow_so_the_latest_added_is_the_highest(store):
    ids = [(await add(store, f"通知{n}")).id for n in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def call(store, call_id, *, at, heard=None, outcome=None, queued=False):
    await store.enter_call(call_id=call_id, number="+8613800138000", channel="PJSIP/t", at=at)
    if heard is not None:
        await store.mark_call_announcement(call_id, heard)
    if queued:
        await store.queue_call(call_id, ivr_path=["welcome", "2"], request_type="help", emergency=None, priority=0,
                               ticket_query=None, ticket_type="help", due=date(2026, 12, 3), at=at)
        await store.update_call(call_id, queued_at=at + timedelta(seconds=20))
    if outcome is not None:
        await store.update_call(call_id, outcome=outcome, ended_at=at + timedelta(seconds=30))


async def test_the_call_remembers_the_announcement_it_heard(store):
    a = await add(store)
    await call(store, "c1", at=T0, heard=a.id)
    rows = await store._db.execute_fetchall("SELECT announcement_id FROM calls WHERE call_id = ?", ("c1",))
    assert rows[0]["announcement_id"] == a.id


async def test_answered_counts_callers_who_heard_it_and_hung_up_in_the_menu(store):
    a = await add(store)
    await call(store, "hung-up-after", at=T0 + timedelta(minutes=1), heard=a.id, outcome="abandoned")
    await call(store, "hung-up-during", at=T0 + timedelta(minutes=2), heard=a.id, outcome="abandoned")
    await call(store, "to-agent", at=T0 + timedelta(minutes=3), heard=a.id, queued=True, outcome="answered")
    await call(store, "left-the-queue", at=T0 + timedelta(minutes=4), heard=a.id, queued=True, outcome="abandoned")
    await call(store, "still-in-menu", at=T0 + timedelta(minutes=5), heard=a.id)
    await call(store, "keyed-during-welcome", at=T0 + timedelta(minutes=6), outcome="abandoned")
    assert await store.announcement_figures(*DAY) == [{"id": a.id, "text": a.text, "heard": 5, "answered": 2}]


async def test_figures_count_calls_by_their_start_since_inclusive_until_exclusive(store):
    a = await add(store, start=DAY[0] - timedelta(hours=2), hours=40, at=DAY[0] - timedelta(hours=2))
    await call(store, "before", at=DAY[0] - timedelta(microseconds=1), heard=a.id, outcome="abandoned")
    await call(store, "first", at=DAY[0], heard=a.id, outcome="abandoned")
    await call(store, "last", at=DAY[1] - timedelta(microseconds=1), heard=a.id, outcome="abandoned")
    await call(store, "after", at=DAY[1], heard=a.id, outcome="abandoned")
    assert await store.announcement_figures(*DAY) == [{"id": a.id, "text": a.text, "heard": 2, "answered": 2}]


async def test_figures_list_each_announcement_in_force_in_the_range_even_unheard_oldest_first(store):
    heard = await add(store, "停水")
    unheard = await add(store, "停电", start=T0 + timedelta(hours=1))
    await call(store, "c1", at=T0 + timedelta(minutes=1), heard=heard.id, outcome="abandoned")
    assert await store.announcement_figures(*DAY) == [
        {"id": heard.id, "text": "停水", "heard": 1, "answered": 1},
        {"id": unheard.id, "text": "停电", "heard": 0, "answered": 0}]


async def test_figures_leave_out_announcements_outside_the_range_and_those_removed_before_it(store):
    yesterday = await add(store, "昨日", start=DAY[0] - timedelta(hours=5), hours=5, at=DAY[0] - timedelta(hours=5))
    tomorrow = await add(store, "明日", start=DAY[1], hours=5)
    gone = await add(store, "撤回", start=DAY[0] - timedelta(hours=5), hours=30, at=DAY[0] - timedelta(hours=5))
    await store.remove_announcement(gone.id, by="lead1", at=DAY[0])
    never = await add(store, "未播", start=T0 + timedelta(hours=1))
    await store.remove_announcement(never.id, by="lead1", at=T0)      # removed before it began: never in force
    assert await store.announcement_figures(*DAY) == []
    assert [f["id"] for f in await store.announcement_figures(DAY[0] - timedelta(days=1), DAY[0])] == [
        yesterday.id, gone.id]
    assert [f["id"] for f in await store.announcement_figures(DAY[1], DAY[1] + timedelta(days=1))] == [tomorrow.id]


async def test_figures_count_a_call_of_the_range_that_heard_one_removed_just_before_it(store):
    # removed at midnight; a gateway's list is a few seconds old, so a caller at 00:00:02 still heard it
    a = await add(store, start=DAY[0] - timedelta(hours=1), hours=5, at=DAY[0] - timedelta(hours=1))
    await store.remove_announcement(a.id, by="lead1", at=DAY[0])
    await call(store, "cached", at=DAY[0] + timedelta(seconds=2), heard=a.id, outcome="abandoned")
    assert await store.announcement_figures(*DAY) == [{"id": a.id, "text": a.text, "heard": 1, "answered": 1}]
