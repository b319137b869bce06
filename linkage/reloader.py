"""The emergency list in force, re-read when its file changes (art. 14: the list is "adjusted over time").

`EmergencyListHolder.current` is the list every call uses. A task polls the file (size, mtime and a hash of the
bytes, so an edit inside one mtime tick is still seen) in a worker thread; a new file that validates replaces
the list in one reference swap, so a call sees the old list or the new one, never a mixture. A file that does
not validate is refused: the previous list stays, and the refusal is logged once per version of the file. So is
a valid list that a check added with `add_check` refuses (a new centre the broker could not be given a user
for): what the list needs outside the gateway is in place before the list is in force.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.basics.waiting import cancel_and_wait
from linkage.emergency_list import (DEFAULT_EMERGENCY_PATH, EmergencyList, EmergencyListError, load_emergency_list,
                                    parse_emergency_list)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Fingerprint:
    size: int
    mtime_ns: int
    sha256: str


def _snapshot(path: Path) -> tuple[_Fingerprint, bytes] | None:
    try:
        st = os.stat(path)
        data = path.read_bytes()
    except OSError:
        return None
    return _Fingerprint(len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest()), data


def _fingerprint(path: Path) -> _Fingerprint | None:
    snapshot = _snapshot(path)
    return None if snapshot is None else snapshot[0]


def _read(path: Path) -> tuple[_Fingerprint | None, EmergencyList | EmergencyListError]:
    """The file's fingerprint and its list (or why it is refused), from the same bytes: an edit between two
    reads cannot make the fingerprint describe another version than the one judged."""
    snapshot = _snapshot(path)
    try:
        if snapshot is None:
            return None, load_emergency_list(path, require_centres=True)   # raises, naming the OS error
        try:
            raw = tomllib.loads(snapshot[1].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise EmergencyListError(str(path), "<file>", f"not UTF-8: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise EmergencyListError(str(path), "<file>", f"not valid TOML: {exc}") from exc
        emergencies = parse_emergency_list(raw, source=str(path), require_centres=True)
        emergencies.matcher()       # compiled here, off the event loop, not on the first call that needs it
        return snapshot[0], emergencies
    except EmergencyListError as exc:
        return None if snapshot is None else snapshot[0], exc


class EmergencyListHolder:
    """The list in force. Construction loads the file and raises EmergencyListError if it is unusable (the
    gateway must not start without a valid list); after that a bad file never replaces a good list."""

    def __init__(self, path: str | Path | None = None, *, poll_s: float = 1.0) -> None:
        self.path = Path(path) if path else DEFAULT_EMERGENCY_PATH
        self.poll_s = poll_s
        self._seen, loaded = _read(self.path)
        if isinstance(loaded, EmergencyListError):
            raise loaded
        self._current = loaded
        self.loaded_at = datetime.now(UTC)
        self.last_error: str | None = None
        self.unmet: str | None = None
        self._listeners: list[Callable[[EmergencyList], Any]] = []
        self._checks: list[Callable[[EmergencyList], Awaitable[None]]] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    @property
    def current(self) -> EmergencyList:
        return self._current

    def on_change(self, listener: Callable[[EmergencyList], Any]) -> None:
        """Called with the new list after each swap (e.g. to re-render the broker's centre users)."""
        self._listeners.append(listener)

    def add_check(self, check: Callable[[EmergencyList], Awaitable[None]]) -> None:
        """Awaited with each new valid list before it replaces the one in force; an exception refuses the list,
        its message the reason (e.g. a new centre's broker user could not be added)."""
        self._checks.append(check)

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll_forever(), name="emergency-list-reloader")

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def reload_now(self) -> tuple[bool, str | None]:
        """Read the file now, whether or not it changed: (True, None) if the list in force is now the file's,
        (False, reason) if the file was refused and the previous list stays."""
        return await self._reload(force=True)

    async def check_in_force(self) -> str | None:
        """Run the checks on the list in force (at start-up, when it was loaded before any check could refuse
        it): what they found wanting stays in `status()` as "unmet" until a reload passes them."""
        for check in self._checks:
            try:
                await check(self._current)
            except Exception as exc:  # noqa: BLE001 - logged and shown; the list stays in force: calls need one
                self.unmet = _one_line(exc)
                log.error("event=emergency_list_check_failed file=%s error=%s", self.path, self.unmet)
                return self.unmet
        self.unmet = None
        return None

    def status(self) -> dict:
        """For `hotline stack status`: which file, when it was loaded, the last refusal if the file on disk
        is not the list in force, and what the list in force still lacks."""
        return {"file": str(self.path), "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
                "situations": len(self._current.situations), "centres": len(self._current.centres),
                "refused": self.last_error, "unmet": self.unmet}

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self._reload(force=False)
            except Exception:
                # A bug here must not end reloading for the life of the process.
                log.exception("event=emergency_list_poll_failed file=%s", self.path)

    async def _reload(self, *, force: bool) -> tuple[bool, str | None]:
        async with self._lock:
            if not force:
                seen = await asyncio.to_thread(_fingerprint, self.path)
                if seen is not None and seen == self._seen:
                    return self.last_error is None, self.last_error
                if seen is None and self._seen is None:
                    return False, self.last_error     # still missing; already logged
            seen, new = await asyncio.to_thread(_read, self.path)
            if not isinstance(new, EmergencyListError):
                new = await self._checked(new)
            if isinstance(new, EmergencyListError):
                # Remember the refused version so it is logged once, not at every poll.
                self._seen, exc = seen, new
                self.last_error = str(exc)
                log.warning("event=emergency_list_refused file=%s error=%s kept_situations=%d",
                            self.path, _one_line(exc), len(self._current.situations))
                return False, self.last_error
            self._seen, self._current = seen, new
            self.loaded_at = datetime.now(UTC)
            self.last_error = self.unmet = None
        log.info("event=emergency_list_loaded file=%s situations=%d centres=%d", self.path,
                 len(new.situations), len(new.centres))
        for listener in self._listeners:
            try:
                listener(new)
            except Exception:
                log.exception("event=emergency_list_listener_failed file=%s", self.path)
        return True, None


    async def _checked(self, new: EmergencyList) -> EmergencyList | EmergencyListError:
        for check in self._checks:
            try:
                await check(new)
            except Exception as exc:  # noqa: BLE001 - any failure refuses: no list in force half-served
                return EmergencyListError(str(self.path), "centres", f"{exc}; the previous list stays in force")
        return new


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
