"""The headline figures of a gateway's metrics page, for ``hotline stack status``: calls in progress, answered,
abandoned and refused counts, outbox depth, AMI connected, recent event-loop lag. The service never imports this
(it is read by the CLI, from outside the gateway's process)."""
from __future__ import annotations

import math
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics.registry import AMI_CONNECTED, CALLS, CALLS_IN_PROGRESS, LOOP_LAG_RECENT, OUTBOX_DEPTH, REFUSED

__all__ = ["fetch_headline", "headline"]

FETCH_TIMEOUT_S = 2.0


def headline(text: str) -> dict[str, Any]:
    """The figures from a page's text (a figure missing from it is None). Raises ValueError on a text that is not
    the Prometheus format."""
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    def count(found: float | None) -> int | None:
        return None if found is None or math.isnan(found) else int(found)

    connected, lag = value(AMI_CONNECTED), value(LOOP_LAG_RECENT)
    return {"calls_in_progress": count(value(CALLS_IN_PROGRESS)),
            "answered": count(value(f"{CALLS}_total", outcome="answered")),
            "abandoned": count(value(f"{CALLS}_total", outcome="abandoned")),
            "refused": count(value(f"{REFUSED}_total")),
            "outbox_depth": count(value(OUTBOX_DEPTH)),
            "ami_connected": None if connected is None else connected == 1,
            "loop_lag_ms": None if lag is None else round(lag * 1000, 1)}


def fetch_headline(host: str, port: int, *, timeout: float = FETCH_TIMEOUT_S) -> dict[str, Any]:
    """Read ``http://host:port/metrics`` (blocking; for the CLI) and return its headline, or what went wrong."""
    if port == 0:
        return {"enabled": False}
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read(4_000_000).decode("utf-8")
        return {"url": url, **headline(text)}
    except (OSError, urllib.error.URLError, ValueError, UnicodeDecodeError) as exc:
        return {"url": url, "reachable": False, "error": type(exc).__name__}
