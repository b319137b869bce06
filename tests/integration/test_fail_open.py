"""Fail-open at call entry and AMI recovery, on the real stack."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from gateway.sandbox.processes import wait_until

pytestmark = pytest.mark.integration


class BrokenGateway:
    """Something on the FastAGI port that is not a working gateway."""

    def __init__(self, mode: str, host: str, port: int) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        if mode == "never_accepts":
            # An accept queue that is full and never drained: the kernel drops new SYNs, so Asterisk's
            # connect hangs until its own 2 s FastAGI connect timeout.
            self.sock.listen(0)
            for _ in range(3):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex((host, port))
                self.held.append(c)
            return
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                if self.mode == "close_at_once":
                    continue
                conn.settimeout(2)
                data = b""
                while b"\n\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if self.mode == "garbage":
                    conn.sendall(b"\xff\xfe THIS IS NOT AGI\n")
                    try:
                        conn.recv(4096)
                    except OSError:
                        pass

    def close(self) -> None:
        self.stop.set()
        for c in self.held:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("mode", ["close_at_once", "garbage", "never_accepts"])
def test_a_broken_gateway_still_sends_the_caller_to_an_agent(sandbox, agents, mode):
    cfg = sandbox.config
    assert sandbox.stack.gateway.stop(timeout=10)
    broken = BrokenGateway(mode, cfg.fastagi.host, cfg.fastagi.port)
    try:
        before = sandbox.queue_completed()
        result = sandbox.call("13800138005", dtmf="3", hold_s=8)
        assert result["sipp_ok"], result
        assert wait_until(lambda: sandbox.queue_completed() == before + 1, 5), "no agent answered"
    finally:
        broken.close()
        sandbox.hotline("stack", "up")


def test_the_gateway_logs_back_in_to_ami_after_asterisk_restarts(sandbox, agents):
    stack = sandbox.stack
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    before = stack.gateway_status()["ami_reconnects"]
    restart = stack.root.cli("core restart now")
    assert restart.returncode == 0, restart.stderr
    assert wait_until(lambda: not stack.gateway_status().get("ami_ready"), 15), "AMI loss not noticed"
    assert wait_until(stack.root.fully_booted, 60, 0.5), "Asterisk did not come back"
    assert wait_until(lambda: stack.gateway_status().get("ami_ready"), 30), "gateway did not log in again"
    assert stack.gateway_status()["ami_reconnects"] == before + 1

    # and queue events are recorded again: the next call says which agent answered
    result = sandbox.call("13800138006", dtmf="1", hold_s=8)
    assert result["type"] == "consultation"
    assert result["answered_by"] in {"agent1", "agent2"}, result
    status = json.loads(sandbox.hotline("stack", "status", "--json").stdout)
    assert status["gateway"]["ami_ready"] and status["asterisk"]["running"]
