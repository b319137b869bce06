"""Fault drill: 100,000 seeded, time-bounded fuzzed inputs against the live gateway's four doors: FastAGI, the
agent console's HTTP API, AMI (Asterisk is stopped and a fake AMI peer takes its port, so the gateway's own
decoder and event handlers read what it sends) and AudioSocket (the fake peer answers the gateway's spy Originates
and the fuzzer speaks as the spy). The gateway must not crash, its event loop must never stall over 100 ms (its
own loop-lag monitor, in the status file), its memory must stay within 10 % and it must answer a real call after.
Asterisk is stopped for the whole fuzz (a fake AMI peer takes its port). A warm-up round of a tenth of the inputs
comes first: the first burst raises the allocators' high-water mark (glibc's per-thread arenas, Python's object
arenas), which later bursts reuse, so memory is compared with the gateway after the warm-up; the growth from the
cold start is printed too. Memory and the real call are measured once the gateway has worked off what the fuzz
left queued (AMI events, recordings waiting for a recogniser stream, open captures); how long that took is
printed, with the peak RSS.

``HOTLINE_FUZZ_SEED`` replays a run; ``HOTLINE_FUZZ_SCALE`` (default 1) multiplies every bound.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import os
import random
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import aiohttp
import pytest

from gateway.console.sessions import SESSION_COOKIE
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import is_alive, wait_until
from tests.integration import fuzz_inputs as fz

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HOTLINE_FUZZ_SEED", "20261201"))
SCALE = float(os.environ.get("HOTLINE_FUZZ_SCALE", "1"))
# inputs, seconds: about 100,000 inputs in about two minutes on the 2-core rig
BOUNDS = {"fastagi": (25_000, 40), "console": (20_000, 40), "ami": (64_000, 20), "audiosocket": (10_000, 30)}
STALL_MS = 100
MEMORY_SLACK = 0.10
# what the gateway still has queued from the fuzz; memory and the real call wait until all are 0
BACKLOG = ("ami_event_backlog", "speech_waiting", "capture_sessions", "speech_streams")
DRAIN_S = 120
WARM_UP = 0.1
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
_ORIGINATE_CHANNEL = re.compile(rb"Channel: AudioSocket/[^/\r\n]+/([0-9a-f-]{36})")
_ORIGINATE_DATA = re.compile(rb"Data: ([^,\r\n]+),")
# An exception that left the code meant to handle it and reached a last-resort catch (a session's, a server's,
# the event dispatcher's or asyncio's own): a defect, whatever the input. Errors a module logs about input it
# refused (gateway_fault, screenpop_failed, ...) are counted and printed, not failed on.
CRASH_MARKS = ("Task exception was never retrieved", "Exception in callback", "event=handler_failed",
               "event=ami_session_crashed", "event=audiosocket_handler_failed", "event=ami_callback_failed",
               "Error handling request", "Unhandled exception")
_ERROR_EVENT = re.compile(r"level=error .*?event=(\S+)")


@dataclass
class Budget:
    """Inputs sent to one door, stopped at its input or time bound, whichever comes first."""
    name: str
    limit: int
    seconds: float
    sent: int = 0
    started: float = 0.0
    finished: float = 0.0
    outcomes: collections.Counter = field(default_factory=collections.Counter)

    def begin(self) -> Budget:
        self.started = time.monotonic()
        return self

    def open(self) -> bool:
        return self.sent < self.limit and time.monotonic() - self.started < self.seconds

    def take(self, count: int = 1) -> bool:
        if not self.open():
            return False
        self.sent += count
        return True

    def end(self) -> None:
        self.finished = time.monotonic()

    def line(self) -> str:
        took = max(1e-9, self.finished - self.started)
        return f"{self.name} {self.sent} in {took:.1f} s ({self.sent / took:.0f}/s)"


def budget(name: str, share: float = 1.0) -> Budget:
    inputs, seconds = BOUNDS[name]
    return Budget(name, int(inputs * SCALE * share), seconds * SCALE * share)


# -- FastAGI: we are Asterisk ----------------------------------------------------------------------------------

async def fuzz_fastagi(cfg, spent: Budget, parallel: int = 8) -> None:
    numbers = itertools.count()

    async def session(n: int) -> None:
        rng = random.Random(f"{SEED}-agi-{n}")
        reader, writer = await asyncio.open_connection(cfg.fastagi.host, cfg.fastagi.port, limit=1 << 20)
        try:
            block, complete = fz.agi_header_block(rng, n)
            writer.write(block)
            await writer.drain()
            if not complete:
                spent.outcomes["cut_header"] += 1
                return
            for _ in range(rng.randint(1, 60)):
                # 1.5 s: a header the bending left without its blank line makes the gateway wait for more
                command = await asyncio.wait_for(reader.readline(), 1.5)
                if not command:
                    spent.outcomes["gateway_ended"] += 1
                    return
                if not spent.take():
                    return
                reply, go_on = fz.agi_reply(rng, command.decode(errors="replace").strip())
                writer.write(reply)
                await writer.drain()
                if not go_on:
                    spent.outcomes["peer_vanished"] += 1
                    return
            spent.outcomes["peer_hung_up"] += 1
        except TimeoutError:
            spent.outcomes["gateway_silent_1.5s"] += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            spent.outcomes["connection_reset"] += 1
        finally:
            writer.close()

    async def worker() -> None:
        while spent.take():   # the header block is an input too
            await session(next(numbers))

    await asyncio.gather(*(worker() for _ in range(parallel)))


# -- the console: we are a browser (or anyone on the network) ----------------------------------------------------

async def fuzz_console(cfg, spent: Budget, cookie: str, ticket_ids: list[str], parallel: int = 16) -> list[bytes]:
    host = f"{cfg.console.host}:{cfg.console.port}"
    numbers = itertools.count()
    server_errors: list[bytes] = []

    async def one(n: int) -> None:
        rng = random.Random(f"{SEED}-console-{n}")
        request = fz.console_request(rng, host=host, cookie=cookie, ticket_ids=ticket_ids)
        reader, writer = await asyncio.open_connection(cfg.console.host, cfg.console.port)
        try:
            writer.write(request)   # no half-close: aiohttp drops a connection whose peer has shut its side
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 3)
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            spent.outcomes[status] += 1
            if status >= 500:
                server_errors.append(request[:300])
            await asyncio.wait_for(reader.read(), 5)
        except TimeoutError:
            spent.outcomes["no_answer_3s"] += 1
        except ConnectionError:
            spent.outcomes["connection_reset"] += 1
        finally:
            writer.close()

    async def worker() -> None:
        while spent.take():
            await one(next(numbers))

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return server_errors


# -- AMI and AudioSocket: we are Asterisk's manager and its spy channels ------------------------------------------

class FakeAMIPeer:
    """Listens on Asterisk's AMI port: accepts any login, answers every action Success, and hands each spy the
    gateway originates (``AudioSocket/host:port/UUID`` running ChanSpy on a channel) to whoever waits for it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.writer: asyncio.StreamWriter | None = None
        self.logins = 0
        self.logged_in = asyncio.Event()
        self.spies: dict[str, asyncio.Future[uuid.UUID]] = {}     # spied channel -> UUID of its AudioSocket
        self.stray_spies: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._sending = asyncio.Lock()   # one message's pieces are never interleaved with another's
        self._serving: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> FakeAMIPeer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._serving:   # closing our side ends their reads: let them return rather than cancel them
            await asyncio.wait(self._serving, timeout=5)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def spy_for(self, channel: str) -> asyncio.Future[uuid.UUID]:
        return self.spies.setdefault(channel, asyncio.get_running_loop().create_future())

    async def send(self, *pieces: bytes) -> bool:
        """Write the pieces in order, draining after each (so the gateway reads them apart); False if the
        gateway is not connected."""
        async with self._sending:
            writer = self.writer
            if writer is None or writer.is_closing():
                return False
            try:
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
            except ConnectionError:
                return False
            return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._serving.add(asyncio.current_task())
        self.writer = writer
        writer.write(BANNER)
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                *actions, buffer = buffer.split(b"\r\n\r\n")
                for action in actions:
                    self._answer(action, writer)
        except ConnectionError:
            pass
        finally:
            self._serving.discard(asyncio.current_task())
            if self.writer is writer:
                self.writer = None
                self.logged_in.clear()

    def _answer(self, action: bytes, writer: asyncio.StreamWriter) -> None:
        action_id = re.search(rb"ActionID: ([^\r\n]*)", action)
        reply = b"Response: Success\r\n"
        if b"Action: Login" in action:
            self.logins += 1
            self.logged_in.set()
            reply += b"Message: Authentication accepted\r\n"
        if b"Action: Originate" in action and (spy := _ORIGINATE_CHANNEL.search(action)):
            spied = _ORIGINATE_DATA.search(action)
            future = self.spies.get(spied.group(1).decode()) if spied else None
            spy_uuid = uuid.UUID(spy.group(1).decode())
            if future is not None and not future.done():
                future.set_result(spy_uuid)
            else:
                self.stray_spies.put_nowait(spy_uuid)
            reply += b"Message: Originate successfully queued\r\n"
        writer.write(reply + b"ActionID: " + (action_id.group(1) if action_id else b"") + b"\r\n\r\n")


