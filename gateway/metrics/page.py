"""The metrics page: ``GET /metrics`` in Prometheus' text format, served by aiohttp on the gateway's own event
loop (no thread), on ``[metrics] host:port`` (loopback by default: the office's scraper, not the world)."""
from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from aiohttp import web
from prometheus_client import generate_latest

from gateway.config_office import MetricsSection
from gateway.console.request_errors import console_server_logger
from gateway.metrics.registry import HotlineMetrics

__all__ = ["CONTENT_TYPE", "create_metrics_app", "start_metrics", "start_metrics_page"]

log = logging.getLogger(__name__)

# The classic text format that generate_latest writes (prometheus_client's own "latest" names a newer version).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_metrics_app(metrics: HotlineMetrics) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        await metrics.refresh()
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE,
                                                                             "Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/metrics", page)
    return app


async def start_metrics_page(section: MetricsSection, metrics: HotlineMetrics) -> web.AppRunner | None:
    """Serve the page; None when ``port`` is 0 (off) or the port cannot be had (logged: the calls go on without
    metrics). The runner's ``cleanup`` stops it."""
    if section.port == 0:
        log.info("event=metrics_disabled")
        return None
    runner = web.AppRunner(create_metrics_app(metrics), access_log=None, logger=console_server_logger())
    await runner.setup()
    try:
        await web.TCPSite(runner, section.host, section.port, backlog=16).start()
    except OSError as exc:
        await runner.cleanup()
        log.error("event=metrics_unavailable host=%s port=%s error=%r", section.host, section.port, str(exc))
        return None
    log.info("event=metrics_ready url=http://%s:%s/metrics", section.host, section.port)
    return runner


async def start_metrics(section: MetricsSection, stack: AsyncExitStack) -> HotlineMetrics:
    """The service's metrics, on a registry of their own, with their page served (unless off) and its close on
    ``stack``. The service hands ``tracker``, ``screenpops`` and the hooks to its parts, then calls ``watch``."""
    metrics = HotlineMetrics()
    runner = await start_metrics_page(section, metrics)
    if runner is not None:
        stack.push_async_callback(runner.cleanup)
    return metrics
