"""The store's side of ticket access: public ids, assignments, the screen-pop log and the access audit."""

import re
from datetime import datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.schema import sqlite_migrations as migrations
from gateway.basics.write_health import STORE_ERRORS
from gateway.store.database import Store

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)
STAMP = "2026-03-02T01:30:00.000000+00:00"



async def a_ticket(store, call_id="c1"):
    await store.open_call(call_id=call_id, number="+8613800138000", channel="PJSIP/trunk-1", started_at=NOW)
    return await store.create_ticket_draft(call_id=call_id, request_type="help", created_at=NOW)


async def test_every_draft_gets_a_random_public_id_beside_its_sequential_number(store):
    first, second = await a_ticket(store, "c1"), await a_ticket(store, "c2")
    assert (first, second) == ("2026030200001", "2026030200002")
    drafts = [await store.get_ticket_draft(t) for t in (first, second)]
    publics = [d["public_id"] for d in drafts]
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in publics) and publics[0] != publics[1]
    assert (await store.ticket_by_public_id(publics[1]))["ticket_id"] == second
    for wrong in (first, publics[0].upper(), publics[0][:-1], "", "x" * 32, "../" + publics[0]):
        assert await store.ticket_by_public_id(wrong) is None


async def test_a_draft_without_public_id_is_refused_by_the_schema(store):
    with pytest.raises(STORE_ERRORS, match="public_id"):
        async with store._write() as db:
            await db.execute("INSERT INTO ticket_drafts (ticket_id, created_at, updated_at) VALUES ('1', 'x', 'x')")


async def test_drafts_of_an_older_store_get_public_ids_and_their_agents_keep_their_tickets(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    monkeypatch.setattr(migrations, "MIGRATIONS", [m for m in migrations.MIGRATIONS if m[0] < 6])
    old = await Store.open(path)
    async with old._write() as db:
        for n, agent in ((1, "agent1"), (2, None)):
            await db.execute("INSERT INTO ticket_drafts (ticket_id, call_id, agent, created_at, updated_at)"
                             " VALUES (?, ?, ?, ?, ?)", (f"2026030200{n:03d}", f"c{n}", agent, STAMP, STAMP))
    await old.close()
    monkeypatch.undo()
    async with await Store.open(path) as store:
        drafts = [await store.get_ticket_draft(f"2026030200{n:03d}") for n in (1, 2)]
        assert all(re.fullmatch(r"[0-9a-f]{32}", d["public_id"]) for d in drafts)
        assert await store.ticket_assignees("2026030200001") == {"agent1"}
        assert await store.ticket_assignees("2026030200002") == frozenset()


async def test_answering_makes_the_ticket_the_agents_and_keeps_every_answerer_on_it(store):
    ticket = await a_ticket(store)
    await store.record_screenpop(message_id="m1", agent="agent1", call_id="c1", ticket_id=ticket, reason=None,
                                 at=NOW)
    await store.record_screenpop(message_id="m2", agent="agent2", call_id="c1", ticket_id=ticket,
                                 reason="linkage_no_answer", at=NOW + timedelta(minutes=1))
    assert (await store.get_ticket_draft(ticket))["agent"] == "agent2"
    assert await store.ticket_assignees(ticket) == {"agent1", "agent2"}
    latest = await store.latest_screenpop("agent2")
    assert {k: latest[k] for k in ("message_id", "call_id", "ticket_id", "reason")} == {
        "message_id": "m2", "call_id": "c1", "ticket_id": ticket, "reason": "linkage_no_answer"}
    assert latest["created_at"] == NOW + timedelta(minutes=1)
    assert (await store.latest_screenpop("agent1"))["message_id"] == "m1"
    assert await store.latest_screenpop("agent3") is None


async def test_a_supervisors_assignment_names_the_supervisor(store):
    ticket = await a_ticket(store)
    await store.assign_ticket(ticket, agent="agent3", source="supervisor", assigned_by="lead1", at=NOW)
    await store.assign_ticket(ticket, agent="agent4", source="return_call", at=NOW)
    assert await store.ticket_assignees(ticket) == {"agent3", "agent4"}
    with pytest.raises(ValueError):
        await store.assign_ticket(ticket, agent="agent5", source="supervisor", at=NOW)
    with pytest.raises(ValueError):
        await store.assign_ticket(ticket, agent="agent5", source="friend", at=NOW)
    with pytest.raises(LookupError):
        await store.assign_ticket("2026030299999", agent="agent5", source="return_call", at=NOW)


async def test_the_access_audit_is_append_only_and_holds_no_caller_number(store):
    ticket = await a_ticket(store)
    await store.audit_ticket_access(viewer="lead1", role="supervisor", action="read", ticket_id=ticket,
                                    basis="supervisor", at=NOW)
    await store.audit_ticket_access(viewer="agent2", role="agent", action="save", ticket_id=ticket, basis="denied",
                                    at=NOW)
    rows = await store.ticket_access_audit(ticket)
    assert [(r["viewer"], r["role"], r["action"], r["ticket_id"], r["basis"], r["at"]) for r in rows] == [
        ("lead1", "supervisor", "read", ticket, "supervisor", NOW), ("agent2", "agent", "save", ticket, "denied", NOW)]
    assert "13800138000" not in repr(rows)
    for statement in ("UPDATE ticket_access_audit SET viewer = 'x'", "DELETE FROM ticket_access_audit"):
        with pytest.raises(STORE_ERRORS, match="append-only"):
            async with store._write() as db:
                await db.execute(statement)
    with pytest.raises(ValueError):
        await store.audit_ticket_access(viewer="x", role="admin", action="read", ticket_id=ticket, basis="denied",
                                        at=NOW)
