"""The incremental push (gateway/export/pusher.py) against an in-memory platform, on both backends: only final
records past the settle margin, each once; resumed after a restart by a new Store and pusher on the same database
without duplicates or gaps, also when a second gateway commits rows late with older times; the cursor moves only
after an acknowledgement; one pusher at a time on a shared database. The real HTTPS push:
tests/integration/test_export_push.py."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from gateway.export.platform import Batch, PlatformError
from gateway.export.position import PositionError, format_position, parse_position
from gateway.export.pusher import CURSOR_NAME, PlatformPusher, PushSettings
from gateway.export.records import ExportOptions
from gateway.store.database import Store
from gateway.store.rows import to_ts
from tests.export_rows import T0, abandoned_call, answered_call, restriction_decided_and_lifted

FAST = PushSettings(batch_size=3, settle_s=30, open_limit_s=3600, retry_min_s=0.001, retry_max_s=0.004)


class Platform:
    """Stores what it acknowledges by record id, as the provincial platform would; fails the first ``fail`` sends."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts: list[Batch] = []
        self.records: dict[str, dict] = {}
        self.deliveries: list[str] = []        # record ids in the order acknowledged, repeats included
        self.on_send = None

    async def send(self, batch: Batch) -> None:
        self.attempts.append(batch)
        if self.on_send is not None:
            await self.on_send(batch)
        if self.fail:
            self.fail -= 1
            raise PlatformError("HTTP 503: busy")
        body = json.loads(batch.body)
        assert body["batch_id"] == batch.id and body["count"] == len(body["records"]) == batch.count
        for record in body["records"]:
            self.records[record["id"]] = record
            self.deliveries.append(record["id"])

    def ids(self, kind: str = "call") -> list[str]:
        return [i.split(":", 2)[2] for i in self.deliveries if i.split(":")[1] == kind]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def pusher(store: Store, platform: Platform, clock: Clock, *, holder: str = "gw1", settings: PushSettings = FAST,
           options: ExportOptions = ExportOptions()) -> PlatformPusher:
    return PlatformPusher(store, platform, options, settings, clock=clock, holder=holder)


async def test_only_final_records_older_than_the_settle_margin_go_out_each_once(store):
    for n in range(4):
        await answered_call(store, f"c{n}", T0 + timedelta(minutes=n))
    clock, platform = Clock(T0 + timedelta(minutes=3, seconds=80)), Platform()
    # c3 ended at 03:69 (within 30 s of now), so its ticket waits; the call itself started long ago and is final
    assert await pusher(store, platform, clock).push_pending() == 7
    assert platform.ids("call") == ["c0", "c1", "c2", "c3"]
    assert len(platform.ids("ticket")) == 3 and [b.count for b in platform.attempts] == [3, 1, 3]
    clock.now += timedelta(minutes=1)
    assert await pusher(store, platform, clock).push_pending() == 1
    assert len(platform.ids("ticket")) == 4 and len(set(platform.deliveries)) == len(platform.deliveries) == 8


async def test_an_open_call_holds_back_later_ones_until_it_ends_or_passes_the_open_limit(store):
    await answered_call(store, "long", T0, ended=False, saved=False)
    await answered_call(store, "short", T0 + timedelta(minutes=1))
    clock, platform = Clock(T0 + timedelta(minutes=10)), Platform()
    await pusher(store, platform, clock).push_pending()
    assert platform.ids("call") == []           # "short" waits behind "long": the cursor never passes an open call
    await store.update_call("long", ended_at=T0 + timedelta(minutes=11))
    clock.now = T0 + timedelta(minutes=12)
    await pusher(store, platform, clock).push_pending()
    assert platform.ids("call") == ["long", "short"]
    assert platform.records["zhanjiang:call:long"]["final"] is True

    await answered_call(store, "never-ends", T0 + timedelta(minutes=20), ended=False, saved=False)
    await answered_call(store, "after", T0 + timedelta(minutes=21))
    clock.now = T0 + timedelta(minutes=20, seconds=3601)
    await pusher(store, platform, clock).push_pending()
    assert platform.ids("call")[2:] == ["never-ends", "after"]
    assert platform.records["zhanjiang:call:never-ends"]["final"] is False   # went out as it stood


async def test_a_ticket_waits_for_the_agent_to_save_it_but_not_when_nobody_answered(store):
    answered = await answered_call(store, "answered", T0, saved=False)
    unanswered = await abandoned_call(store, "abandoned", T0 + timedelta(minutes=1))
    clock, platform = Clock(T0 + timedelta(minutes=10)), Platform()
    await pusher(store, platform, clock).push_pending()
    assert platform.ids("ticket") == []         # the unanswered one is later than the answered draft
    await store.update_ticket_draft(answered, at=T0 + timedelta(minutes=10), status="saved", summary="已记录")
    clock.now = T0 + timedelta(minutes=11)
    await pusher(store, platform, clock).push_pending()
    assert platform.ids("ticket") == [answered, unanswered]
    assert platform.records[f"zhanjiang:ticket:{answered}"]["summary"] == "已记录"


