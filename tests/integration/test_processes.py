import os
import signal
import socket
import subprocess
import time

import pytest

from gateway.sandbox.processes import ManagedProcess, is_alive, tcp_port_open, udp_port_in_use, wait_until


@pytest.fixture
def managed(tmp_path):
    """ManagedProcess factory under tmp_path; a process a failed test left running is killed afterwards."""
    made: list[ManagedProcess] = []

    def make(name="sleeper"):
        proc = ManagedProcess(name, tmp_path / "run" / f"{name}.pid", tmp_path / "log" / f"{name}.log")
        made.append(proc)
        return proc

    yield make
    for proc in made:
        if (pid := proc.pid()) is not None:
            os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not is_alive(pid), 5)


def test_start_writes_the_pid_file_and_stop_ends_the_process(managed):
    proc = managed()
    pid = proc.start(["sleep", "30"])
    assert proc.pid_file.read_text() == f"{pid}\n"
    assert proc.pid() == pid
    assert is_alive(pid)
    assert os.getsid(pid) == pid  # its own session: the CLI's Ctrl-C does not reach it
    assert proc.stop(timeout=5) is True
    assert not is_alive(pid)
    assert not proc.pid_file.exists()
    assert proc.pid() is None
    assert proc.stop(timeout=5) is False


def test_output_goes_to_the_log_file_and_env_is_passed(managed):
    proc = managed("talker")
    proc.start(["sh", "-c", 'echo "hello $GREETING"; echo oops >&2; sleep 30'], env={"GREETING": "world"})
    assert wait_until(lambda: "oops" in proc.log_file.read_text(), 5)
    assert proc.log_file.read_text().splitlines() == ["hello world", "oops"]
    proc.stop(timeout=5)


def test_stop_ends_the_whole_process_group(managed, tmp_path):
    proc = managed()
    child_pid_file = tmp_path / "child.pid"
    proc.start(["sh", "-c", f'sleep 30 & echo $! > {child_pid_file}; wait'])
    assert wait_until(lambda: child_pid_file.exists() and child_pid_file.read_text().strip(), 5)
    child = int(child_pid_file.read_text())
    assert is_alive(child)
    assert proc.stop(timeout=5) is True
    assert wait_until(lambda: not is_alive(child), 5)


def test_process_ignoring_sigterm_is_killed_after_the_timeout(managed):
    proc = managed("stubborn")
    pid = proc.start(["bash", "-c", 'trap "" TERM; echo ready; sleep 30'])
    assert wait_until(lambda: "ready" in proc.log_file.read_text(), 5)  # the trap is in place
    t0 = time.monotonic()
    assert proc.stop(timeout=0.5) is True
    elapsed = time.monotonic() - t0
    assert not is_alive(pid)
    assert 0.5 <= elapsed < 5
    assert not proc.pid_file.exists()


def test_stale_pid_file_is_not_a_running_process(managed):
    proc = managed()
    pid = proc.start(["true"])
    assert wait_until(lambda: not is_alive(pid), 5)  # exited (a zombie until is_alive reaps it)
    assert proc.pid_file.exists()
    assert proc.pid() is None
    assert proc.stop(timeout=1) is False
    assert not proc.pid_file.exists()


@pytest.mark.parametrize("content", ["", "abc\n", "12.5\n"])
def test_unreadable_pid_file_means_no_process(tmp_path, content):
    proc = ManagedProcess("x", tmp_path / "x.pid", tmp_path / "x.log")
    proc.pid_file.write_text(content)
    assert proc.pid() is None
    assert proc.stop(timeout=1) is False
    assert not proc.pid_file.exists()


def test_missing_pid_file_means_no_process(tmp_path):
    proc = ManagedProcess("x", tmp_path / "x.pid", tmp_path / "x.log")
    assert proc.pid() is None
    assert proc.stop(timeout=1) is False


def test_is_alive_of_this_process_and_of_a_reaped_child():
    assert is_alive(os.getpid())
    child = subprocess.Popen(["true"])
    child.wait()
    assert not is_alive(child.pid)


# -- port probes ---------------------------------------------------------------------------------------------------

def test_tcp_port_open_sees_a_listener_and_not_a_closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert tcp_port_open("127.0.0.1", port) is True
    assert tcp_port_open("127.0.0.1", port) is False


def test_tcp_port_open_is_false_for_a_bound_socket_that_does_not_listen():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        assert tcp_port_open("127.0.0.1", bound.getsockname()[1], timeout=0.5) is False


def test_udp_port_in_use_sees_a_bound_socket_and_a_freed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert udp_port_in_use("127.0.0.1", port) is True
    assert udp_port_in_use("127.0.0.1", port) is False


def test_udp_probe_ignores_a_tcp_listener_on_the_same_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_guard:
            try:
                probe_guard.bind(("127.0.0.1", port))
            except OSError:
                pytest.skip("UDP port taken by someone else")
        assert udp_port_in_use("127.0.0.1", port) is False


def test_wait_until_returns_as_soon_as_the_predicate_holds_and_false_after_the_timeout():
    calls = []

    def third_time():
        calls.append(1)
        return len(calls) >= 3

    assert wait_until(third_time, timeout=5, interval=0.01) is True
    assert len(calls) == 3
    t0 = time.monotonic()
    assert wait_until(lambda: False, timeout=0.2, interval=0.05) is False
    assert 0.2 <= time.monotonic() - t0 < 2
