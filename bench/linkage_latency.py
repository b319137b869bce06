"""Benchmark: from the caller's confirming key to the INVITE at the linked centre, p50/p99 over 50 transfers.

sipp callers key 9 then 2 (fire) through the real stack; the clock starts at Asterisk's DTMFEnd event for the 2
(AMI, stamped on arrival at this process) and stops when the INVITE reaches a minimal SIP centre on 119's address
(a UDP socket in this process, stamped on arrival: the same clock). The INVITE carries X-Hotline-Call, which pairs
the two. The centre answers 486 Busy (then the caller goes to the agent queue; that part is not timed).

Prints figures; asserts nothing. Usage: .venv/bin/python bench/linkage_latency.py [--transfers 50] [--parallel 5]
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ami_handlers.client.connection import AMIConnection  # noqa: E402
from ami_handlers.queue_events import channel_vars  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.sandbox.sipp_scenario import CallerScript  # noqa: E402
from gateway.sandbox.stack import Stack  # noqa: E402
from gateway.sandbox.testcall import run_sipp_caller  # noqa: E402

_CALL_HEADER = re.compile(rb"^X-Hotline-Call:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Centre(asyncio.DatagramProtocol):
    """Just enough SIP to be rung: stamps each INVITE, answers 486 Busy Here, ignores the rest."""

    def __init__(self) -> None:
        self.invites: dict[str, float] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.monotonic()
        if not data.startswith(b"INVITE "):
            return
        if (m := _CALL_HEADER.search(data)) is not None:
            self.invites.setdefault(m.group(1).decode(), now)
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        keep = [h for h in head[1:] if h.split(b":", 1)[0].strip().lower() in
                (b"via", b"from", b"to", b"call-id", b"cseq")]
        keep = [h + b";tag=centre" if h.lower().startswith(b"to:") and b"tag=" not in h else h for h in keep]
        self.transport.sendto(b"\r\n".join([b"SIP/2.0 486 Busy Here", *keep, b"Content-Length: 0", b"", b""]), addr)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def run(args: argparse.Namespace) -> int:
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    config_path = state / "hotline.toml"
    config_path.write_text(f'[gateway]\nstate_dir = "{state}"\nlog_level = "WARNING"\n[speech]\nenabled = false\n')
    config = load_config(config_path)
    stack = Stack(config, str(config_path))
    await asyncio.to_thread(stack.up, log=lambda *_: None)
    centre_cfg = next(c for c in config.centres if c.name == "119")
    loop = asyncio.get_running_loop()
    transport, centre = await loop.create_datagram_endpoint(Centre, local_addr=centre_cfg.host_port)
    keys: dict[str, float] = {}

    async def on_dtmf(event) -> None:
        if event.get("Digit") == "2" and event.get("Direction", "Received") == "Received":
            if call_id := channel_vars(event).get("HOTLINE_CALL_ID"):
                keys.setdefault(call_id, time.monotonic())

    ami = AMIConnection(host=config.ami.host, port=config.ami.port, username=config.ami.username,
                        secret=config.ami_secret())
    ami.on_event("DTMFEnd", on_dtmf)
    await ami.connect()
    await ami.wait_ready(10)
    try:
        sem = asyncio.Semaphore(args.parallel)

        async def one(i: int) -> None:
            async with sem:
                await run_sipp_caller(config, CallerScript(from_number=f"1380013{8100 + i:04d}", dtmf="9,2",
                                                           hold_ms=1500))
        await asyncio.gather(*(one(i) for i in range(args.transfers)))
        await asyncio.sleep(1)
    finally:
        transport.close()
        await ami.close()
        await asyncio.to_thread(stack.down, log=lambda *_: None)
    pairs = [centre.invites[c] - keys[c] for c in keys if c in centre.invites]
    print(f"{args.transfers} transfers ({args.parallel} callers at a time): keys seen {len(keys)}, "
          f"INVITEs at the centre {len(centre.invites)}, paired {len(pairs)}")
    if pairs:
        print(f"confirming key -> INVITE at the centre: p50 {pct(pairs, 0.5) * 1000:.0f} ms  "
              f"p99 {pct(pairs, 0.99) * 1000:.0f} ms  max {max(pairs) * 1000:.0f} ms")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--state-dir", default="/tmp/hotline-bench-linkage")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
