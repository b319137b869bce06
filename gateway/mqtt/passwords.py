"""Broker passwords: one per user, generated once into ``{state_dir}/secrets/mqtt/<user>.secret`` (0600).

The gateway and each agent console read theirs from here; only the hashes reach the broker's password file
(``gateway.mqtt.broker_config``).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.contract import check_name


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


def _secret_path(state_dir: Path | str, user: str) -> Path:
    return Path(state_dir) / "secrets" / "mqtt" / f"{check_name(user, 'user')}.secret"
