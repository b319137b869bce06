import asyncio
import uuid

import pytest

from ivr.speech.audiosocket import (KIND_AUDIO, KIND_DTMF, KIND_HANGUP, KIND_UUID, AudioSocketServer, encode_frame)


async def started(handler, **kw):
    server = AudioSocketServer(handler, host="127.0.0.1", port=0, **kw)
    await server.start()
    return server


async def test_frames_arrive_by_uuid_and_hangup_frame_ends_the_stream():
    got = []
    seen_uuid = []

    async def handler(conn):
        seen_uuid.append(conn.uuid)
        async for frame in conn.frames():
            got.append((frame.kind, frame.payload))

    server = await started(handler)
    call = uuid.uuid4()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, call.bytes) + encode_frame(KIND_AUDIO, b"\x01\x00" * 160)
                 + encode_frame(KIND_DTMF, b"#") + encode_frame(KIND_HANGUP))
    await writer.drain()
    # the server answers the end with its own 0x00 frame and closes
    assert await asyncio.wait_for(reader.read(), 2) == encode_frame(KIND_HANGUP)
    writer.close()
    await server.close()
    assert seen_uuid == [call]
    assert got == [(KIND_AUDIO, b"\x01\x00" * 160), (KIND_DTMF, b"#")]


async def test_a_connection_without_uuid_frame_is_refused_without_running_the_handler():
    calls = []

    async def handler(conn):
        calls.append(conn)

    server = await started(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_AUDIO, b"\x00" * 320))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    await server.close()
    assert calls == []


async def test_a_frame_cut_by_eof_ends_the_stream_quietly():
    got = []

    async def handler(conn):
        async for frame in conn.frames():
            got.append(frame)

    server = await started(handler)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, uuid.uuid4().bytes) + encode_frame(KIND_AUDIO, b"\x00" * 320)[:100])
    await writer.drain()
    writer.close()
    for _ in range(50):
        if server._tasks == set():
            break
        await asyncio.sleep(0.02)
    await server.close()
    assert got == []


async def test_garbage_frame_type_closes_the_connection_and_the_server_keeps_serving():
    served = []

    async def handler(conn):
        async for frame in conn.frames():
            served.append(frame.kind)

    server = await started(handler)
    for kind in (0x42, KIND_AUDIO):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode_frame(KIND_UUID, uuid.uuid4().bytes) + encode_frame(kind, b"\x00\x00")
                     + encode_frame(KIND_HANGUP))
        await writer.drain()
        await asyncio.wait_for(reader.read(), 2)
        writer.close()
    await server.close()
    assert served == [KIND_AUDIO]


async def test_audio_written_back_is_split_into_20ms_frames():
    async def handler(conn):
        await conn.send_audio(b"\x05" * 700)

    server = await started(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, uuid.uuid4().bytes))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    await server.close()
    expected = (encode_frame(KIND_AUDIO, b"\x05" * 320) * 2 + encode_frame(KIND_AUDIO, b"\x05" * 60)
                + encode_frame(KIND_HANGUP))
    assert data == expected


def test_payload_over_the_length_field_is_refused():
    with pytest.raises(ValueError):
        encode_frame(KIND_AUDIO, b"\x00" * 70000)


async def test_a_peer_that_reads_nothing_cannot_hold_the_connection_open_at_close():
    async def handler(conn):
        conn._writer.write(b"\x00" * (32 << 20))   # far more than the socket buffers take: drain would wait forever

    server = await started(handler)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, uuid.uuid4().bytes))
    await writer.drain()
    started_at = asyncio.get_running_loop().time()
    for _ in range(200):
        await asyncio.sleep(0.02)
        if not server._tasks:
            break
    closed_after = asyncio.get_running_loop().time() - started_at
    writer.close()
    await server.close()
    assert not server._tasks and closed_after < 3, closed_after
