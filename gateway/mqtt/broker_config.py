"""The MQTT broker's security: mosquitto.conf, password file and ACL (art. 20: no caller data to third parties).

Users and what they may do:
- ``gateway`` publishes and reads everything under ``hotline/``;
- each agent (``agent1`` ...) reads only ``hotline/agents/<own name>/#``: a screen-pop carries the caller's full
  number, so no agent may see another agent's calls;
- each linked centre (``centre-119`` ...) reads only ``hotline/linkage/<centre>``.
Nobody else connects (``allow_anonymous false``). Passwords are generated once per user into
``{state_dir}/secrets/mqtt/<user>.secret`` (0600) and only their hashes reach the broker's password file.

A session belongs to its user: the broker takes each client's user name as its client id
(``use_username_as_clientid``), so no user can connect under another's id and close that user's session (MQTT
3.1.1 §3.1.4: a second connection with a client id already connected takes the session over). Each user thus
holds one connection at a time.

Sync on purpose: the stack CLI calls it before starting the broker. The password hashes are computed here, in
mosquitto's own format (``gateway.mqtt.password_hash``): no password is ever on a command line.
Topic and user names are the contract's (``gateway.contract``); passwords are ``gateway.mqtt.passwords``.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gateway.contract import CENTRE_PREFIX, GATEWAY_USER, TOPIC_ROOT, centre_user, check_name, linkage_topic
from gateway.mqtt.password_hash import password_file_line
from gateway.mqtt.passwords import mqtt_password

def broker_users(agents: Iterable[str], centres: Iterable[str],
                 gateways: Iterable[str] = (GATEWAY_USER,)) -> list[str]:
    """Every broker user: the gateways (one per node), the agents, the linked centres."""
    agents, centres = list(agents), list(centres)
    users = [*(check_name(g, "gateway") for g in gateways), *(check_name(a, "agent") for a in agents),
             *(centre_user(c) for c in centres)]
    clashes = sorted({u for u in users if users.count(u) > 1})
    if clashes:
        raise ValueError(f"MQTT user names must be unique; repeated: {', '.join(clashes)}")
    if any(a.startswith(CENTRE_PREFIX) for a in agents):
        raise ValueError(f"agent names may not start with {CENTRE_PREFIX!r} (reserved for linked centres)")
    return users


def render_acl(*, agents: Iterable[str], centres: Iterable[str], gateways: Iterable[str] = (GATEWAY_USER,)) -> str:
    gateways = list(gateways)
    broker_users(agents, centres, gateways)
    lines = ["# Rendered by hotline-gateway. Art. 20: an agent reads only its own topics; a centre only its own."]
    for gateway in gateways:
        lines += [f"user {gateway}", f"topic readwrite {TOPIC_ROOT}/#", ""]
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
        "# Rendered by hotline-gateway (gateway/mqtt/broker_config.py)",
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
        # A listener option in mosquitto 2.0 (ignored before the first listener line): each listener needs it.
        "use_username_as_clientid true",
        # Agent consoles in the browser. mosquitto 2.0.11 hands the host to libwebsockets, which binds an IPv6
        # socket on every address unless the listener is limited to the host's address family (measured with
        # `ss -ltn`: `*:9001` without socket_domain, `127.0.0.1:9001` with it).
        f"listener {ws_port} {host}",
        "protocol websockets",
        f"socket_domain {socket_domain(host)}",
        "use_username_as_clientid true",
        "",
    ]
    return "\n".join(lines)


def socket_domain(host: str) -> str:
    """mosquitto's ``socket_domain`` for a listener on ``host`` (an IP address): ``ipv4`` or ``ipv6``."""
    return "ipv6" if ipaddress.ip_address(host).version == 6 else "ipv4"


def write_password_file(path: Path, passwords: dict[str, str]) -> None:
    """Write the hashes of ``passwords`` into mosquitto's password file ``path`` (replaced atomically, 0600).

    Hashed in this process (``mosquitto_passwd -b`` would put each password on its command line, readable by
    every local user in /proc/PID/cmdline while it runs).
    """
    text = "".join(password_file_line(user, password) + "\n" for user, password in passwords.items())
    fd, tmp = tempfile.mkstemp(prefix=".passwd.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_broker_config(
    state_dir: Path, *, host: str, port: int, ws_port: int, agents: list[str], centres: list[str],
    persistence_dir: Path | None = None, gateways: Iterable[str] = (GATEWAY_USER,),
) -> Path:
    """Write ``{state_dir}/mosquitto/{mosquitto.conf,passwd,acl}``; return the conf path for ``mosquitto -c``."""
    password_file, acl_file = write_broker_users(state_dir, agents=agents, centres=centres, gateways=gateways)
    conf = password_file.parent / "mosquitto.conf"
    _write_private(conf, render_mosquitto(host=host, port=port, ws_port=ws_port, password_file=password_file,
                                          acl_file=acl_file, persistence_dir=persistence_dir))
    return conf


def broker_files(state_dir: Path) -> tuple[Path, Path]:
    """Where the broker's password file and ACL are: ``{state_dir}/mosquitto/{passwd,acl}``."""
    base = Path(state_dir) / "mosquitto"
    return base / "passwd", base / "acl"


def write_broker_users(state_dir: Path, *, agents: list[str], centres: list[str],
                       gateways: Iterable[str] = (GATEWAY_USER,)) -> tuple[Path, Path]:
    """Write the password file and the ACL for these users (mosquitto reads them again on SIGHUP)."""
    state_dir = Path(state_dir)
    gateways = list(gateways)
    users = broker_users(agents, centres, gateways)
    password_file, acl_file = broker_files(state_dir)
    password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_password_file(password_file, {user: mqtt_password(state_dir, user) for user in users})
    _write_private(acl_file, render_acl(agents=agents, centres=centres, gateways=gateways))
    return password_file, acl_file


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
