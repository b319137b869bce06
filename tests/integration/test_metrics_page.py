"""The metrics page over HTTP (aiohttp on a loopback port, in the test's event loop): fetched as Prometheus would,
parsed with prometheus_client's parser; AMI state from a live connection to a fake AMI server; queue events
through the real recorder on that connection. No Asterisk needed."""
from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ami_handlers.queue_events import QueueEventRecorder
from gateway.config_office import MetricsSection
from gateway.metrics.headline import fetch_headline
from gateway.metrics.page import CONTENT_TYPE, start_metrics_page
from gateway.metrics.registry import HotlineMetrics
from gateway.store.database import Store
from tests.integration.test_ami_connection import FakeAMIServer, make_client

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def scrape(port: int) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE
            text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def until(predicate, timeout: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.db")
    yield s
    await s.close()


async def test_the_page_counts_queue_events_from_a_live_ami_connection_and_its_reconnect(store):
    metrics, port = HotlineMetrics(), free_port()
    ami_server = await FakeAMIServer().start()
    ami = make_client(ami_server.port)
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    recorder.attach(ami)
    metrics.watch(ami=ami, store=store)
    runner = await start_metrics_page(MetricsSection(host="127.0.0.1", port=port), metrics)
    assert runner is not None
    try:
        assert value(await scrape(port), "hotline_ami_connected") == 0
        await ami.connect()
        assert await ami.wait_ready(2)
        variables = "ChanVariable: HOTLINE_CALL_ID=1772442000.7\r\n"
        await ami_server.push(f"Event: QueueCallerJoin\r\nQueue: hotline\r\n{variables}\r\n".encode())
        assert await recorder.wait_processed(1, 2)
        await asyncio.sleep(1.2)          # a wait in the histogram's 1-2 s bucket
        await ami_server.push(f"Event: AgentConnect\r\nMemberName: PJSIP/agent1\r\nHoldTime: 1\r\n{variables}\r\n"
                              f"Event: AgentComplete\r\nMemberName: PJSIP/agent1\r\n{variables}\r\n".encode())
        assert await recorder.wait_processed(3, 2)
        await store.outbox_add("hotline/agents/agent1/screenpop", {"x": 1}, message_id="m1", at=NOW)
        samples = await scrape(port)
        assert value(samples, "hotline_ami_connected") == 1
        assert value(samples, "hotline_ami_reconnects_total") == 0
        assert value(samples, "hotline_calls_total", outcome="queued") == 1
        assert value(samples, "hotline_calls_total", outcome="answered") == 1
        assert value(samples, "hotline_calls_in_progress") == 0
        assert value(samples, "hotline_queue_wait_seconds_count") == 1
        assert value(samples, "hotline_queue_wait_seconds_bucket", le="1.0") == 0
        assert value(samples, "hotline_queue_wait_seconds_bucket", le="2.0") == 1
        assert value(samples, "hotline_outbox_depth") == 1

        ami_port = ami_server.port
        await ami_server.stop()                     # Asterisk restarting
        assert await until(lambda: not ami.ready)
        assert value(await scrape(port), "hotline_ami_connected") == 0
        ami_server = await FakeAMIServer(ami_port).start()
        assert await ami.wait_ready(3)
        samples = await scrape(port)
        assert (value(samples, "hotline_ami_connected"), value(samples, "hotline_ami_reconnects_total")) == (1, 1)

        # what `hotline stack status` reads: the same page from outside the loop
        figures = await asyncio.to_thread(fetch_headline, "127.0.0.1", port)
        assert figures == {"url": f"http://127.0.0.1:{port}/metrics", "calls_in_progress": 0, "answered": 1,
                           "abandoned": 0, "refused": 0, "outbox_depth": 1, "ami_connected": True,
                           "loop_lag_ms": 0.0}
    finally:
        await runner.cleanup()
        await ami.close()
        await ami_server.stop()
    assert (await asyncio.to_thread(fetch_headline, "127.0.0.1", port))["reachable"] is False


async def test_a_taken_port_leaves_the_gateway_without_a_page_but_running(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="gateway.metrics.page"):
            assert await start_metrics_page(MetricsSection(host="127.0.0.1", port=port), HotlineMetrics()) is None
    assert "event=metrics_unavailable" in caplog.text


async def test_port_0_serves_no_page():
    assert await start_metrics_page(MetricsSection(host="127.0.0.1", port=0), HotlineMetrics()) is None
    assert fetch_headline("127.0.0.1", 0) == {"enabled": False}


async def test_only_the_metrics_path_is_served():
    metrics, port = HotlineMetrics(), free_port()
    runner = await start_metrics_page(MetricsSection(host="127.0.0.1", port=port), metrics)
    try:
        async with aiohttp.ClientSession() as http:
            for path, status in (("/", 404), ("/metrics/../secrets", 404), ("/metrics", 200)):
                async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == status, path
            async with http.post(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 405
    finally:
        await runner.cleanup()
