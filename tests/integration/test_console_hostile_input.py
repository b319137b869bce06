"""The console's HTTP door against input found by fuzzing it: a 400 for the sender, no traceback in the log."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from aiohttp import web

from gateway.console.app import create_console_app
from gateway.console.request_errors import SERVER_LOGGER, console_server_logger
from gateway.store.database import Store

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
async def console_url(tmp_path):
    """The console served as the gateway serves it (same runner options), on a free port."""
    store = await Store.open(tmp_path / "hotline.db")
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1"],
                             ws_url="ws://127.0.0.1:19001/mqtt", clock=lambda: NOW)
    runner = web.AppRunner(app, access_log=None, logger=console_server_logger())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield host, port
    await runner.cleanup()
    await store.close()


async def exchange(address, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)   # no half-close: aiohttp drops a connection whose peer has shut its side
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("depth", [999, 5000, 30_000])
async def test_json_nested_too_deep_to_decode_is_a_400_not_a_server_error(console_url, caplog, depth):
    with caplog.at_level(logging.DEBUG):
        answer = await exchange(console_url, post("/api/login", b"[" * depth + b"]" * depth))
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert b"not valid JSON" in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/tickets/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
])
async def test_unparseable_request_gets_400_and_one_debug_line_instead_of_a_logged_traceback(
        console_url, caplog, request_bytes):
    with caplog.at_level(logging.DEBUG):
        answer = await exchange(console_url, request_bytes)
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    ours = [r for r in caplog.records if r.name == SERVER_LOGGER]
    assert [r.levelno for r in ours] == [logging.DEBUG]
    assert "event=console_bad_request status=400" in ours[0].getMessage() and ours[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unparseable_request_logs_nothing_when_debug_is_off(console_url, caplog):
    with caplog.at_level(logging.INFO):
        answer = await exchange(console_url, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"400"
    assert not [r for r in caplog.records if r.name == SERVER_LOGGER]


async def test_a_client_gone_before_its_body_arrived_is_one_debug_line(console_url, caplog):
    with caplog.at_level(logging.DEBUG):
        _, writer = await asyncio.open_connection(*console_url)
        writer.write(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{\"agent\": ")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.transport.abort()
        for _ in range(50):
            if any(r.name == SERVER_LOGGER for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
