"""Fault drill: the gateway's state disk is full (a real tmpfs of a few MB, filled to the last block).

The session's gateway is stopped and a gateway of the same stack is started with its store and recordings on the
tiny file system (same Asterisk, broker, agents and ports); the drill fills the file system, places calls, frees
it again, and finally restarts the session's own gateway, so the stack is left as it was found.
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from gateway.basics.status_file import write_status_file
from gateway.config import load_config
from gateway.contract import screenpop_topic
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import wait_until
from gateway.sandbox.testcall import place_call
from gateway.store.database import Store
from tests.integration.conftest import STORE_BACKEND

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(STORE_BACKEND == "postgres",
                                 reason="a full state disk under SQLite's file;"
                                        " on PostgreSQL the database outage drill stands for it")]

REPO = Path(__file__).resolve().parents[2]
TINY_FS_SIZE = "6m"
RESTRICTED = "13800138301"


def hotline(config_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(config_path), *args],
                            check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"hotline {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def fill_up(directory: Path) -> int:
    """Write a file until the file system has no block left; its size."""
    path, written, block = directory / "filler", 0, b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    written += f.write(block[:size])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return written


@pytest.fixture
def tiny_state(sandbox, tmp_path):
    """A gateway whose store and recordings live on a tmpfs of TINY_FS_SIZE; the session's gateway after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tinyfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_FS_SIZE},mode=0755", "tmpfs", str(mount)], check=True)
    original = sandbox.config_path.read_text(encoding="utf-8")
    assert "[speech]\n" in original and "[store]" not in original
    config_path = tmp_path / "hotline-tiny.toml"
    config_path.write_text(original.replace("[speech]\n", f'[speech]\nrecordings_dir = "{mount}/recordings"\n')
                           + f'[store]\npath = "{mount}/hotline.db"\n', encoding="utf-8")
    sandbox.stack.gateway.stop(timeout=15)
    try:
        hotline(config_path, "stack", "up")
        yield config_path, mount, load_config(config_path)
    finally:
        sandbox.stack.gateway.stop(timeout=15)
        subprocess.run(["umount", "-l", str(mount)], check=False)
        sandbox.hotline("stack", "up")


