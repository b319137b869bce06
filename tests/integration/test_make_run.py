"""`make run` stops everything on Ctrl-C, also when its output is piped (`make run | tee run.log`).

The sandbox stack has fixed ports and one Asterisk root, so this test borrows the session's stack: it stops it,
runs scripts/run-stack.sh (what `make run` runs after setup) on the session's own configuration, interrupts it as
a terminal does (SIGINT to the whole foreground process group, tee included), and brings the session's stack
back up for the tests after it.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.sandbox.processes import is_alive, tcp_port_open, udp_port_in_use, wait_until

REPO = Path(__file__).resolve().parents[2]


def group_members(pgid: int) -> list[int]:
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(pid))
    return members


def as_a_terminal_job() -> None:
    """In the child: SIGINT and SIGQUIT as a terminal's foreground job has them. A run started in the background
    by a non-interactive shell (`make test &`, nohup) inherits them ignored, and a shell started with SIGINT
    ignored cannot trap it: run-stack.sh would never hear the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def stack_ports_in_use(config) -> list[str]:
    busy = [f"tcp {host}:{port}" for host, port in (
        (config.ami.host, config.ami.port), (config.mqtt.host, config.mqtt.port), (config.mqtt.host, config.mqtt.ws_port),
        (config.fastagi.host, config.fastagi.port), (config.console.host, config.console.port),
    ) if tcp_port_open(host, port)]
    udp = [(config.sip.bind, config.sip.port), *(agent.host_port for agent in config.agents)]
    return busy + [f"udp {host}:{port}" for host, port in udp if udp_port_in_use(host, port)]


@pytest.fixture
def session_stack_down(sandbox):
    """The session's stack stopped for the length of one test, and up again after it."""
    sandbox.hotline("stack", "down")
    yield sandbox
    sandbox.hotline("stack", "down", check=False)
    sandbox.hotline("stack", "up")


@pytest.mark.parametrize("pipe", ["|", "2>&1 |"], ids=["stdout_piped", "stdout_and_stderr_piped"])
def test_ctrl_c_stops_every_part_of_make_run_also_when_its_output_is_piped(session_stack_down, tmp_path, pipe):
    sb = session_stack_down
    assert not stack_ports_in_use(sb.config), "the stack did not stop before the test"
    env = {**os.environ, "HOTLINE_CONFIG": str(sb.config_path)}
    run_log = tmp_path / "run.log"
    with open(tmp_path / "terminal.out", "wb") as terminal:
        shell = subprocess.Popen(["bash", "-c", f"bash scripts/run-stack.sh {pipe} tee {run_log}"], cwd=REPO, env=env,
                                 stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.STDOUT,
                                 start_new_session=True,  # its own process group, as a terminal's job
                                 preexec_fn=as_a_terminal_job)
    try:
        up = wait_until(lambda: run_log.exists() and "The hotline sandbox is up" in run_log.read_text(errors="replace"),
                        300, 0.5)
        assert up, (tmp_path / "terminal.out").read_text(errors="replace")
        parts = [sb.stack.asterisk, sb.stack.mosquitto, sb.stack.gateway, *sb.stack.agents]
        assert wait_until(lambda: all(p.pid() for p in parts), 30), {p.name: p.pid() for p in parts}
        pids = {p.name: p.pid() for p in parts}
        job = group_members(shell.pid)
        assert len(job) >= 3, job  # bash -c, the script's bash, tee (and tail)
        t0 = time.monotonic()
        os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process group
        shell.wait(120)
        stopped_s = time.monotonic() - t0
        left = {name: pid for name, pid in pids.items() if is_alive(pid)}
        print(f"run-stack.sh {pipe} tee: Ctrl-C -> every part stopped in {stopped_s:.1f} s; job processes {len(job)}; "
              f"left running {left or 'none'}")
        assert not left, f"left running after Ctrl-C: {left}\n{(tmp_path / 'terminal.out').read_text()}"
        assert wait_until(lambda: not group_members(shell.pid), 5), group_members(shell.pid)
        assert wait_until(lambda: not stack_ports_in_use(sb.config), 10), stack_ports_in_use(sb.config)
        assert not any(p.pid_file.exists() for p in parts)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
