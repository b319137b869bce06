"""The hotline office's settings: the daily figures and the nuisance review (``[office]``), the Prometheus metrics
page (``[metrics]``) and the export to the provincial platform (``[export]``; Zhanjiang 12345 rules, art. 5, 9, 19)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config_checks import SettingsReader, is_ip, is_port

__all__ = ["ExportSection", "MetricsSection", "OfficeSection", "read_export", "read_metrics", "read_office"]

_SOURCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class OfficeSection:
    timely_answer_s: int          # an answer within this many seconds of joining the queue is timely (GB/T 33358)
    nuisance_calls_per_day: int   # a number with at least this many calls in one day goes on the review list (art. 9)
    nuisance_silent_calls: int    # ... or with at least this many silent calls within nuisance_window_days
    nuisance_window_days: int


@dataclass(frozen=True)
class MetricsSection:
    host: str                     # the Prometheus page listens here (loopback: the office's scraper, not the world)
    port: int                     # 0: no metrics page


@dataclass(frozen=True)
class ExportSection:
    endpoint: str                 # the provincial platform's HTTPS URL for the scheduled push ("" = no push)
    source: str                   # this hotline's name in every record id ("<source>:call:<call id>")
    interval_s: float             # how often the push looks for records that became final
    batch_size: int               # records in one POST at most
    timeout_s: float              # one POST waits this long for the platform's answer
    retry_max_s: float            # a failed POST is retried after 1 s, doubling up to this
    token_env: str                # the environment variable holding the bearer token ("" = no Authorization)
    ca_file: Path | None          # PEM CA file to trust for the endpoint instead of the system's (None: system's)
    full_numbers: bool            # full caller numbers to the platform (and allowed to `hotline export --full`)
    include_restriction_audit: bool
    settle_s: float               # a record goes out only once its time is this much in the past
    open_limit_s: float           # a call or ticket still open this long after it began goes out as it stands


def read_office(r: SettingsReader) -> OfficeSection:
    positive = dict(check=lambda v: v > 0, reason="must be greater than 0")
    return OfficeSection(
        timely_answer_s=r.get("office.timely_answer_s", int, check=lambda v: 1 <= v <= 600, reason="must be 1-600"),
        nuisance_calls_per_day=r.get("office.nuisance_calls_per_day", int, **positive),
        nuisance_silent_calls=r.get("office.nuisance_silent_calls", int, **positive),
        nuisance_window_days=r.get("office.nuisance_window_days", int, check=lambda v: 1 <= v <= 90,
                                   reason="must be 1-90 natural days"))


def read_metrics(r: SettingsReader) -> MetricsSection:
    return MetricsSection(host=r.get("metrics.host", str, check=is_ip, reason="must be an IP address"),
                          port=r.get("metrics.port", int, check=lambda v: v == 0 or is_port(v),
                                     reason="must be 0 (off) or a TCP port 1-65535"))


def read_export(r: SettingsReader) -> ExportSection:
    def seconds(key: str, low: float, high: float) -> float:
        return r.get(f"export.{key}", float, check=lambda v: low <= v <= high, reason=f"must be {low:g}-{high:g} s")

    ca_file = r.get("export.ca_file", str, check=lambda v: v == "" or Path(v).is_file(),
                    reason='must be "" (the system\'s CAs) or an existing PEM file')
    return ExportSection(
        endpoint=r.get("export.endpoint", str, check=_is_https_url, reason='must be "" or an https:// URL'),
        source=r.get("export.source", str, check=_SOURCE.fullmatch,
                     reason="must be 1-40 lower-case letters, digits, '-' or '_' (the start a letter or digit)"),
        interval_s=seconds("interval_s", 1, 86_400),
        batch_size=r.get("export.batch_size", int, check=lambda v: 1 <= v <= 5000, reason="must be 1-5000"),
        timeout_s=seconds("timeout_s", 1, 600),
        retry_max_s=seconds("retry_max_s", 1, 3600),
        token_env=r.get("export.token_env", str, check=lambda v: v == "" or _ENV_NAME.fullmatch(v),
                        reason='must be "" (no token) or an environment variable name'),
        ca_file=Path(ca_file) if ca_file else None,
        full_numbers=r.get("export.full_numbers", bool),
        include_restriction_audit=r.get("export.include_restriction_audit", bool),
        # at least a second: two gateways' clocks and the commit of a row a moment after its time (docs/export.md)
        settle_s=seconds("settle_s", 1, 3600),
        open_limit_s=seconds("open_limit_s", 60, 7 * 86_400),
    )


def _is_https_url(v: str) -> bool:
    if v == "":
        return True
    try:
        url = urlsplit(v)
        _ = url.port    # a bad port raises ValueError
    except ValueError:
        return False
    return url.scheme == "https" and bool(url.hostname) and not url.username and " " not in v
