"""The metrics page of the stack's gateway after a real call: a sipp caller keys 3 through Asterisk, a sipp agent
answers; the page (fetched over HTTP, parsed with prometheus_client's parser) has counted the answered call, its
queue wait and its screen-pop latency, and the call is no longer in progress once it ended. `hotline stack status`
shows the same figures."""
from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.sandbox.processes import wait_until

pytestmark = pytest.mark.integration


def scrape(config) -> dict[tuple[str, tuple], float]:
    url = f"http://{config.metrics.host}:{config.metrics.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_real_answered_call_is_counted_on_the_gateways_metrics_page(sandbox, agents):
    cfg = sandbox.config
    before = scrape(cfg)
    assert value(before, "hotline_ami_connected") == 1

    result = sandbox.call("13800138031", "3", hold_s=6)
    assert result["answered_by"] in ("agent1", "agent2"), result

    def counted() -> bool:
        now = scrape(cfg)
        return (value(now, "hotline_calls_total", outcome="answered") == value(
                    before, "hotline_calls_total", outcome="answered") + 1
                and value(now, "hotline_screenpop_latency_seconds_count") == value(
                    before, "hotline_screenpop_latency_seconds_count") + 1
                and value(now, "hotline_calls_in_progress") == value(before, "hotline_calls_in_progress"))

    assert wait_until(counted, 20), scrape(cfg)
    after = scrape(cfg)
    for outcome in ("queued", "answered"):
        assert value(after, "hotline_calls_total", outcome=outcome) == value(
            before, "hotline_calls_total", outcome=outcome) + 1, outcome
    assert value(after, "hotline_calls_total", outcome="abandoned") == value(
        before, "hotline_calls_total", outcome="abandoned")
    # the wait: from QueueCallerJoin to AgentConnect, once; the agents answer within their ring time
    assert value(after, "hotline_queue_wait_seconds_count") == value(before, "hotline_queue_wait_seconds_count") + 1
    waited = value(after, "hotline_queue_wait_seconds_sum") - value(before, "hotline_queue_wait_seconds_sum")
    assert 0 < waited < 30
    assert value(after, "hotline_queue_wait_seconds_bucket", le="+Inf") == value(
        before, "hotline_queue_wait_seconds_bucket", le="+Inf") + 1
    # the pop reached the broker well within a second of the answer on this rig
    popped = value(after, "hotline_screenpop_latency_seconds_sum") - value(before,
                                                                          "hotline_screenpop_latency_seconds_sum")
    assert 0 < popped < 2
    assert value(after, "hotline_screenpop_latency_seconds_bucket", le="2.0") == value(
        before, "hotline_screenpop_latency_seconds_bucket", le="2.0") + 1
    assert value(after, "hotline_outbox_depth") == 0
    assert value(after, "hotline_event_loop_lag_seconds_count") > value(before, "hotline_event_loop_lag_seconds_count")

    status = json.loads(sandbox.hotline("stack", "status", "--json", check=False).stdout)
    figures = status["metrics"]
    assert figures["answered"] == value(after, "hotline_calls_total", outcome="answered")
    assert (figures["ami_connected"], figures["outbox_depth"]) == (True, 0)
    assert figures["calls_in_progress"] == value(after, "hotline_calls_in_progress")
    assert set(figures) >= {"refused", "abandoned", "loop_lag_ms"}
    text = sandbox.hotline("stack", "status", check=False).stdout
    assert f"answered={figures['answered']}" in text
