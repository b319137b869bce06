"""The incident announcement a caller hears now (Zhanjiang 12345 rules, art. 18), read from the store within seconds
of the office's change, with its sound file made by this gateway where it has none.

Each gateway plays from its own Asterisk's prompt directory, while the announcements are in the store all gateways
share: a gateway that sees an announcement without a file makes it (espeak-ng in a subprocess, as `hotline prompts
build` does, the file work in a thread) and until the file is there its callers go on without the announcement;
so do they when it cannot be made (logged, tried again a minute later) or when the store cannot be read (the
gateway cannot tell whether the office removed it).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gateway.announcement import Announcement, in_force
from gateway.basics.waiting import cancel_and_wait
from gateway.basics.write_health import log_write_failure
from ivr.prompts import synthesise_prompt

__all__ = ["AnnouncementsInForce", "AnnouncementStore"]

log = logging.getLogger("gateway.announcements")

# How old the list of announcements may be: an announcement added or removed reaches callers within this.
FRESH_S = 3.0
# A call waits this long at most for a read of the store, then goes on without the announcement.
LOOKUP_TIMEOUT_S = 1.0
# ... and this long to record that its caller heard it.
MARK_TIMEOUT_S = 1.0
# A sound file that could not be made is tried again after this.
RETRY_AFTER_S = 60.0
_PROMPT_NAME = re.compile(r"[a-z0-9_]+")

Synthesise = Callable[..., Awaitable[None]]


class AnnouncementStore(Protocol):
    async def list_announcements(self, now: datetime) -> list[Announcement]: ...

    async def mark_call_announcement(self, call_id: str, announcement_id: int) -> None: ...


class AnnouncementsInForce:
    """The announcement in force for the call flow; `start` keeps the list fresh and the sound files made ahead of
    the calls, `for_call` reads again itself when the list has grown old."""

    def __init__(self, store: AnnouncementStore, *, sound_dir: Path, voice: str, clock: Callable[[], datetime],
                 fresh_s: float = FRESH_S, synthesise: Synthesise = synthesise_prompt) -> None:
        self.store = store
        self.sound_dir = sound_dir          # the prompt directory as this gateway sees it
        self.voice = voice
        self.clock = clock
        self.fresh_s = fresh_s
        self._synthesise = synthesise
        self._listed: list[Announcement] = []
        self._read_at: float | None = None
        self._reading: asyncio.Task | None = None
        self._store_failing = False
        self._ready: set[str] = set()
        self._making: dict[str, asyncio.Task] = {}
        self._failed_at: dict[str, float] = {}
        self._refresher: asyncio.Task | None = None

    async def start(self) -> None:
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever(), name="announcements")

    async def close(self) -> None:
        await cancel_and_wait(self._refresher)
        for task in [self._reading, *self._making.values()]:
            await cancel_and_wait(task)

    async def for_call(self, call_id: str) -> Announcement | None:
        """The announcement this call's caller is to hear, if its sound file is ready here; never raises."""
        await self._fresh()
        current = in_force(self._listed, self.clock())
        if current is None:
            return None
        if current.prompt in self._ready:
            return current
        self._make(current)
        log.warning("call=%s event=announcement_not_ready announcement=%s prompt=%s", call_id, current.id,
                    current.prompt)
        return None

    async def heard(self, call_id: str, announcement: Announcement) -> None:
        """Record that the caller began to hear ``announcement``; a store that fails costs the record, not the call."""
        try:
            async with asyncio.timeout(MARK_TIMEOUT_S):
                await self.store.mark_call_announcement(call_id, announcement.id)
        except Exception as exc:  # noqa: BLE001 - the caller hears it all the same
            log_write_failure(log, exc, "announcement_mark_failed", call=call_id, announcement=announcement.id)

    async def _refresh_forever(self) -> None:
        while True:
            await self._fresh()
            await asyncio.sleep(self.fresh_s)

    async def _fresh(self) -> None:
        if self._read_at is not None and time.monotonic() - self._read_at < self.fresh_s:
            return
        if self._reading is None or self._reading.done():
            # one read for all the calls that find the list old at once
            self._reading = asyncio.get_running_loop().create_task(self._read(), name="announcements-read")
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                await asyncio.shield(self._reading)
        except TimeoutError:
            log.warning("event=announcement_lookup_slow timeout_s=%s", LOOKUP_TIMEOUT_S)

    async def _read(self) -> None:
        try:
            listed = await self.store.list_announcements(self.clock())
        except Exception as exc:  # noqa: BLE001 - the calls go on without an announcement
            self._listed, self._read_at = [], time.monotonic()
            if not self._store_failing:
                log.warning("event=announcement_lookup_failed error=%s action=no_announcement", type(exc).__name__)
            self._store_failing = True
            return
        if self._store_failing:
            log.info("event=announcement_lookup_recovered")
        self._store_failing = False
        if [a.id for a in listed] != [a.id for a in self._listed]:
            log.info("event=announcements_changed listed=%s", ",".join(str(a.id) for a in listed) or "-")
        self._listed, self._read_at = listed, time.monotonic()
        for announcement in listed:     # those still to start too: their file is there when they begin
            self._make(announcement)

    def _make(self, announcement: Announcement) -> None:
        prompt = announcement.prompt
        if prompt in self._ready or prompt in self._making:
            return
        failed_at = self._failed_at.get(prompt)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER_S:
            return
        if not _PROMPT_NAME.fullmatch(prompt):
            log.error("event=announcement_prompt_refused announcement=%s reason=bad_name", announcement.id)
            self._failed_at[prompt] = float("inf")
            return
        task = asyncio.get_running_loop().create_task(self._produce(announcement), name=f"announcement-{prompt}")
        self._making[prompt] = task
        task.add_done_callback(lambda _: self._making.pop(prompt, None))

    async def _produce(self, announcement: Announcement) -> None:
        prompt = announcement.prompt
        dest = self.sound_dir / f"{prompt}.wav"
        if await asyncio.to_thread(dest.is_file):      # made before, by this gateway or another on this Asterisk
            self._ready.add(prompt)
            return
        # a name of its own: another gateway on the same Asterisk may be making the same file right now
        partial = self.sound_dir / f".{prompt}.{secrets.token_hex(4)}.wav"
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.sound_dir.mkdir, parents=True, exist_ok=True)
            await self._synthesise(prompt, announcement.text, partial, voice=self.voice)
            await asyncio.to_thread(_install, partial, dest)
        except Exception as exc:  # noqa: BLE001 - PromptBuildError, OSError: callers go on without it
            self._failed_at[prompt] = time.monotonic()
            log.error("event=announcement_prompt_failed announcement=%s prompt=%s error=%s detail=%s retry_s=%s",
                      announcement.id, prompt, type(exc).__name__, str(exc)[:200], RETRY_AFTER_S)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(partial.unlink, missing_ok=True)
            return
        self._failed_at.pop(prompt, None)
        self._ready.add(prompt)
        log.info("event=announcement_prompt_made announcement=%s prompt=%s file=%s seconds=%.2f", announcement.id,
                 prompt, dest, time.monotonic() - started)


def _install(partial: Path, dest: Path) -> None:
    os.chmod(partial, 0o644)        # Asterisk runs as its own user
    os.replace(partial, dest)       # Asterisk may be opening it: never let it see half a WAV
