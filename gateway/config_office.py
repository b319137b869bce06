"""The hotline office's settings: the daily figures and the nuisance review (``[office]``), the Prometheus metrics
page (``[metrics]``) and the export to the provincial platform (``[export]``; Zhanjiang 12345 rules, art. 5, 9, 19)."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.config_checks import SettingsReader, is_ip, is_port

__all__ = ["ExportSection", "MetricsSection", "OfficeSection", "read_export", "read_metrics", "read_office"]


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
    return ExportSection(endpoint=r.get("export.endpoint", str, check=lambda v: v == "" or v.startswith("https://"),
                                        reason='must be "" or an https:// URL'))
