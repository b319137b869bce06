import struct
import wave

import pytest

from ivr.speech.recogniser import Recogniser as VoskRecogniser
from ivr.speech.recorded_capture import read_pcm_prefix, recording_files, transcribe_recording


def write_wav(path, pcm):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)


class Recogniser:
    def __init__(self):
        self.fed = []

    def stream(self, *, call_id):
        fed = self.fed

        class S:
            async def feed(self, pcm):
                fed.append(pcm)

            async def drain(self):
                fed.append(b"")

            async def finish(self):
                return f"{sum(map(len, fed))} bytes"

            def close(self):
                pass
        return S()

    async def transcribe(self, pcm, *, call_id, wait_s, piece_bytes):
        stream = self.stream(call_id=call_id)
        for i in range(0, len(pcm), piece_bytes):
            await stream.feed(pcm[i:i + piece_bytes])
            await stream.drain()
        return await stream.finish()


def test_prefix_of_a_wav_still_being_written_ignores_its_unfinished_sizes(tmp_path):
    path = tmp_path / "c.wav"
    pcm = struct.pack("<800h", *range(800))
    write_wav(path, pcm)
    raw = bytearray(path.read_bytes())
    raw[4:8] = raw[40:44] = b"\x00\x00\x00\x00"  # as Asterisk leaves the header until it closes the file
    path.write_bytes(bytes(raw))
    assert read_pcm_prefix(path, 1000) == pcm[:1000]
    assert read_pcm_prefix(path, 10**6) == pcm


def test_a_file_that_is_not_wav_is_refused(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError):
        read_pcm_prefix(path, 100)


async def test_what_was_said_before_the_answer_is_recognised_and_the_files_deleted(tmp_path):
    own, whole = recording_files(tmp_path, "17.5")
    write_wav(own, b"\x01\x00" * 8000 * 10)      # 10 s recorded so far (the agent talk goes on)
    write_wav(whole, b"\x00\x00" * 10)
    rec = Recogniser()

    result = await transcribe_recording(tmp_path, "17.5", hold_s=4.0, recogniser=rec)

    assert result.call_id == "17.5" and len(result.pcm) == 4 * 16000
    assert result.transcript == f"{4 * 16000} bytes"
    assert not own.exists() and not whole.exists()


async def test_no_recording_means_no_result(tmp_path):
    assert await transcribe_recording(tmp_path, "none", hold_s=3, recogniser=None) is None


async def test_a_broken_recording_gives_an_empty_result_and_is_still_deleted(tmp_path):
    own, _ = recording_files(tmp_path, "9")
    own.write_bytes(b"RIFF")
    result = await transcribe_recording(tmp_path, "9", hold_s=3, recogniser=Recogniser())
    assert result.pcm == b"" and result.transcript == "" and not own.exists()


async def test_a_recording_finding_every_stream_busy_keeps_its_audio_and_frees_nothing_it_did_not_take(
        tmp_path, monkeypatch):
    monkeypatch.setattr("ivr.speech.recorded_capture.STREAM_WAIT_S", 0.05)
    own, _ = recording_files(tmp_path, "21.3")
    write_wav(own, b"\x01\x00" * 8000 * 2)
    recogniser = VoskRecogniser(tmp_path / "model", max_streams=1)
    live = recogniser.stream(call_id="live")

    result = await transcribe_recording(tmp_path, "21.3", hold_s=1.0, recogniser=recogniser)

    assert len(result.pcm) == 16000 and result.transcript == ""
    assert recogniser.open_streams == 1 and not own.exists()
    live.close()
    recogniser.close()


@pytest.mark.parametrize("call_id", ["../outside", "a/../../outside", "/tmp/outside", "x" * 200, "", "..", "1.2\n"])
async def test_a_call_id_that_is_no_uniqueid_finds_no_recording_and_deletes_nothing(tmp_path, call_id):
    local = tmp_path / "spool"
    local.mkdir()
    outside = tmp_path / "outside.wav"
    write_wav(outside, b"\x01\x00" * 800)
    assert await transcribe_recording(local, call_id, hold_s=3, recogniser=Recogniser()) is None
    assert outside.exists()


@pytest.mark.parametrize("hold_s", [float("inf"), float("nan"), -5.0, 1e300])
async def test_a_hold_time_that_is_no_duration_takes_the_whole_bounded_recording(tmp_path, hold_s):
    own, _ = recording_files(tmp_path, "17.6")
    write_wav(own, b"\x01\x00" * 8000)
    result = await transcribe_recording(tmp_path, "17.6", hold_s=hold_s, recogniser=None, max_bytes=8000)
    assert len(result.pcm) == 8000