async def fuzz_ami(peer: FakeAMIPeer, spent: Budget) -> None:
    rng = random.Random(f"{SEED}-ami")
    for batch_start in itertools.count(0, 50):
        if not spent.open():
            return
        batch = b"".join(fz.ami_message(rng, n) for n in range(batch_start, batch_start + 50))
        # cut the batch at random places so messages (and UTF-8 characters) straddle the gateway's reads
        cuts = sorted(rng.sample(range(1, len(batch)), k=min(3, len(batch) - 1)))
        if not await peer.send(*(batch[a:b] for a, b in zip([0, *cuts], [*cuts, len(batch)]))):
            spent.outcomes["gateway_reconnected"] += 1
            await asyncio.wait_for(peer.logged_in.wait(), 10)
        spent.take(50)
        await asyncio.sleep(0)


async def speak_as_spy(cfg, spy_uuid: uuid.UUID, rng: random.Random, spent: Budget, frames: int) -> None:
    _, writer = await asyncio.open_connection(cfg.speech.audiosocket_host, cfg.speech.audiosocket_port)
    try:
        writer.write(fz.audiosocket_frame(0x01, spy_uuid.bytes))
        for _ in range(frames):
            if not spent.take():
                break
            frame, go_on = fz.audiosocket_call_frame(rng)
            writer.write(frame)
            await writer.drain()
            if not go_on:
                spent.outcomes["stream_ended_early"] += 1
                break
            await asyncio.sleep(0.002)
        else:
            spent.outcomes["stream_complete"] += 1
    except ConnectionError:
        spent.outcomes["connection_reset"] += 1
    finally:
        writer.close()


