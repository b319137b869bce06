"""gateway.basics.heap_trim: freed memory goes back to the OS."""
from __future__ import annotations

import asyncio
import ctypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.basics.heap_trim import TrimWhenIdle, trim_heap


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_freed_in_small_pieces_is_given_back():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 MiB in 16 KiB blocks, each written to, below the mmap threshold: glibc keeps them in its heap
    blocks = [libc.malloc(16 * 1024) for _ in range(4096)]
    for block in blocks:
        ctypes.memset(block, 1, 16 * 1024)
    keep = libc.malloc(64)     # a live block at the top of the heap stops glibc trimming on free by itself
    for block in blocks:
        libc.free(block)
    before = _rss_kib()
    assert trim_heap() is True
    assert before - _rss_kib() > 32 * 1024
    libc.free(keep)


async def test_an_idle_spell_trims_once_and_a_busy_one_not_at_all():
    busy = [False]
    with ThreadPoolExecutor(1) as executor:
        trimmer = TrimWhenIdle(executor, idle_s=0.05, busy=lambda: busy[0])
        trimmer.idle()
        trimmer.idle()            # restarts the spell: still one trim
        await asyncio.sleep(0.15)
        assert trimmer.trims == 1
        trimmer.idle()
        busy[0] = True            # a stream opened meanwhile
        await asyncio.sleep(0.15)
        assert trimmer.trims == 1


def test_idle_outside_an_event_loop_does_nothing():
    with ThreadPoolExecutor(1) as executor:
        trimmer = TrimWhenIdle(executor, idle_s=0, busy=lambda: False)
        trimmer.idle()
        assert trimmer.trims == 0
