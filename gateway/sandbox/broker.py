"""A mosquitto of one's own for tests and benchmarks (never the stack's broker)."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalBroker:
    """``mosquitto -c conf`` as a child process, started and stopped on demand (never the stack's broker)."""

    def __init__(self, conf: Path, *, host: str, port: int, log_file: Path) -> None:
        self.conf, self.host, self.port, self.log_file = conf, host, port, log_file
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self._proc.returncode}): {self.log_file.read_text()[-2000:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} in {timeout} s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