async def fuzz_audiosocket(cfg, peer: FakeAMIPeer, spent: Budget, parallel: int = 3) -> None:
    """Two kinds of input: bent first frames from strangers, and bent streams from the spies the gateway asked
    for (one per QueueCallerJoin the fake peer sends; at most ``parallel`` at once, under the recogniser's
    stream limit)."""
    calls = itertools.count()

    async def stranger(n: int) -> None:
        rng = random.Random(f"{SEED}-as-hello-{n}")
        reader, writer = await asyncio.open_connection(cfg.speech.audiosocket_host, cfg.speech.audiosocket_port)
        try:
            writer.write(fz.audiosocket_handshake(rng))
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 6)
            spent.outcomes["stranger_closed"] += 1
        except TimeoutError:
            spent.outcomes["stranger_kept_open_6s"] += 1
        except ConnectionError:
            spent.outcomes["connection_reset"] += 1
        finally:
            writer.close()

    async def caller(n: int) -> None:
        rng = random.Random(f"{SEED}-as-call-{n}")
        channel = f"PJSIP/caller-{10**6 + n:08x}"
        spy = peer.spy_for(channel)
        while not await peer.send(fz.encode_ami(fz.queue_caller_join(10**6 + n, f"fuzz-as-{n}"))):
            spent.outcomes["waited_for_ami_login"] += 1
            await asyncio.wait_for(peer.logged_in.wait(), 10)
        try:
            spy_uuid = await asyncio.wait_for(spy, 2)
        except TimeoutError:
            spent.outcomes["no_spy_originated"] += 1
            return
        await speak_as_spy(cfg, spy_uuid, rng, spent, frames=rng.randint(20, 150))

    async def worker(kind) -> None:
        while spent.take():
            await kind(next(calls))

    async def stray() -> None:
        while spent.open():
            try:
                spy_uuid = await asyncio.wait_for(peer.stray_spies.get(), 0.5)
            except TimeoutError:
                continue
            await speak_as_spy(cfg, spy_uuid, random.Random(f"{SEED}-stray-{spy_uuid}"), spent, frames=10)

    await asyncio.gather(*(worker(caller) for _ in range(parallel)), *(worker(stranger) for _ in range(4)),
                         stray())