async def test_the_push_resumes_after_a_restart_without_duplicates_or_gaps_also_with_late_rows(store_location):
    first = await Store.open(store_location)
    for n in range(5):
        await answered_call(first, f"a{n}", T0 + timedelta(seconds=10 * n), talk_s=1)
    clock, platform = Clock(T0 + timedelta(seconds=100)), Platform()
    # gateway B committed this one a moment ago; it started after what the cursor will stand on
    await answered_call(first, "b-early", T0 + timedelta(seconds=85), talk_s=1)
    assert await pusher(first, platform, clock).push_pending() == 10       # a0..a4 with tickets; b-early waits
    await first.close()

    # the restart: a new Store and a new pusher on the same database; meanwhile gateway B (a second Store) commits
    # a call whose start is older than b-early's (out of time order) but within the settle margin of the last push
    gateway_b = await Store.open(store_location)
    await answered_call(gateway_b, "b-late", T0 + timedelta(seconds=75), talk_s=1)
    await gateway_b.close()
    second = await Store.open(store_location)
    try:
        for n in range(5, 8):
            await answered_call(second, f"a{n}", T0 + timedelta(seconds=100 + 10 * n), talk_s=1)
        clock.now = T0 + timedelta(seconds=300)
        assert await pusher(second, platform, clock, holder="gw1-restarted").push_pending() == 10
        calls = platform.ids("call")
        assert calls == ["a0", "a1", "a2", "a3", "a4", "b-late", "b-early", "a5", "a6", "a7"]
        assert len(platform.deliveries) == len(set(platform.deliveries)) == 20
        assert await pusher(second, platform, clock).push_pending() == 0
        position = parse_position(await second.export_cursor(CURSOR_NAME), ("call", "ticket"))
        assert position["call"] == (to_ts(T0 + timedelta(seconds=170)), "a7")
    finally:
        await second.close()


async def test_a_failed_batch_is_sent_again_unchanged_and_the_cursor_waits_for_the_acknowledgement(store):
    await answered_call(store, "c1", T0)
    clock, platform = Clock(T0 + timedelta(minutes=5)), Platform(fail=2)
    seen: list[str | None] = []

    async def before_send(batch: Batch) -> None:
        seen.append(await store.export_cursor(CURSOR_NAME))

    platform.on_send = before_send
    assert await pusher(store, platform, clock).push_pending() == 2
    call_batches = [b for b in platform.attempts if b.record_type == "call"]
    assert len(call_batches) == 3 and len({(b.id, b.body) for b in call_batches}) == 1   # the same bytes, same key
    assert seen[:3] == [None, None, None]       # nothing acknowledged, nothing moved
    assert platform.deliveries == ["zhanjiang:call:c1", f"zhanjiang:ticket:{platform.ids('ticket')[0]}"]


async def test_the_same_records_make_the_same_batch_id_after_a_restart(store):
    await answered_call(store, "c1", T0)
    clock = Clock(T0 + timedelta(minutes=5))
    once, again = Platform(), Platform()
    await pusher(store, once, clock).push_pending()
    await store.move_export_cursor(CURSOR_NAME, expected=await store.export_cursor(CURSOR_NAME), position="{}",
                                   at=clock())
    await pusher(store, again, clock).push_pending()
    assert [b.id for b in once.attempts] == [b.id for b in again.attempts]


async def test_the_restriction_audit_is_pushed_only_when_configured(store):
    await restriction_decided_and_lifted(store, T0)
    await answered_call(store, "c1", T0)
    clock = Clock(T0 + timedelta(hours=2))
    without, with_audit = Platform(), Platform()
    await pusher(store, without, clock).push_pending()
    assert {i.split(":")[1] for i in without.deliveries} == {"call", "ticket"}
    await pusher(store, with_audit, clock, options=ExportOptions(include_restriction_audit=True)).push_pending()
    assert with_audit.ids("restriction_audit") and len(with_audit.ids("restriction_audit")) == 2
    assert with_audit.records[with_audit.deliveries[-1]]["number"] == "137****2222"


async def test_full_numbers_go_to_the_platform_only_when_configured(store):
    await answered_call(store, "c1", T0)
    clock, masked, full = Clock(T0 + timedelta(minutes=5)), Platform(), Platform()
    await pusher(store, masked, clock).push_pending()
    await store.move_export_cursor(CURSOR_NAME, expected=await store.export_cursor(CURSOR_NAME), position="{}",
                                   at=clock())
    await pusher(store, full, clock, options=ExportOptions(full_numbers=True)).push_pending()
    assert masked.records["zhanjiang:call:c1"]["caller_number"] == "138****8000"
    assert full.records["zhanjiang:call:c1"]["caller_number"] == "+8613800138000"


