"""The push to the provincial platform over real HTTPS (Zhanjiang 12345 rules, art. 19): an aiohttp server with a
self-signed certificate made here by the `openssl` command line, trusted by the gateway through ``export.ca_file``;
the pusher as `hotline run` starts it from the configuration, on both store backends. Batches arrive with the
token and their Idempotency-Key; a 503, a refused connection or a lost acknowledgement is retried and nothing is
lost or duplicated; the cursor moves only once the platform acknowledged; a restarted gateway goes on where the
cursor stands."""
from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from gateway.basics.clock import utc_now
from gateway.basics.loop_lag import LoopLagMonitor
from gateway.config import load_config
from gateway.export.configured import start_configured_push
from gateway.export.pusher import CURSOR_NAME
from gateway.sandbox.broker import free_port
from gateway.store.database import Store
from gateway.store.rows import to_ts
from tests.export_rows import answered_call

HOST = "127.0.0.1"
TOKEN = "province-token-for-the-test"
PATH = "/api/v1/hotline/records"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command line."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "platform.pem", d / "platform.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


class ProvincialPlatform:
    """The platform's endpoint: checks the token, stores each batch's records by id and remembers every request.
    ``answers``: statuses to give before storing (503 ...), or "store-then-500" (the acknowledgement is lost)."""

    def __init__(self, certificate: tuple[Path, Path], port: int) -> None:
        self.port = port
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(*map(str, certificate))
        self.answers: list[int | str] = []
        self.requests: list[dict] = []
        self.records: dict[str, dict] = {}
        self.stored: list[str] = []            # record ids, once per batch the platform stored
        self.keys_stored: set[str] = set()
        self.hold_at: int | None = None         # the request (1, 2, ...) that waits for ``release``
        self.held = asyncio.Event()             # set once that request arrived
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}{PATH}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port, ssl_context=self.tls).start()

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key")
        self.requests.append({"key": key, "auth": request.headers.get("Authorization"), "body": body,
                              "content_type": request.headers.get("Content-Type")})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorised"}, status=401)
        if len(self.requests) == self.hold_at:
            self.held.set()
            await self.release.wait()
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, int) and answer != 200:
            return web.json_response({"error": "busy"}, status=answer, headers={"Retry-After": "1"})
        if key not in self.keys_stored:         # a repeat of a stored batch is acknowledged again, stored once
            self.keys_stored.add(key)
            for record in body["records"]:
                self.records[record["id"]] = record
                self.stored.append(record["id"])
        if answer == "store-then-500":
            return web.json_response({"error": "lost"}, status=500)
        return web.json_response({"batch_id": body["batch_id"], "accepted": len(body["records"])})

    def ids(self, kind: str) -> list[str]:
        return [i.split(":", 2)[2] for i in self.stored if i.split(":")[1] == kind]


@pytest.fixture
async def platform(certificate):
    p = ProvincialPlatform(certificate, free_port())
    await p.start()
    yield p
    await p.stop()


def export_config(tmp_path: Path, url: str, ca_file: Path | None, **extra):
    settings = {"endpoint": url, "interval_s": 1.0, "batch_size": 3, "settle_s": 1.0, "retry_max_s": 1.0,
                "timeout_s": 5.0, **extra}
    if ca_file is not None:
        settings["ca_file"] = str(ca_file)
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    path = tmp_path / "hotline.toml"
    path.write_text(f"[export]\n{lines}\n", encoding="utf-8")
    return load_config(path).export