# -- measuring the gateway -----------------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class LagWatch:
    """The gateway's own loop-lag figures from its status file, polled while the fuzzers run."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.start = self._now()
        self.worst_recent_ms = 0.0
        self.phase = "start"
        self.worst_by_phase: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    def enter(self, phase: str) -> None:
        """Name the next stretch; the lag of the last minute is attributed to the phase it was seen in."""
        self._sample()
        self.phase = phase

    def _sample(self) -> None:
        lag = self._now()["loop_lag_recent_ms"]
        self.worst_recent_ms = max(self.worst_recent_ms, lag)
        self.worst_by_phase[self.phase] = max(self.worst_by_phase.get(self.phase, 0.0), lag)

    def _now(self) -> dict:
        status = self.stack.gateway_status()
        assert "loop_stalls" in status, f"the gateway reports no loop lag: {status}"
        return status

    async def __aenter__(self) -> Self:
        async def poll() -> None:
            while True:
                self._sample()
                await asyncio.sleep(0.5)
        self._task = asyncio.create_task(poll())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        self._sample()

    def stalls(self) -> int:
        return self._now()["loop_stalls"] - self.start["loop_stalls"]


async def sign_in(cfg, agent: str) -> str:
    url = f"http://{cfg.console.host}:{cfg.console.port}/api/login"
    credentials = {"agent": agent, "password": mqtt_password(cfg.state_dir, agent)}
    async with aiohttp.ClientSession() as http, http.post(url, json=credentials) as response:
        assert response.status == 200, await response.text()
        return f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"


def worked_off(stack) -> bool:
    status = stack.gateway_status()
    return all(status.get(name) == 0 for name in BACKLOG)


def crash_lines(log_text: str) -> tuple[collections.Counter, collections.Counter]:
    """(defects by event or mark, other error lines by event) in a stretch of the gateway's log."""
    defects: collections.Counter = collections.Counter()
    handled: collections.Counter = collections.Counter()
    for line in log_text.splitlines():
        mark = next((m for m in CRASH_MARKS if m in line), None)
        event = _ERROR_EVENT.search(line)
        if mark is not None:
            error = re.search(r"\\n([A-Za-z_.]*(?:Error|Exception)):", line)
            defects[f"{mark.removeprefix('event=')}:{error.group(1) if error else '?'}"] += 1
        elif event:
            handled[event.group(1)] += 1
    return defects, handled


