"""mosquitto 2.0's password hashes, computed in Python: PBKDF2-HMAC-SHA512 in its ``$7$`` form.

A password file line is ``user:$7$<iterations>$<base64 salt>$<base64 hash>`` with a 12-byte salt and a 64-byte
hash, as mosquitto_passwd 2.0 writes it (checked against its output) and the broker reads it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["ITERATIONS", "hash_password", "password_file_line", "verify_password"]

# mosquitto_passwd's default. The passwords are 192-bit random tokens (gateway.mqtt.passwords): the iteration
# count adds nothing against guessing them, and every extra one costs the broker CPU on each connect.
ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$...`` hash of ``password`` (a fresh random salt unless one is given)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file_line(user: str, password: str) -> str:
    """One line of mosquitto's password file (without the newline)."""
    if not user or ":" in user or any(c.isspace() for c in user):
        raise ValueError(f"invalid MQTT user name for the password file: {user!r}")
    return f"{user}:{hash_password(password)}"


def verify_password(password: str, hashed: str) -> bool:
    """True if ``hashed`` (a ``$7$`` hash) is the hash of ``password``; False for any other or malformed hash."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), base64.b64decode(salt, validate=True),
                                  int(iterations), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)
