"""`hotline run`: one asyncio process serving FastAGI and holding the AMI connection."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from gateway.contract import CALL_ID_VAR
from ami_handlers.client.connection import AMIConnection
from ami_handlers.queue_events import QueueEventRecorder
from gateway.callflow import CallFlow, CallFlowSettings
from gateway.config import Config
from gateway.console.app import create_console_app
from gateway.agi.server import FastAGIServer
from gateway.store.database import Store
from ami_handlers.queue_events import channel_vars
from ami_handlers.screenpop import ScreenPopper
from gateway.mqtt.passwords import mqtt_password
from gateway.mqtt.publisher import MQTTPublisher
from gateway.store.outbox import Outbox
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.capture import SpeechCapture
from ivr.menu import load_menu, validate_prompts
from ivr.triage.prefill import TicketPrefill
from ivr.speech.recorded_capture import transcribe_recording
from ivr.prompts import load_catalogue
from ivr.speech.recogniser import recogniser_from_config
from ivr.speech.vad import VADSettings
from linkage.agent_transfer import AgentTransfer, centre_choices
from linkage.handoff import LinkageHandoff
from linkage.push import HTTPPush, Pusher
from linkage.reloader import EmergencyListHolder

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
        self.audiosocket: AudioSocketServer | None = None
        self.capture: SpeechCapture | None = None
        self.console: web.AppRunner | None = None
        self.publisher: MQTTPublisher | None = None
        self.screenpopper: ScreenPopper | None = None
        self.recogniser = None
        self.prefill: TicketPrefill | None = None
        self._background: set[asyncio.Task] = set()
        self.emergencies: EmergencyListHolder | None = None
        self.pusher: Pusher | None = None
        self.linkage: LinkageHandoff | None = None
        self.agent_transfer: AgentTransfer | None = None
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
        outbox = Outbox(self.store, clock=utc_now)
        self.publisher = MQTTPublisher(self.store, host=cfg.mqtt.host, port=cfg.mqtt.port, username="gateway",
                                       password=mqtt_password(cfg.state_dir, "gateway"))
        outbox.on_added(self.publisher.wake)
        await self.publisher.start()
        self.screenpopper = ScreenPopper(self.store, outbox, clock=utc_now)
        self.emergencies = EmergencyListHolder(cfg.linkage.emergency_list)
        await self.emergencies.start()
        self.pusher = Pusher(self.store, outbox=outbox, http=HTTPPush())
        self.linkage = LinkageHandoff(self.store, self._emergency_list, self.pusher, clock=utc_now,
                                      ami=self.ami)
        self.ami.on_event("UserEvent", self.linkage.on_event)
        self.agent_transfer = AgentTransfer(self.ami, self.store, self._emergency_list, self.pusher,
                                            clock=utc_now, caller_profile="hotline_caller")
        self.agent_transfer.attach(self.ami)
        if cfg.speech.enabled:
            await self._start_capture()
        self.ami.on_event("AgentConnect", self._on_agent_connect)
        await self.ami.connect()
        flow = CallFlow(self.store, menu, CallFlowSettings(
            prompt_dir=cfg.ivr.asterisk_prompt_dir, deadline_s=cfg.gateway.call_deadline_s, tz=cfg.gateway.tz,
            capture_mode=self.capture.mode if self.capture else (lambda: None),
            restricted_emergency_key=cfg.restriction.emergency_key), clock=utc_now, linkage=self.linkage)
        self.fastagi = FastAGIServer({"entry": flow.entry}, host=cfg.fastagi.host, port=cfg.fastagi.port,
                                     command_timeout=cfg.fastagi.command_timeout_s,
                                     header_timeout=cfg.fastagi.header_timeout_s)
        await self.fastagi.start()
        await self._start_console()
        log.info("event=started fastagi=%s:%s ami=%s:%s store=%s", cfg.fastagi.host, self.fastagi.port,
                 cfg.ami.host, cfg.ami.port, cfg.store.path)

    def _emergency_list(self):
        """The emergency list in force (the holder swaps in a new one when the file changes)."""
        return self.emergencies.current

    async def _start_capture(self) -> None:
        cfg = self.config
        recogniser = recogniser_from_config(str(cfg.speech.model) if cfg.speech.model else None)
        if recogniser is not None:
            await recogniser.load()
        self.recogniser = recogniser
        self.prefill = TicketPrefill(self.store, recordings_dir=cfg.speech.recordings_dir, clock=utc_now,
                                     emergencies=self._emergency_list,
                                     on_emergency=self.linkage.offer_from_speech)
        vad = VADSettings(end_silence_ms=cfg.speech.end_silence_ms, no_speech_ms=cfg.speech.no_speech_ms,
                          max_ms=cfg.speech.max_seconds * 1000)
        self.capture = SpeechCapture(
            self.ami, audiosocket_host=cfg.speech.audiosocket_host, audiosocket_port=lambda: self.audiosocket.port,
            recogniser=recogniser, vad=vad, prompt_pcm=await asyncio.to_thread(_prompt_pcm, cfg, "describe_matter"),
            on_result=self.prefill, forced_mode=cfg.speech.capture)
        self.audiosocket = AudioSocketServer(self.capture.handle_connection, host=cfg.speech.audiosocket_host,
                                             port=cfg.speech.audiosocket_port)
        self.capture.attach(self.ami)
        try:
            await self.audiosocket.start()
        except OSError as exc:
            # e.g. the port is taken: Asterisk records the callers instead (the fallback); nothing is lost
            log.error("event=audiosocket_unavailable error=%r fallback=record", str(exc))
            self.capture.use_recording_only()
            self.audiosocket = None
            return
        log.info("event=speech_capture_ready audiosocket=%s:%s model=%s mode=%s", cfg.speech.audiosocket_host,
                 self.audiosocket.port, "yes" if recogniser else "none", self.capture.mode())

    async def _start_console(self) -> None:
        cfg = self.config
        app = create_console_app(store=self.store, state_dir=cfg.state_dir, agents=[a.name for a in cfg.agents],
                                 ws_url=f"ws://{cfg.mqtt.host}:{cfg.mqtt.ws_port}/mqtt", clock=utc_now,
                                 transfer=self.agent_transfer.transfer,
                                 centres=centre_choices(self._emergency_list))
        self.console = web.AppRunner(app, access_log=None)
        await self.console.setup()
        await web.TCPSite(self.console, cfg.console.host, cfg.console.port, backlog=128).start()
        log.info("event=console_ready url=http://%s:%s/", cfg.console.host, cfg.console.port)

    async def _on_agent_connect(self, event) -> None:
        """An agent answered: end the caller's description at once and file it, then pop the ticket."""
        call_id = channel_vars(event).get(CALL_ID_VAR)
        if not call_id:
            return
        session = await self.capture.finish_for_call(call_id) if self.capture is not None else None
        await self.screenpopper.handle(event)
        if self.capture is not None and session is None:
            # No live capture: Asterisk may have recorded the caller instead. Recognising the file takes longer
            # than an agent should wait, so the pop went first and an updated pop follows.
            task = asyncio.create_task(self._recorded_capture(call_id, event))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _recorded_capture(self, call_id: str, event) -> None:
        try:
            hold_s = float(event.get("HoldTime") or 0) + 1.0
        except ValueError:
            hold_s = float(self.config.speech.max_seconds)
        try:
            result = await transcribe_recording(self.config.speech.local_recording_dir, call_id, hold_s=hold_s,
                                                recogniser=self.recogniser)
            if result is None:
                return
            await self.prefill(result)
            await self.screenpopper.handle(event)
        except Exception:  # noqa: BLE001 - a lost transcript, not a lost call
            log.exception("call=%s event=recorded_capture_failed", call_id)

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "fastagi_listening": self.fastagi is not None,
            "fastagi_port": self.fastagi.port if self.fastagi else None,
            "active_sessions": self.fastagi.active_sessions if self.fastagi else 0,
            "ami_ready": bool(self.ami and self.ami.ready),
            "ami_reconnects": self.ami.reconnects if self.ami else 0,
            "mqtt_connected": bool(self.publisher and self.publisher.connected),
            "console_listening": self.console is not None,
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
            key = (current["ami_ready"], current["active_sessions"], current["ami_reconnects"],
                   current["mqtt_connected"])
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
        if self.console:
            await self.console.cleanup()
        if self.pusher:
            await self.pusher.close()
        if self.emergencies:
            await self.emergencies.close()
        if self.publisher:
            await self.publisher.close()
        if self.capture:
            await self.capture.close()
        if self.audiosocket:
            await self.audiosocket.close()
        if self.ami:
            await self.ami.close()
        if self.store:
            await self.store.close()
        self.status_file.unlink(missing_ok=True)


def _prompt_pcm(config: Config, name: str) -> bytes:
    """The raw 8 kHz 16-bit frames of a generated prompt (empty if it has not been built)."""
    import wave
    try:
        with wave.open(str(config.prompt_build_dir / f"{name}.wav")) as w:
            return w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error):
        log.warning("event=prompt_missing prompt=%s", name)
        return b""


async def serve(config: Config) -> int:
    service = GatewayService(config)
    try:
        await service.start()
        await service.run_forever()
    finally:
        await service.close()
    return 0
