"""Fault drill: the gateway is killed (SIGKILL) while restriction writes arrive from the admin CLI (other processes
writing the same SQLite file) and from the agent console (the gateway's own connection). Every acknowledged write
is in the store afterwards with its audit entry, nothing is half-written and the file passes SQLite's checks."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import pytest

from gateway.basics.clock import SHANGHAI
from gateway.console.sessions import SESSION_COOKIE
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import is_alive, wait_until
from tests.integration.conftest import STORE_BACKEND

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(STORE_BACKEND == "postgres",
                                 reason="reads SQLite's file after the kill;"
                                        " on PostgreSQL every commit is flushed by the server")]

# 1,000 writes in all. A CLI write is a whole Python process (~0.5 s of CPU here), so most go through the console.
CLI_WRITES = 100
CONSOLE_WRITES = 900
CLI_PARALLEL = 6
CONSOLE_PARALLEL = 16
KILL_AFTER_CONSOLE_ACKS = CONSOLE_WRITES // 2
CLI_OPERATOR = "drill-cli"
CONSOLE_REASON = "drill: insults staff"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Tally:
    cli_started: int = 0
    cli_acked: dict[int, str] = field(default_factory=dict)        # restriction id -> number
    cli_refused: list[str] = field(default_factory=list)           # stderr tails of CLI runs that exited non-zero
    console_attempted: int = 0
    console_acked: list[int] = field(default_factory=list)         # pending request ids answered 201
    console_in_flight: int = 0
    console_in_flight_at_kill: int = 0
    cli_in_flight_at_kill: int = 0
    killed_after: tuple[int, int] = (0, 0)                         # (CLI, console) acknowledged at the kill


def drill_number(i: int) -> str:
    return f"1390{i:07d}"


async def cli_add(sandbox, number: str, tally: Tally) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli.main", "--config", str(sandbox.config_path), "restrict", "add", number,
        "--reason", "drill: threatened staff", "--operator", CLI_OPERATOR, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
    out, err = await proc.communicate()
    if proc.returncode == 0:
        restriction = json.loads(out)
        tally.cli_acked[restriction["id"]] = restriction["number"]
    else:
        tally.cli_refused.append(f"exit {proc.returncode}: {err.decode(errors='replace')[-300:]}")


async def console_request(http: aiohttp.ClientSession, url: str, cookie: str, i: int, tally: Tally) -> None:
    tally.console_attempted += 1
    tally.console_in_flight += 1
    try:
        async with http.post(url, json={"reason": f"{CONSOLE_REASON} #{i}"},
                             headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as response:
            if 200 <= response.status < 300:
                tally.console_acked.append(int((await response.json())["pending_id"]))
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        pass   # not acknowledged: the gateway died before answering
    finally:
        tally.console_in_flight -= 1


async def write_and_kill(sandbox, ticket_id: str, agent: str) -> Tally:
    """All the writes at once (the console's once the first CLI writes are in), SIGKILL to the gateway halfway
    through the console's, while CLI processes and console requests are in flight."""
    cfg, gateway_pid = sandbox.config, sandbox.stack.gateway.pid()
    base = f"http://{cfg.console.host}:{cfg.console.port}"
    tally = Tally()
    cli_under_way = asyncio.Event()
    killed = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.post(f"{base}/api/login",
                             json={"agent": agent, "password": mqtt_password(cfg.state_dir, agent)}) as response:
            assert response.status == 200, await response.text()
            cookie = response.cookies[SESSION_COOKIE].value

        cli_slots = asyncio.Semaphore(CLI_PARALLEL)

        async def one_cli(i: int) -> None:
            async with cli_slots:
                tally.cli_started += 1
                await cli_add(sandbox, drill_number(i), tally)
                if len(tally.cli_acked) >= CLI_PARALLEL:
                    cli_under_way.set()

        console_slots = asyncio.Semaphore(CONSOLE_PARALLEL)
        url = f"{base}/api/tickets/{ticket_id}/abusive"

        async def one_console(i: int) -> None:
            await cli_under_way.wait()
            async with console_slots:
                await console_request(http, url, cookie, i, tally)
            if len(tally.console_acked) >= KILL_AFTER_CONSOLE_ACKS and not killed.is_set():
                killed.set()
                os.kill(gateway_pid, signal.SIGKILL)
                tally.console_in_flight_at_kill = tally.console_in_flight
                tally.killed_after = (len(tally.cli_acked), len(tally.console_acked))
                tally.cli_in_flight_at_kill = tally.cli_started - len(tally.cli_acked) - len(tally.cli_refused)

        await asyncio.gather(*(one_console(i) for i in range(CONSOLE_WRITES)),
                             *(one_cli(i) for i in range(CLI_WRITES)))
    assert killed.is_set(), "the gateway was never killed"
    return tally


def read_back(db_path) -> dict:
    """A fresh connection after the kill: SQLite's own checks and what the drill's writes left."""
    db = sqlite3.connect(db_path)
    try:
        return {
            "integrity": db.execute("PRAGMA integrity_check").fetchall(),
            "foreign_keys": db.execute("PRAGMA foreign_key_check").fetchall(),
            "restrictions": dict(db.execute("SELECT id, number FROM restrictions WHERE operator = ?",
                                            (CLI_OPERATOR,)).fetchall()),
            "audited": {row[0] for row in db.execute(
                "SELECT restriction_id FROM restriction_audit WHERE action = 'add' AND operator = ?",
                (CLI_OPERATOR,))},
            "audit_without_restriction": db.execute(
                "SELECT COUNT(*) FROM restriction_audit AS a WHERE NOT EXISTS"
                " (SELECT 1 FROM restrictions AS r WHERE r.id = a.restriction_id)").fetchone()[0],
            "pending": {row[0]: row[1:] for row in db.execute(
                "SELECT id, number, requested_by, status, restriction_id FROM pending_restrictions"
                " WHERE reason LIKE ?", (f"{CONSOLE_REASON} #%",))},
        }
    finally:
        db.close()


async def tidy_up(store, restriction_ids: dict[int, str], pending_ids) -> None:
    """Lift what the drill restricted and reject what it requested, so later tests meet no restricted caller."""
    now = datetime.now(SHANGHAI)
    for number in set(restriction_ids.values()):
        await store.lift_restriction(number, operator=CLI_OPERATOR, reason="drill over", at=now)
    for pending_id in pending_ids:
        await store.reject_pending_restriction(pending_id, operator=CLI_OPERATOR, reason="drill over", at=now)


def test_kill_9_during_1000_restriction_writes_keeps_every_acknowledged_one_whole(sandbox, agents):
    stack, cfg = sandbox.stack, sandbox.config
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    call = sandbox.call("13800138120", dtmf="1", hold_s=8)
    assert call["answered_by"] in {"agent1", "agent2"} and call.get("ticket"), call
    gateway_pid = stack.gateway.pid()
    try:
        tally = asyncio.run(write_and_kill(sandbox, call["ticket"]["public_id"], call["answered_by"]))
        assert wait_until(lambda: not is_alive(gateway_pid), 5), "the gateway survived SIGKILL"
        found = read_back(cfg.store.path)
    finally:
        sandbox.hotline("stack", "up")   # later tests find the gateway up
    cli_present = [i for i, number in tally.cli_acked.items() if found["restrictions"].get(i) == number]
    cli_audited = [i for i in cli_present if i in found["audited"]]
    orphans = [i for i in found["restrictions"] if i not in found["audited"]]
    console_present = [i for i in tally.console_acked if i in found["pending"]]
    half_written = [i for i, (number, by, status, restriction_id) in found["pending"].items()
                    if not number or by != call["answered_by"] or status != "pending" or restriction_id is not None]
    print(f"\nrestriction kill drill: writes attempted {CLI_WRITES + tally.console_attempted} "
          f"(CLI {CLI_WRITES}, console {tally.console_attempted}); gateway killed after {tally.killed_after[0]} CLI"
          f" and {tally.killed_after[1]} console acknowledgements, with {tally.cli_in_flight_at_kill} CLI writes and"
          f" {tally.console_in_flight_at_kill} console requests in flight;"
          f" acknowledged CLI {len(tally.cli_acked)} console {len(tally.console_acked)};"
          f" present CLI {len(cli_present)} (with audit {len(cli_audited)}) console {len(console_present)};"
          f" written but unacknowledged console {len(found['pending']) - len(console_present)};"
          f" CLI refused {len(tally.cli_refused)}; orphans {len(orphans)}; half-written {len(half_written)};"
          f" integrity {found['integrity'][0][0]}")
    assert found["integrity"] == [("ok",)]
    assert found["foreign_keys"] == []
    assert len(cli_audited) == len(tally.cli_acked), "an acknowledged CLI restriction is missing or unaudited"
    assert len(console_present) == len(tally.console_acked), "an acknowledged console request is missing"
    assert orphans == [] and found["audit_without_restriction"] == 0 and half_written == []
    assert tally.cli_refused == [], tally.cli_refused[:3]
    assert tally.killed_after[0] > 0 and tally.cli_in_flight_at_kill > 0, "CLI writes did not straddle the kill"
    assert tally.console_attempted > len(tally.console_acked), "no console write met the killed gateway"
    sandbox.store_query(lambda store: tidy_up(store, found["restrictions"], list(found["pending"])))
