"""The MQTT broker's security: mosquitto.conf, password file and ACL (art. 20: no caller data to third parties).

Users and what they may do:
- ``gateway`` publishes and reads everything under ``hotline/``;
- each agent (``agent1`` ...) reads only ``hotline/agents/<own name>/#``: a screen-pop carries the caller's full
  number, so no agent may see another agent's calls;
- each linked centre (``centre-119`` ...) reads only ``hotline/linkage/<centre>``.
Nobody else connects (``allow_anonymous false``). Passwords are generated once per user into
``{state_dir}/secrets/mqtt/<user>.secret`` (0600) and only their hashes reach the broker's password file.

Sync on purpose: the stack CLI calls it before starting the broker; ``mosquitto_passwd`` runs as a subprocess.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

GATEWAY_USER = "gateway"
CENTRE_PREFIX = "centre-"
TOPIC_ROOT = "hotline"
# Names become MQTT usernames, topic levels and password-file keys: no '/', '+', '#', ':' or spaces.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def agent_topic(agent: str) -> str:
    """The topic filter an agent may read."""
    return f"{TOPIC_ROOT}/agents/{check_name(agent, 'agent')}/#"


def screenpop_topic(agent: str) -> str:
    return f"{TOPIC_ROOT}/agents/{check_name(agent, 'agent')}/screenpop"


def linkage_topic(centre: str) -> str:
    return f"{TOPIC_ROOT}/linkage/{check_name(centre, 'centre')}"


def centre_user(centre: str) -> str:
    return CENTRE_PREFIX + check_name(centre, "centre")


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what} name {name!r} cannot be an MQTT user or topic level (letters, digits, _ . -)")
    return name


def broker_users(agents: Iterable[str], centres: Iterable[str]) -> list[str]:
    agents, centres = list(agents), list(centres)
    users = [GATEWAY_USER, *(check_name(a, "agent") for a in agents), *(centre_user(c) for c in centres)]
    clashes = sorted({u for u in users if users.count(u) > 1})
    if clashes:
        raise ValueError(f"MQTT user names must be unique; repeated: {', '.join(clashes)}")
    if any(a.startswith(CENTRE_PREFIX) for a in agents):
        raise ValueError(f"agent names may not start with {CENTRE_PREFIX!r} (reserved for linked centres)")
    return users


def render_acl(*, agents: Iterable[str], centres: Iterable[str]) -> str:
    broker_users(agents, centres)
    lines = [
        "# Rendered by hotline-gateway. Art. 20: an agent reads only its own topics; a centre only its own.",
        f"user {GATEWAY_USER}",
        f"topic readwrite {TOPIC_ROOT}/#",
        "",
    ]
    for centre in centres:
        lines += [f"user {centre_user(centre)}", f"topic read {linkage_topic(centre)}", ""]
    # A pattern applies to every user; only agents are ever published to under hotline/agents/<name>.
    lines += [f"pattern read {TOPIC_ROOT}/agents/%u/#", ""]
    return "\n".join(lines)


def render_mosquitto(
    *,
    host: str,
    port: int,
    ws_port: int,
    password_file: Path,
    acl_file: Path,
    run_as: str | None = None,
    persistence_dir: Path | None = None,
) -> str:
    """mosquitto.conf text. ``run_as``: the broker's user (default: whoever renders, who can read the files).

    mosquitto started as root drops to user ``mosquitto`` before it reads the password and ACL files, and
    that user cannot enter a private state dir: the broker runs as the user who wrote its files instead.
    """
    run_as = run_as or pwd.getpwuid(os.geteuid()).pw_name
    lines = [
        "# Rendered by hotline-gateway (gateway/mosquitto_conf.py)",
        "per_listener_settings false",
        f"user {run_as}",
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {acl_file}",
    ]
    if persistence_dir is None:
        # The screen-pop outbox lives in the gateway's store; nothing may depend on the broker's disk.
        lines.append("persistence false")
    else:
        lines += ["persistence true", f"persistence_location {persistence_dir}/", "autosave_interval 1"]
    lines += [
        "log_dest stdout",
        "log_type error", "log_type warning", "log_type notice",
        f"listener {port} {host}",
        # Agent consoles in the browser. mosquitto 2.0.11 binds websockets on all addresses whatever the host
        # (fixed in 2.0.12); the password file and ACL still apply.
        f"listener {ws_port} {host}",
        "protocol websockets",
        "",
    ]
    return "\n".join(lines)


def mqtt_password(state_dir: Path | str, user: str) -> str:
    """The user's broker password: generated on first use into a 0600 file, the same ever after."""
    path = _secret_path(state_dir, user)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text().strip()
        if not password:
            raise ValueError(f"{path}: empty MQTT password file; delete it to generate a new one") from None
        return password
    password = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def write_password_file(path: Path, passwords: dict[str, str]) -> None:
    """Hash ``passwords`` with mosquitto_passwd into ``path`` (replaced atomically, mode 0600)."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise RuntimeError("mosquitto_passwd not found on PATH (Debian package mosquitto)")
    fd, tmp = tempfile.mkstemp(prefix=".passwd.", dir=path.parent)
    os.close(fd)
    try:
        for user, password in passwords.items():
            subprocess.run([tool, "-b", tmp, user, password], check=True, capture_output=True, timeout=30)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"mosquitto_passwd failed for {path}: {exc.stderr.decode(errors='replace').strip()}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_broker_config(
    state_dir: Path, *, host: str, port: int, ws_port: int, agents: list[str], centres: list[str],
    persistence_dir: Path | None = None,
) -> Path:
    """Write ``{state_dir}/mosquitto/{mosquitto.conf,passwd,acl}``; return the conf path for ``mosquitto -c``."""
    state_dir = Path(state_dir)
    users = broker_users(agents, centres)
    base = state_dir / "mosquitto"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    password_file, acl_file, conf = base / "passwd", base / "acl", base / "mosquitto.conf"
    write_password_file(password_file, {user: mqtt_password(state_dir, user) for user in users})
    _write_private(acl_file, render_acl(agents=agents, centres=centres))
    _write_private(conf, render_mosquitto(host=host, port=port, ws_port=ws_port, password_file=password_file,
                                          acl_file=acl_file, persistence_dir=persistence_dir))
    return conf


# -- a broker of one's own (tests, benchmarks) ------------------------------------------------------------------


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


def _secret_path(state_dir: Path | str, user: str) -> Path:
    if user != GATEWAY_USER and not user.startswith(CENTRE_PREFIX):
        check_name(user, "user")
    return Path(state_dir) / "secrets" / "mqtt" / f"{check_name(user, 'user')}.secret"


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
