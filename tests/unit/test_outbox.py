"""The outbox's producer side: the row is committed before anyone is woken, and a broken listener loses nothing."""

from datetime import datetime


from gateway.store.outbox import Outbox
from gateway.contract import new_message_id
from gateway.basics.clock import SHANGHAI

NOW = datetime(2026, 11, 27, 10, tzinfo=SHANGHAI)



async def test_listeners_are_woken_after_the_row_is_committed(store):
    outbox = Outbox(store, clock=lambda: NOW)
    seen = []

    def wake():
        seen.append("woken")

    outbox.on_added(wake)
    seq = await outbox.put("hotline/agents/agent1/screenpop", {"id": "m1"}, message_id="m1")
    assert seen == ["woken"]
    [row] = await store.outbox_pending()
    assert (row["seq"], row["message_id"], row["payload"], row["created_at"]) == (seq, "m1", {"id": "m1"}, NOW)


async def test_a_failing_listener_neither_raises_nor_loses_the_row(store, caplog):
    outbox = Outbox(store, clock=lambda: NOW)
    woken = []

    def broken():
        raise RuntimeError("publisher gone")

    outbox.on_added(broken)
    outbox.on_added(lambda: woken.append(True))
    await outbox.put("t", {"id": "m1"}, message_id="m1")
    assert woken == [True] and len(await store.outbox_pending()) == 1
    assert "event=outbox_listener_failed" in caplog.text


async def test_rows_come_out_in_the_order_they_were_put(store):
    outbox = Outbox(store, clock=lambda: NOW)
    ids = [new_message_id() for _ in range(10)]
    for message_id in ids:
        await outbox.put("t", {"id": message_id}, message_id=message_id)
    assert [row["message_id"] for row in await store.outbox_pending()] == ids


def test_message_ids_are_unique():
    assert len({new_message_id() for _ in range(1000)}) == 1000
