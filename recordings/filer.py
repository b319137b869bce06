"""Files the recording of every answered call once the call is over (asyncio side of ``recordings.call_files``).

The dialplan's hangup handler sends ``UserEvent: HotlineRecording`` with the caller channel's uniqueid (our call
id). Asterisk closes the file a moment after that: the filer waits until the file has stopped growing, then
converts and moves it in the executor and writes the row. Events lost while the gateway was away are made up for
by a sweep of the spool (at start, then every few minutes): a file whose channel Asterisk no longer has (AMI
``Status``) is a call that is over; without an answer from Asterisk, only files nobody has written to for ten minutes
are taken (a bridged call writes 50 frames a second, but a call on hold writes nothing).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.contract import RECORDING_EVENT
from recordings.call_files import CALLS_SUBDIR, FiledRecording, file_call_recording, spool_path

__all__ = ["CallRecordingFiler"]

log = logging.getLogger("recordings.filer")

SETTLE_S = 0.5          # unchanged this long: Asterisk has closed the file
SETTLE_TIMEOUT_S = 30.0
SWEEP_EVERY_S = 300.0
SWEEP_AGE_S = 600.0     # without AMI: ten minutes of quiet is taken for a call that is over
SWEEP_GONE_S = 2.0      # with AMI: a file whose channel is gone, once Asterisk has had time to close it
# ffmpeg takes a core while it converts: at most this many at once, so a burst of hang-ups cannot starve Asterisk
CONVERSIONS_AT_ONCE = 2


class CallRecordingFiler:
    """Converts and files call recordings from Asterisk's spool into the recordings directory."""

    def __init__(self, store, *, spool: Path, recordings_dir: Path, fmt: str, codec: str, bitrate: str,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.spool = spool
        self.recordings_dir = recordings_dir
        self.fmt, self.codec, self.bitrate = fmt, codec, bitrate
        self.clock = clock
        self._tasks: dict[str, asyncio.Task] = {}
        self._ami = None
        self._sweeper: asyncio.Task | None = None
        self._converting = asyncio.Semaphore(CONVERSIONS_AT_ONCE)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def attach(self, ami) -> None:
        self._ami = ami
        ami.on_event("UserEvent", self.on_event)

    def start_sweeping(self, *, first_after_s: float = 5.0) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(first_after_s),
                                                               name="recordings-sweep")

    async def on_event(self, event: Mapping[str, Any]) -> None:
        if str(event.get("UserEvent", "")).lower() != RECORDING_EVENT.lower():
            return
        call_id = event.get("Call")
        if isinstance(call_id, str) and call_id:
            self.file_soon(call_id)

    def file_soon(self, call_id: str) -> None:
        """File ``call_id``'s recording in the background (once: a repeat while it runs is dropped)."""
        if call_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self.file(call_id), name=f"recording-{call_id}")
        self._tasks[call_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(call_id, None))

    async def file(self, call_id: str) -> FiledRecording | None:
        """Wait for the file to settle, convert it, write the row. Never raises (a lost recording is logged)."""
        source = spool_path(self.spool, call_id)
        try:
            if not await _settled(source):
                log.warning("call=%s event=call_recording_missing", call_id)
                return None
            call = await self.store.get_call(call_id)
            at = (call or {}).get("started_at") or self.clock()
            async with self._converting:
                filed = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                    file_call_recording, source, self.recordings_dir, call_id, at, fmt=self.fmt, codec=self.codec,
                    bitrate=self.bitrate))
            if filed.path is None:
                log.info("call=%s event=call_recording_empty note=%s", call_id, filed.note)
                return filed
            await self.store.file_call_recording(
                call_id=call_id, path=str(filed.path), format=filed.format, duration_s=filed.duration_s,
                size=filed.size, sha256=filed.sha256, state=filed.state, note=filed.note, recorded_at=at)
            log.log(logging.WARNING if filed.note else logging.INFO,
                    "call=%s event=call_recording_filed state=%s format=%s duration_s=%.1f size=%d%s", call_id,
                    filed.state, filed.format, filed.duration_s, filed.size,
                    f" note={filed.note!r}" if filed.note else "")
            return filed
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the file stays in the spool; the next sweep tries again
            log.error("call=%s event=call_recording_filing_failed error=%s", call_id, type(exc).__name__)
            return None

    async def sweep(self) -> int:
        """File what the spool still holds from calls that are over; the number started."""
        directory = self.spool / CALLS_SUBDIR
        live = await self._live_channels()
        quiet_s = SWEEP_AGE_S if live is None else SWEEP_GONE_S
        names = [name for name in await asyncio.to_thread(_quiet_wavs, directory, quiet_s)
                 if live is None or name not in live]
        for call_id in names:
            self.file_soon(call_id)
        if names:
            log.info("event=call_recordings_swept found=%d asterisk_asked=%s", len(names),
                     "no" if live is None else "yes")
        return len(names)

    async def _live_channels(self) -> set[str] | None:
        """The uniqueids of every channel Asterisk has now; None when it cannot be asked."""
        if self._ami is None or not self._ami.ready:
            return None
        try:
            _, events = await self._ami.action_list({"Action": "Status"}, timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - AMIError, a timeout: the ten-minute rule then
            log.info("event=call_recordings_sweep_status_unavailable error=%s", type(exc).__name__)
            return None
        return {str(e.get("Uniqueid")) for e in events if e.get("Uniqueid")}

    async def _sweep_forever(self, first_after_s: float) -> None:
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await self.sweep()
            except OSError as exc:
                log.error("event=call_recordings_sweep_failed error=%s", exc)
            await asyncio.sleep(SWEEP_EVERY_S)

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop sweeping; filings under way get ``grace_s`` (what is left stays in the spool for the next start)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks.values()), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def _settled(path: Path, *, quiet_s: float = SETTLE_S, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    """True once ``path`` exists and its size has not changed for ``quiet_s``; False if it never appears."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            size = None
        if size != last:
            last, since = size, time.monotonic()
        elif size is not None and time.monotonic() - since >= quiet_s:
            return True
        await asyncio.sleep(0.1)
    return last is not None


def _quiet_wavs(directory: Path, older_than_s: float) -> list[str]:
    if not directory.is_dir():
        return []
    cutoff = time.time() - older_than_s
    found = []
    for path in directory.iterdir():
        try:
            if path.suffix == ".wav" and path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                found.append(path.stem)
        except OSError:
            continue
    return sorted(found)