async def eventually(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate() if asyncio.iscoroutinefunction(predicate) else predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def calls(store: Store, count: int, prefix: str = "c", ago_s: float = 600) -> list[str]:
    """``count`` calls a second apart from ``ago_s`` ago, each ended a second after its answer (final, past the
    settle margin), their tickets saved."""
    start = utc_now() - timedelta(seconds=ago_s)
    return [await answered_call(store, f"{prefix}{n}", start + timedelta(seconds=n), talk_s=1) for n in range(count)]


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("HOTLINE_EXPORT_TOKEN", TOKEN)


async def test_batches_arrive_over_https_with_the_token_and_their_idempotency_key(store, platform, certificate,
                                                                                  tmp_path):
    tickets = await calls(store, 7)
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0]), store, clock=utc_now)
    try:
        assert await eventually(lambda: len(platform.stored) == 14)
    finally:
        await pusher.close()
    assert platform.ids("call") == [f"c{n}" for n in range(7)] and platform.ids("ticket") == tickets
    assert [r["body"]["count"] for r in platform.requests] == [3, 3, 1, 3, 3, 1]
    for r in platform.requests:
        assert r["auth"] == f"Bearer {TOKEN}" and r["content_type"] == "application/json; charset=utf-8"
        assert r["key"] == r["body"]["batch_id"] and r["body"]["schema"] == "hotline-export/1"
        assert r["body"]["source"] == "zhanjiang" and {x["numbers"] for x in r["body"]["records"]} == {"masked"}
    position = json.loads(await store.export_cursor(CURSOR_NAME))
    assert position["call"][1] == "c6" and position["ticket"][1] == tickets[-1]
    assert pusher.status()["acknowledged"] == 14 and pusher.status()["failing"] is False


async def test_full_numbers_and_the_restriction_audit_go_to_the_platform_when_configured(store, platform, certificate,
                                                                                        tmp_path):
    await calls(store, 1)
    await store.add_restriction("+8613700002222", reason="辱骂话务员", operator="lead1", days=30,
                                decided_at=utc_now() - timedelta(minutes=5))
    section = export_config(tmp_path, platform.url, certificate[0], full_numbers=True, include_restriction_audit=True)
    pusher = await start_configured_push(section, store, clock=utc_now)
    try:
        assert await eventually(lambda: len(platform.stored) == 3)
    finally:
        await pusher.close()
    assert platform.records["zhanjiang:call:c0"]["caller_number"] == "+8613800138000"
    assert platform.ids("restriction_audit") and platform.records[platform.stored[-1]]["number"] == "+8613700002222"


async def test_a_certificate_the_gateway_does_not_trust_is_refused_and_retried(store, platform, tmp_path):
    await calls(store, 1)
    pusher = await start_configured_push(export_config(tmp_path, platform.url, None), store, clock=utc_now)
    try:
        assert await eventually(lambda: "certificate" in (pusher.status()["last_error"] or "").lower())
        assert platform.requests == [] and await store.export_cursor(CURSOR_NAME) is None
    finally:
        await pusher.close()


async def test_a_503_is_retried_with_the_same_key_and_nothing_is_lost_or_duplicated(store, platform, certificate,
                                                                                   tmp_path):
    await calls(store, 2)
    platform.answers = [503, 503]
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0]), store, clock=utc_now)
    try:
        assert await eventually(lambda: len(platform.stored) == 4)
    finally:
        await pusher.close()
    first_three = platform.requests[:3]
    assert len({r["key"] for r in first_three}) == 1 and len({json.dumps(r["body"]) for r in first_three}) == 1
    assert sorted(platform.stored) == sorted(set(platform.stored)) and platform.ids("call") == ["c0", "c1"]


async def test_a_refused_connection_is_retried_until_the_platform_is_up(store, certificate, tmp_path):
    await calls(store, 4)
    platform = ProvincialPlatform(certificate, free_port())    # nothing listens on its port yet
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0]), store, clock=utc_now)
    try:
        assert await eventually(lambda: "Connect" in (pusher.status()["last_error"] or ""))
        await asyncio.sleep(1.5)                # at least one more refused attempt
        assert await store.export_cursor(CURSOR_NAME) is None
        await platform.start()
        assert await eventually(lambda: len(platform.stored) == 8)
        assert len(platform.stored) == len(set(platform.stored)) and platform.ids("call") == [f"c{n}" for n in range(4)]
        assert await eventually(lambda: pusher.status()["failing"] is False)
    finally:
        await pusher.close()
        await platform.stop()


async def test_the_cursor_moves_only_once_the_platform_acknowledged(store, platform, certificate, tmp_path):
    await calls(store, 1)
    platform.hold_at = 1
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0]), store, clock=utc_now)
    try:
        assert await asyncio.wait_for(platform.held.wait(), 20)
        await asyncio.sleep(0.5)
        assert await store.export_cursor(CURSOR_NAME) is None       # sent, not yet acknowledged
        platform.release.set()

        async def moved() -> bool:
            return await store.export_cursor(CURSOR_NAME) is not None
        assert await eventually(moved)
        assert json.loads(await store.export_cursor(CURSOR_NAME))["call"][1] == "c0"
    finally:
        await pusher.close()


