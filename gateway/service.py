"""`hotline run`: one asyncio process serving FastAGI and holding the AMI connection."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

from ami_handlers.connection import AMIConnection
from ami_handlers.queue_events import QueueEventRecorder
from gateway.callflow import CallFlow, CallFlowSettings
from gateway.config import Config
from gateway.fastagi import FastAGIServer
from gateway.store import Store
from ivr.menu import load_menu, validate_prompts
from ivr.prompts import load_catalogue

log = logging.getLogger("gateway.service")
STATUS_INTERVAL_S = 0.5


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class GatewayService:
    """Wires store, AMI, call flow and FastAGI together; reports readiness in a status file."""

    def __init__(self, config: Config, *, status_file: Path | None = None) -> None:
        self.config = config
        self.status_file = status_file or config.state_dir / "run" / "gateway.status.json"
        self.store: Store | None = None
        self.ami: AMIConnection | None = None
        self.fastagi: FastAGIServer | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        menu = load_menu(cfg.ivr.menu)
        validate_prompts(menu, load_catalogue(cfg.ivr.prompt_catalogue))
        self.store = await Store.open(cfg.store.path)
        self.ami = AMIConnection(host=cfg.ami.host, port=cfg.ami.port, username=cfg.ami.username,
                                 secret=cfg.ami_secret(), reconnect_min=cfg.ami.reconnect_min_s,
                                 reconnect_max=cfg.ami.reconnect_max_s)
        QueueEventRecorder(self.store, clock=utc_now).attach(self.ami)
        await self.ami.connect()
        flow = CallFlow(self.store, menu, CallFlowSettings(prompt_dir=cfg.ivr.asterisk_prompt_dir,
                                                           deadline_s=cfg.gateway.call_deadline_s,
                                                           tz=cfg.gateway.tz), clock=utc_now)
        self.fastagi = FastAGIServer({"entry": flow.entry}, host=cfg.fastagi.host, port=cfg.fastagi.port,
                                     command_timeout=cfg.fastagi.command_timeout_s,
                                     header_timeout=cfg.fastagi.header_timeout_s)
        await self.fastagi.start()
        log.info("event=started fastagi=%s:%s ami=%s:%s store=%s", cfg.fastagi.host, self.fastagi.port,
                 cfg.ami.host, cfg.ami.port, cfg.store.path)

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "fastagi_listening": self.fastagi is not None,
            "fastagi_port": self.fastagi.port if self.fastagi else None,
            "active_sessions": self.fastagi.active_sessions if self.fastagi else 0,
            "ami_ready": bool(self.ami and self.ami.ready),
            "ami_reconnects": self.ami.reconnects if self.ami else 0,
            "updated_at": utc_now().isoformat(timespec="seconds"),
        }

    async def _write_status(self) -> None:
        text = json.dumps(self.status())
        path = self.status_file

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        await asyncio.to_thread(write)

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        last = None
        while not self._stopping.is_set():
            current = self.status()
            key = (current["ami_ready"], current["active_sessions"], current["ami_reconnects"])
            if key != last:
                await self._write_status()
                last = key
            try:
                await asyncio.wait_for(self._stopping.wait(), STATUS_INTERVAL_S)
            except TimeoutError:
                pass

    async def close(self) -> None:
        log.info("event=stopping")
        if self.fastagi:
            await self.fastagi.close()
        if self.ami:
            await self.ami.close()
        if self.store:
            await self.store.close()
        self.status_file.unlink(missing_ok=True)


async def serve(config: Config) -> int:
    service = GatewayService(config)
    try:
        await service.start()
        await service.run_forever()
    finally:
        await service.close()
    return 0
