"""Call recordings on the console against a real Store and real files: the agent who handled the call hears it
(with HTTP Range), a supervisor hears any, another agent gets 403; every play, download and refusal is audited;
the URL is a random id, not the call id."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recordings.call_files import file_call_recording, spool_path
from tests.audio_files import mixmonitor_wav, tone_pcm
from tests.integration.console_support import console_client
from tests.integration.console_support import sign_in as console_sign_in

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def client(store, tmp_path):
    async with console_client(store, tmp_path / "state", NOW) as c:
        yield c


async def sign_in(client, tmp_path, agent):
    await console_sign_in(client, tmp_path / "state", agent)


@pytest.fixture
async def recording(store, tmp_path) -> dict:
    """agent1 answered call c1; its conversation was filed (wav: no ffmpeg needed here)."""
    await store.open_call(call_id="1764554400.7", number="+8613800138000", channel="PJSIP/caller-1", started_at=NOW)
    await store.update_call("1764554400.7", outcome="answered", agent="agent1", answered_at=NOW)
    await store.record_screenpop(message_id="pop-1", agent="agent1", call_id="1764554400.7", ticket_id=None,
                                 reason=None, at=NOW)
    source = mixmonitor_wav(spool_path(tmp_path / "spool", "1764554400.7"), tone_pcm(2.0), header_final=False)
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
