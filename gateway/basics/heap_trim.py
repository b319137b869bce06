"""Give memory the process has freed back to the operating system.

glibc keeps what C code frees in the allocating thread's arena. The recogniser's executor threads allocate and
free tens of megabytes per vosk stream, so after a busy spell the process's resident size stays at its peak long
after the streams are gone, which reads as a leak to anyone watching it. ``malloc_trim(0)`` returns the free pages
of every arena. It takes the arenas' locks while it works, so it is called from an executor thread, and only
once the recogniser has had no stream open for a moment.

On a C library without ``malloc_trim`` (musl, macOS) trimming does nothing.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from concurrent.futures import Executor

__all__ = ["TrimWhenIdle", "trim_heap"]


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def trim_heap() -> bool:
    """Return free heap pages to the OS; True if the C library could release any. Blocks: call off the loop."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False


class TrimWhenIdle:
    """Trims in ``executor`` once ``idle_s`` has passed since the last ``idle()``, unless ``busy()`` by then.

    Used from the event loop; ``idle()`` outside a running loop does nothing."""

    def __init__(self, executor: Executor, *, idle_s: float, busy: Callable[[], bool]) -> None:
        self.executor = executor
        self.idle_s = idle_s
        self.busy = busy
        self.trims = 0
        self._timer: asyncio.TimerHandle | None = None

    def idle(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.cancel()
        self._timer = loop.call_later(self.idle_s, self._trim)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _trim(self) -> None:
        self._timer = None
        if self.busy():
            return
        try:
            self.executor.submit(trim_heap)
        except RuntimeError:   # executor shut down: the process is stopping
            return
        self.trims += 1