def test_100000_fuzzed_inputs_neither_crash_nor_stall_the_gateway_nor_grow_its_memory(sandbox, agents):
    stack, cfg = sandbox.stack, sandbox.config
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    first = sandbox.call("13800138130", dtmf="1", hold_s=8)
    assert first["answered_by"] and first.get("ticket"), first
    pid = stack.gateway.pid()
    log_offset = len(sandbox.gateway_log())
    rss_cold = rss_kib(pid)
    warm_up = {name: budget(name, WARM_UP) for name in BOUNDS}
    doors = {name: budget(name) for name in BOUNDS}
    console_errors: list[bytes] = []
    started = time.monotonic()
    cookie = asyncio.run(sign_in(cfg, first["answered_by"]))

    async def live_doors(doors: dict[str, Budget]) -> None:
        agi, console = doors["fastagi"].begin(), doors["console"].begin()

        async def timed(spent: Budget, work):
            try:
                return await work
            finally:
                spent.end()
        _, errors = await asyncio.gather(timed(agi, fuzz_fastagi(cfg, agi)),
                                         timed(console, fuzz_console(cfg, console, cookie, [first["ticket"]["id"]])))
        console_errors.extend(errors)

    async def manager_doors(doors: dict[str, Budget]) -> None:
        peer = await FakeAMIPeer(cfg.ami.host, cfg.ami.port).start()
        try:
            await asyncio.wait_for(peer.logged_in.wait(), 15)
            ami, audio = doors["ami"].begin(), doors["audiosocket"].begin()

            async def timed(spent: Budget, work):
                try:
                    await work
                finally:
                    spent.end()
            await asyncio.gather(timed(ami, fuzz_ami(peer, ami)), timed(audio, fuzz_audiosocket(cfg, peer, audio)))
        finally:
            await peer.stop()

    rss_by_phase: dict[str, int] = {}

    async def drill() -> tuple[LagWatch, int]:
        stopped = stack.root.cli("core stop now")
        assert stopped.returncode == 0, stopped.stderr
        assert wait_until(lambda: stack.asterisk.pid() is None, 15), "Asterisk did not stop"
        async with LagWatch(stack) as watch:
            watch.enter("warm-up")
            await live_doors(warm_up)
            await manager_doors(warm_up)
            for _ in range(DRAIN_S * 2):
                if worked_off(stack):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1)
            rss_warm = rss_kib(pid)
            watch.enter("fastagi+console")
            await live_doors(doors)
            rss_by_phase["fastagi+console"] = rss_kib(pid)
            watch.enter("ami+audiosocket")
            await manager_doors(doors)
            rss_by_phase["ami+audiosocket"] = rss_kib(pid)
        return watch, rss_warm

    try:
        watch, rss_before = asyncio.run(drill())
    finally:
        if stack.asterisk.pid() is None:
            up = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(sandbox.config_path),
                                 "stack", "up"], check=False, capture_output=True, text=True, cwd=REPO, timeout=180)
            assert up.returncode == 0, up.stdout + up.stderr
    fuzz_s = time.monotonic() - started
    assert is_alive(pid) and stack.gateway.pid() == pid, "the gateway died under the fuzz"
    assert wait_until(lambda: stack.gateway_status().get("ami_ready"), 30), "the gateway did not log in to Asterisk again"
    peak = rss_kib(pid)
    drain_started = time.monotonic()
    drained = wait_until(lambda: worked_off(stack), DRAIN_S, 0.5)
    drain_s = time.monotonic() - drain_started
    left = {name: stack.gateway_status().get(name) for name in BACKLOG}
    time.sleep(1)    # the recogniser gives freed memory back once its last stream is freed
    rss_after = rss_kib(pid)
    after = sandbox.call("13800138131", dtmf="1", hold_s=8)
    crashes, handled = crash_lines(sandbox.gateway_log()[log_offset:])
    total = sum(d.sent for d in doors.values())
    growth = rss_after / rss_before - 1
    cold_growth = rss_after / rss_cold - 1
    print(f"\nfuzz drill (seed {SEED}): {total} inputs after {sum(d.sent for d in warm_up.values())} of warm-up,"
          f" {fuzz_s:.0f} s in all - "
          + "; ".join(d.line() for d in doors.values())
          + "\n  outcomes: " + "; ".join(f"{d.name} {dict(d.outcomes)}" for d in doors.values())
          + f"\n  gateway loop: stalls over {STALL_MS} ms {watch.stalls()}, worst lag {watch.worst_recent_ms} ms"
          f" {watch.worst_by_phase}; RSS after the warm-up {rss_before} -> {rss_after} KiB ({growth:+.1%}; from the"
          f" cold start {rss_cold} KiB {cold_growth:+.1%}), peak {peak} KiB"
          f" {rss_by_phase}; console 5xx {len(console_errors)}"
          f"\n  worked off the fuzz's backlog in {drain_s:.1f} s ({'all 0' if drained else left});"
          f" real call after: answered by {after['answered_by']}"
          f"\n  defects in the log {dict(crashes)}\n  refused input logged as errors {dict(handled)}")
    assert drained, f"the gateway had not worked off the fuzz after {DRAIN_S} s: {left}"
    assert after["answered_by"] in {"agent1", "agent2"} and after["call_id"], after
    assert not console_errors, f"the console answered 5xx to: {console_errors[:3]}"
    assert watch.stalls() == 0, f"the event loop stalled over {STALL_MS} ms {watch.stalls()} times"
    assert abs(growth) <= MEMORY_SLACK, f"RSS moved {growth:+.1%} ({rss_before} -> {rss_after} KiB)"
    assert not crashes, f"exceptions reached a last-resort catch: {dict(crashes)}"