async def test_the_cursor_is_moved_by_compare_and_set_and_never_goes_back(store):
    at = T0
    assert await store.move_export_cursor("t", expected=None, position="A", at=at)
    assert not await store.move_export_cursor("t", expected=None, position="B", at=at)    # exists already
    assert await store.move_export_cursor("t", expected="A", position="B", at=at)
    assert not await store.move_export_cursor("t", expected="A", position="C", at=at)     # moved by another
    assert await store.export_cursor("t") == "B"


async def test_one_lease_holder_at_a_time_and_another_takes_over_once_it_runs_out(store):
    hold = store.hold_export_lease
    assert await hold("p", holder="gw1", now=T0, until=T0 + timedelta(seconds=90))
    assert not await hold("p", holder="gw2", now=T0 + timedelta(seconds=60), until=T0 + timedelta(seconds=150))
    assert await hold("p", holder="gw1", now=T0 + timedelta(seconds=60), until=T0 + timedelta(seconds=150))
    assert await hold("p", holder="gw2", now=T0 + timedelta(seconds=151), until=T0 + timedelta(seconds=240))
    assert not await hold("p", holder="gw1", now=T0 + timedelta(seconds=152), until=T0 + timedelta(seconds=240))


async def test_two_gateways_pushing_at_once_on_one_database_push_each_record_once(store_location):
    a, b = await Store.open(store_location), await Store.open(store_location)
    try:
        for n in range(7):
            await answered_call(a if n % 2 else b, f"c{n}", T0 + timedelta(seconds=n), talk_s=1)
        clock, platform = Clock(T0 + timedelta(minutes=5)), Platform()
        first, second = pusher(a, platform, clock, holder="gw-a"), pusher(b, platform, clock, holder="gw-b")
        assert first._shared is second._shared is a.backend.shared      # PostgreSQL: shared; SQLite: one gateway
        first._shared = second._shared = True                           # the lease's SQL on both backends
        sent = await asyncio.gather(first.push_pending(), second.push_pending())
        assert sorted(sent) == [0, 14] and len(platform.deliveries) == len(set(platform.deliveries)) == 14

        # without the lease, two pushers racing cost at most a batch sent twice (harmless: the same ids), never a
        # gap: the cursor moves by compare-and-set, so the loser stops and the winner goes on
        for n in range(7, 14):
            await answered_call(a, f"c{n}", T0 + timedelta(seconds=n), talk_s=1)
        first._shared = second._shared = False
        platform.deliveries.clear()
        await asyncio.gather(first.push_pending(), second.push_pending())
        await first.push_pending()
        repeats = len(platform.deliveries) - len(set(platform.deliveries))
        assert set(platform.ids("call")) == {f"c{n}" for n in range(7, 14)} and len(set(platform.ids("ticket"))) == 7
        assert repeats <= FAST.batch_size
    finally:
        await a.close()
        await b.close()


async def test_a_gateway_that_lost_the_lease_while_retrying_leaves_the_batch_to_the_new_holder(store_location):
    a, b = await Store.open(store_location), await Store.open(store_location)
    try:
        await answered_call(a, "c1", T0)
        clock, failing, working = Clock(T0 + timedelta(minutes=5)), Platform(fail=10**6), Platform()
        stuck = pusher(a, failing, clock, holder="gw-a")
        stuck._shared = True
        taker = pusher(b, working, clock, holder="gw-b")
        taker._shared = True

        async def lease_runs_out(batch: Batch) -> None:
            if len(failing.attempts) == 3:      # gw-a has been failing past its lease; gw-b takes over and pushes
                clock.now += timedelta(seconds=FAST.lease_s + 1)
                assert await taker.push_pending() == 2

        failing.on_send = lease_runs_out
        assert await stuck.push_pending() == 0
        assert working.ids("call") == ["c1"] and failing.deliveries == []
    finally:
        await a.close()
        await b.close()


async def test_a_bare_time_as_the_position_starts_the_push_there(store):
    await answered_call(store, "old", T0)
    await answered_call(store, "new", T0 + timedelta(hours=1))
    await store.move_export_cursor(CURSOR_NAME, expected=None, position=to_ts(T0 + timedelta(minutes=30)), at=T0)
    platform = Platform()
    await pusher(store, platform, Clock(T0 + timedelta(hours=2))).push_pending()
    assert platform.ids("call") == ["new"]


def test_a_position_is_read_back_as_written_and_a_foreign_one_is_refused():
    position = {"call": ("2026-11-30T01:00:00.000000+00:00", "c1"), "restriction_audit": ("2026-11-30T01:00:00"
                                                                                           ".000000+00:00", 7)}
    assert parse_position(format_position(position), ("call",)) == position
    assert parse_position("2026-12-01T08:00:00+08:00", ("call", "ticket")) == {
        "call": ("2026-12-01T00:00:00.000000+00:00", None), "ticket": ("2026-12-01T00:00:00.000000+00:00", None)}
    for bad in ("yesterday", "[1, 2]", '{"call": "x"}', "{", "2026-12-01T08:00:00"):
        with pytest.raises(PositionError):
            parse_position(bad, ("call",))