class PopCounter:
    """agent1 and agent2 as their consoles: subscribed to their own screen-pop topics with their passwords."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.pops: list[dict] = []
        self.ready = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(a.name)) for a in cfg.agents]

    async def _run(self, agent: str) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.cfg.mqtt.host, self.cfg.mqtt.port, username=agent,
                                          password=mqtt_password(self.cfg.state_dir, agent), identifier=agent,
                                          timeout=5) as client:
                    await client.subscribe(screenpop_topic(agent), qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        self.pops.append(json.loads(message.payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def calls_popped(self) -> set[str]:
        return {pop["call_id"] for pop in self.pops}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def test_callers_reach_agents_with_their_pops_while_the_state_disk_is_full_and_it_heals_without_restart(
        sandbox, agents, tiny_state):
    config_path, mount, cfg = tiny_state
    stack = sandbox.stack
    pid = stack.gateway.pid()
    log_start = stack.gateway.log_file.stat().st_size

    def status() -> dict:
        return json.loads(hotline(config_path, "stack", "status", "--json", check=False).stdout)["gateway"]

    def new_log() -> str:
        with open(stack.gateway.log_file, "rb") as f:
            f.seek(log_start)
            return f.read().decode("utf-8", "replace")

    async def calls(numbers: list[str]) -> list[dict]:
        return list(await asyncio.gather(*(place_call(cfg, n, "1", hold_s=4, full=True) for n in numbers)))

    async def drill() -> dict:
        pops = PopCounter(cfg)
        try:
            await asyncio.wait_for(pops.ready.wait(), 10)
            hotline(config_path, "restrict", "add", RESTRICTED, "--reason", "threatened staff", "--operator", "op1")
            [before] = await calls(["13800138300"])
            filled = fill_up(mount)
            completed = sandbox.queue_completed()
            during_started = time.monotonic()
            during = await calls(["13800138302", "13800138303"]) + await calls(["13800138304", "13800138305"])
            answered_during = sandbox.queue_completed() - completed
            # held longer than the announcement: Asterisk hangs up on the restricted caller, no agent answers
            blocked = await place_call(cfg, RESTRICTED, "", hold_s=30, full=True)
            blocked_answered = sandbox.queue_completed() - completed - answered_during
            await asyncio.sleep(1.0)
            during_status = status()
            # a status write on the full file system itself: the padded file is rewritten in place
            probe = mount / "status-probe.json"
            (mount / "filler").unlink()
            write_status_file(probe, json.dumps({"ok": True}))
            fill_up(mount)
            write_status_file(probe, json.dumps({"ok": False, "full": True}))
            probe_after = json.loads(probe.read_text())
            popped_during = len(pops.calls_popped())
            (mount / "filler").unlink()
            healed_at = time.monotonic()
            [after] = await calls(["13800138306"])
            # the store's writes go through again (a target nothing has written to since stays "failing": a
            # recording, when no caller spoke)
            healed = await asyncio.to_thread(
                wait_until, lambda: (st := status()).get("state_ok") is not None
                and "store:" not in (st.get("state_failing") or ""), 15)
            return {"before": before, "during": during, "answered_during": answered_during, "blocked": blocked,
                    "blocked_answered": blocked_answered, "during_status": during_status,
                    "probe_after": probe_after, "popped_during": popped_during, "filled_mb": filled / 1e6,
                    "during_s": healed_at - during_started, "after": after, "healed": healed,
                    "popped": pops.calls_popped(), "after_status": status()}
        finally:
            await pops.close()

    f = asyncio.run(drill())
    log = new_log()
    failed_lines = [line for line in log.splitlines() if "event=state_write_failed" in line]
    tracebacks = [line for line in log.splitlines() if " exc=" in line]
    restriction = asyncio.run(_restriction(cfg))
    report = (f"full disk drill: tmpfs {TINY_FS_SIZE}, filler {f['filled_mb']:.1f} MB; calls while full "
              f"{len(f['during'])}, answered by agents {f['answered_during']}, pops received "
              f"{f['popped_during'] - 1} of {len(f['during'])}; restricted caller answered by an agent "
              f"{f['blocked_answered']}; status while full state_ok={f['during_status'].get('state_ok')} "
              f"failing={f['during_status'].get('state_failing')} failed_writes="
              f"{f['during_status'].get('state_failed_writes')} outbox_in_memory="
              f"{f['during_status'].get('outbox_in_memory')}; state_write_failed lines {len(failed_lines)}; "
              f"traceback lines {len(tracebacks)}; healed {f['healed']} (state_ok after="
              f"{f['after_status'].get('state_ok')}), call after recorded as {f['after'].get('outcome')} by "
              f"{f['after'].get('answered_by')}; gateway restarted: {stack.gateway.pid() != pid}")
    print(report)
    for line in failed_lines:
        print("  ", line[:240])
    assert f["before"]["answered_by"] in {"agent1", "agent2"}, report
    assert f["answered_during"] == len(f["during"]), report
    assert {c["call_id"] for c in f["during"] if c["call_id"]} <= f["popped"], report
    assert f["popped_during"] >= 1 + len(f["during"]), report           # before + every call while full
    assert f["blocked_answered"] == 0 and f["blocked"]["hangup_by"] == "server", report
    assert f["during_status"]["state_ok"] is False and "store:disk_full" in (f["during_status"]["state_failing"] or "")
    assert 1 <= len(failed_lines) <= 4, report                          # once per target and kind, not per call
    assert not tracebacks, tracebacks[:3]
    assert f["probe_after"] == {"ok": False, "full": True}, report
    assert f["healed"] and f["after"]["answered_by"] in {"agent1", "agent2"}, report
    assert f["after_status"]["state_failing"] in (None, "recording:disk_full"), report
    assert "event=state_write_recovered target=store" in log, report
    assert stack.gateway.pid() == pid, "the gateway was restarted"
    assert restriction == ("threatened staff", 1), report                # the acknowledged write and its audit


async def _restriction(cfg) -> tuple[str | None, int]:
    store = await Store.open(cfg.store.path)
    try:
        active = await store.active_restriction(RESTRICTED, datetime.now(UTC))
        return active.reason if active else None, len(await store.restriction_audit())
    finally:
        await store.close()
