"""The push to the provincial platform as the ``[export]`` section configures it (`hotline run`)."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from datetime import datetime

from gateway.config_office import ExportSection
from gateway.export.platform import HTTPSPlatform, tls_context
from gateway.export.pusher import PlatformPusher, PushSettings
from gateway.export.records import ExportOptions
from gateway.store.database import Store

__all__ = ["start_configured_push"]

log = logging.getLogger(__name__)


async def start_configured_push(section: ExportSection, store: Store, *, clock: Callable[[], datetime],
                                node: str = "") -> PlatformPusher | None:
    """The running pusher for ``section``, or None when no endpoint is configured or its CA file cannot be used
    (logged: the calls go on without the export, which resumes from its cursor once fixed). Close it before the
    store."""
    if not section.endpoint:
        log.info("event=export_push_off reason=no_endpoint")
        return None
    try:
        tls = await asyncio.to_thread(tls_context, section.ca_file)
    except (OSError, ssl.SSLError) as exc:
        log.error("event=export_push_off reason=ca_file_unusable ca_file=%s error=%r", section.ca_file, str(exc))
        return None
    platform = HTTPSPlatform(section.endpoint, tls=tls, timeout_s=section.timeout_s, token_env=section.token_env)
    options = ExportOptions(source=section.source, full_numbers=section.full_numbers,
                            include_restriction_audit=section.include_restriction_audit)
    settings = PushSettings(interval_s=section.interval_s, batch_size=section.batch_size, settle_s=section.settle_s,
                            open_limit_s=section.open_limit_s, retry_max_s=section.retry_max_s,
                            lease_s=2 * section.timeout_s + 30)
    pusher = PlatformPusher(store, platform, options, settings, clock=clock,
                            holder=f"{node or socket.gethostname()}:{os.getpid()}")
    pusher.on_close(platform.close)
    pusher.start()
    log.info("event=export_push_started host=%s interval_s=%g batch_size=%d numbers=%s restriction_audit=%s",
             platform.host, section.interval_s, section.batch_size, options.numbers,
             "yes" if options.include_restriction_audit else "no")
    return pusher
