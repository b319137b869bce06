"""The pieces that read and check a configuration table: the problems found, and typed access that collects them
all instead of stopping at the first."""
from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ConfigProblem", "SettingsReader", "is_host_port", "is_ip", "is_port", "is_zone", "merge_tables",
           "with_extended_file"]


@dataclass(frozen=True)
class ConfigProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def merge_tables(base: dict[str, Any], over: dict[str, Any], prefix: str, problems: list[ConfigProblem]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        field = f"{prefix}{key}"
        if key not in base:
            problems.append(ConfigProblem(field, "unknown setting"))
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                problems.append(ConfigProblem(field, "must be a table"))
            else:
                out[key] = merge_tables(base[key], value, f"{field}.", problems)
        else:
            out[key] = value
    return out


def with_extended_file(defaults: dict[str, Any], overrides: dict[str, Any],
                       problems: list[ConfigProblem]) -> dict[str, Any]:
    """The defaults with the file that ``overrides`` names in ``extends`` (which is taken out) merged over them.

    A node's file names the office's file and holds only what differs (`hotline stack up --nodes N`)."""
    base = overrides.pop("extends", None)
    if base is None:
        return defaults
    try:
        if not isinstance(base, str):
            raise ValueError("must be the path of another config file")
        return merge_tables(defaults, tomllib.loads(Path(base).read_text(encoding="utf-8")), "", problems)
    except (OSError, UnicodeDecodeError, ValueError, tomllib.TOMLDecodeError) as exc:
        problems.append(ConfigProblem("extends", f"cannot be read: {exc}"))
        return defaults


class SettingsReader:
    """Typed access to the merged tables that collects every problem instead of stopping at the first."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[ConfigProblem] = []

    def get(self, dotted: str, kind: type, *, check=None, reason: str = "") -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            node = node[part]
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            self.problems.append(ConfigProblem(dotted, f"must be {kind.__name__}, got {type(node).__name__}"))
            return None
        if check is not None and not check(node):
            self.problems.append(ConfigProblem(dotted, reason))
            return None
        return node


def is_port(v: int) -> bool:
    return 0 < v < 65536


def is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def is_host_port(v: str) -> bool:
    """``IP:port`` (IPv4) or ``[IPv6]:port``."""
    host, sep, port = v.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bool(sep) and port.isdigit() and is_port(int(port)) and is_ip(host)


def is_zone(v: str) -> bool:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory such as "Asia"
        return False
    return True