async def test_a_lost_acknowledgement_is_sent_again_under_the_same_key_and_stored_once(store, platform, certificate,
                                                                                     tmp_path):
    await calls(store, 2)
    platform.answers = ["store-then-500"]
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0]), store, clock=utc_now)
    try:
        assert await eventually(lambda: len(platform.requests) >= 3 and len(platform.stored) == 4)
    finally:
        await pusher.close()
    assert platform.requests[0]["key"] == platform.requests[1]["key"]
    assert len(platform.stored) == len(set(platform.stored)) == 4


async def test_a_gateway_stopped_mid_batch_goes_on_after_its_restart_without_gaps_or_repeats(
        store_location, platform, certificate, tmp_path):
    first = await Store.open(store_location)
    tickets = await calls(first, 5)         # batches: c0-c2, c3-c4, then the tickets
    section = export_config(tmp_path, platform.url, certificate[0])
    platform.hold_at = 2
    pusher = await start_configured_push(section, first, clock=utc_now)
    # the first batch is acknowledged; the second is in flight when the gateway stops
    assert await asyncio.wait_for(platform.held.wait(), 20)
    assert len(platform.stored) == 3
    in_flight = platform.requests[-1]["key"]
    await pusher.close()
    await first.close()

    platform.release.set()          # the platform stores the dead connection's batch; its answer is lost
    second = await Store.open(store_location)
    try:
        restarted = await start_configured_push(section, second, clock=utc_now)
        try:
            assert await eventually(lambda: [r["key"] for r in platform.requests].count(in_flight) == 2)
            await calls(second, 2, prefix="d", ago_s=300)   # later than every c call
            assert await eventually(lambda: len(platform.records) == 14)
            await asyncio.sleep(1.5)                         # one more cycle: nothing else to send
        finally:
            await restarted.close()
    finally:
        await second.close()
    assert len(platform.stored) == 14 and len(platform.requests) == len(platform.keys_stored) + 1
    assert sorted(platform.ids("call")) == sorted([f"c{n}" for n in range(5)] + ["d0", "d1"])
    assert set(tickets) <= set(platform.ids("ticket"))


async def test_pushing_thousands_of_records_leaves_the_event_loop_free_for_calls(store, platform, certificate,
                                                                                 tmp_path):
    start = utc_now() - timedelta(hours=1)
    async with store._write() as db:    # a busy hour's calls and tickets, past the settle margin
        await db.executemany(
            "INSERT INTO calls (call_id, number, started_at, ivr_path, outcome, ended_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(f"b{n:05d}", f"+86138{n:08d}", to_ts(start + timedelta(milliseconds=500 * n)), '["3"]', "answered",
              to_ts(start + timedelta(milliseconds=500 * n + 60_000))) for n in range(3000)])
        await db.executemany(
            "INSERT INTO ticket_drafts (ticket_id, public_id, call_id, status, summary, transcript, created_at,"
            " updated_at) VALUES (?, ?, ?, 'saved', ?, ?, ?, ?)",
            [(f"20261130{n:05d}", f"{n:032x}", f"b{n:05d}", "夜间施工噪音，回电13900001111",
              "晚上十点以后还在施工 我的电话是13800138000 " * 4, to_ts(start + timedelta(milliseconds=500 * n)),
              to_ts(start + timedelta(milliseconds=500 * n + 60_000))) for n in range(3000)])
    monitor = LoopLagMonitor()
    await monitor.start()
    pusher = await start_configured_push(export_config(tmp_path, platform.url, certificate[0], batch_size=500),
                                         store, clock=utc_now)
    try:
        assert await eventually(lambda: len(platform.stored) == 6000, timeout=120)
    finally:
        await pusher.close()
        await monitor.close()
    lag = monitor.status()
    assert len(platform.requests) == 12 and lag["loop_stalls"] == 0, lag     # no wake-up 100 ms late
