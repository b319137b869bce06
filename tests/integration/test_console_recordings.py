"""Call recordings on the console against a real Store and real files: the agent who handled the call hears it
(with HTTP Range), a supervisor hears any, another agent gets 403; every play, download and refusal is audited;
the URL is a random id, not the call id."""
from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.console.app import create_console_app
from gateway.mqtt.passwords import mqtt_password
from gateway.store.database import Store
from recordings.call_files import file_call_recording, spool_path

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


@pytest.fixture
async def client(store, tmp_path):
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1", "agent2", "lead1"],
                             supervisors=["lead1"], ws_url="ws://127.0.0.1:19001/mqtt", clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        yield c


async def sign_in(client, tmp_path, agent):
    client.session.cookie_jar.clear()
    response = await client.post("/api/login", json={"agent": agent,
                                                     "password": mqtt_password(tmp_path / "state", agent)})
    assert response.status == 200


@pytest.fixture
async def recording(store, tmp_path) -> dict:
    """agent1 answered call c1; its conversation was filed (wav: no ffmpeg needed here)."""
    await store.open_call(call_id="1764554400.7", number="+8613800138000", channel="PJSIP/caller-1", started_at=NOW)
    await store.update_call("1764554400.7", outcome="answered", agent="agent1", answered_at=NOW)
    await store.record_screenpop(message_id="pop-1", agent="agent1", call_id="1764554400.7", ticket_id=None,
                                 reason=None, at=NOW)
    pcm = b"".join(struct.pack("<h", int(5000 * math.sin(i / 3))) for i in range(16000))
    source = spool_path(tmp_path / "spool", "1764554400.7")
    source.parent.mkdir(parents=True)
    source.write_bytes(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0" + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
                       + b"data\0\0\0\0" + pcm)
    filed = file_call_recording(source, tmp_path / "rec", "1764554400.7", NOW, fmt="wav")
    await store.file_call_recording(call_id="1764554400.7", path=str(filed.path), format=filed.format,
                                    duration_s=filed.duration_s, size=filed.size, sha256=filed.sha256,
                                    state=filed.state, note=None, recorded_at=NOW)
    return await store.call_recording("1764554400.7")


async def test_the_agent_who_handled_the_call_hears_it_with_range(client, tmp_path, recording, store):
    assert (await client.get(f"/api/recordings/{recording['public_id']}")).status == 401
    await sign_in(client, tmp_path, "agent1")
    listed = (await (await client.get("/api/recordings")).json())["recordings"]
    assert [r["id"] for r in listed] == [recording["public_id"]] and "path" not in listed[0]
    assert recording["call_id"] not in listed[0]["url"]
    data = open(recording["path"], "rb").read()
    response = await client.get(listed[0]["url"], headers={"Range": "bytes=100-1099"})
    assert response.status == 206 and await response.read() == data[100:1100]
    assert response.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response.headers["Content-Type"] == "audio/wav" and response.headers["Cache-Control"] == "no-store"
    whole = await client.get(listed[0]["url"] + "?download=1")
    assert whole.status == 200 and await whole.read() == data
    assert whole.headers["Content-Disposition"].startswith("attachment")


async def test_another_agent_gets_403_a_supervisor_hears_it_and_all_is_audited(client, tmp_path, recording, store):
    url = f"/api/recordings/{recording['public_id']}"
    await sign_in(client, tmp_path, "agent2")
    assert (await (await client.get("/api/recordings")).json())["recordings"] == []
    assert (await client.get(url)).status == 403
    assert (await client.get(url, headers={"Range": "bytes=0-99"})).status == 403
    await sign_in(client, tmp_path, "lead1")
    assert len((await (await client.get("/api/recordings")).json())["recordings"]) == 1
    assert (await client.get(url)).status == 200
    await sign_in(client, tmp_path, "agent1")
    assert (await client.get(url + "?download=1")).status == 200
    audit = await store.recording_access_audit(recording["call_id"])
    assert [(a["viewer"], a["role"], a["action"], a["allowed"]) for a in audit] == [
        ("agent2", "agent", "play", False), ("agent2", "agent", "play", False),
        ("lead1", "supervisor", "play", True), ("agent1", "agent", "download", True)]
    assert all(a["at"] == NOW for a in audit)


async def test_unknown_purged_and_missing_recordings_are_404(client, tmp_path, recording, store):
    await sign_in(client, tmp_path, "lead1")
    assert (await client.get("/api/recordings/0123456789abcdef0123456789abcdef")).status == 404
    assert (await client.get(f"/api/recordings/{recording['call_id']}")).status == 404    # the call id is no URL
    import os
    os.unlink(recording["path"])
    assert (await client.get(f"/api/recordings/{recording['public_id']}")).status == 404
    await store.mark_recordings_purged([recording["path"]], at=NOW)
    assert (await client.get(f"/api/recordings/{recording['public_id']}")).status == 404
