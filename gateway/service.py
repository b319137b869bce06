"""`hotline run`: one asyncio process serving FastAGI and holding the AMI connection.

The wiring: `GatewayService.running` starts each part in the order it depends on the ones before (store, AMI and
the recordings filer, MQTT publisher, emergency list and linkage, speech capture, the survey and the hotline's own
calls, FastAGI, console and work-order API, the daily purge, the push to the provincial platform) and registers its
close on an `AsyncExitStack`, so shutdown runs in exactly the reverse order.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.basics.clock import utc_now
from gateway.basics.loop_lag import LoopLagMonitor, freeze_startup_objects
from gateway.contract import CALL_ID_VAR
from ami_handlers.client.connection import AMIConnection
from ami_handlers.queue_events import QueueEventRecorder
from gateway.aftercall.outbound import OutboundCalls
from gateway.aftercall.survey_flow import SurveyFlow
from gateway.announcements_in_force import AnnouncementsInForce
from gateway.callflow import CallFlow, CallFlowSettings
from gateway.config import Config
from gateway.console.app import create_console_app
from gateway.console.office_api import office_settings
from gateway.console.request_errors import console_server_logger
from gateway.export.configured import start_configured_push
from gateway.export.pusher import PlatformPusher
from gateway.basics.waiting import cancel_and_wait
from gateway.metrics.page import start_metrics
from gateway.workorder.progress import progress_lookup
from recordings.filer import CallRecordingFiler
from recordings.daily_purge import purge_recordings_daily
from gateway.workorder.status_api import create_status_app
from ivr.prompts import catalogue_units
from gateway.agi.server import FastAGIServer
from gateway.store.database import Store
from ami_handlers.queue_events import channel_vars
from ami_handlers.screenpop import ScreenPopper
from gateway.mqtt.centre_users import CentreUsers
from gateway.mqtt.passwords import mqtt_password
from gateway.mqtt.publisher import MQTTPublisher
from gateway.basics.write_health import failure_kind
from gateway.store.outbox import Outbox, SpillingOutboxStore
from gateway.basics.status_file import write_status_file
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.capture import SpeechCapture
from ivr.menu import load_menu, validate_prompts
from ivr.triage.model import ModelError, TriageModel, load_model
from ivr.triage.prefill import TicketPrefill
from ivr.speech.recorded_capture import transcribe_recording
from ivr.prompts import load_catalogue
from ivr.speech.recogniser import Recogniser, recogniser_from_config
from ivr.speech.vad import VADSettings
from linkage.agent_transfer import AgentTransfer, centre_choices
from linkage.handoff import LinkageHandoff
from linkage.push import HTTPPush, Pusher
from linkage.push_resume import resume_pending_pushes
from linkage.emergency_list import EmergencyList
from linkage.reloader import EmergencyListHolder

log = logging.getLogger("gateway.service")
STATUS_INTERVAL_S = 0.5
# Shutdown waits this long for background work (recorded captures being recognised) before the store closes; a
# recording of the longest description (speech.max_seconds) is recognised in well under it (vosk RTF ~0.2).
SHUTDOWN_GRACE_S = 10.0
# ... and this long for the MQTT publisher to send the pops still in the outbox (they are kept if it cannot).
PUBLISH_DRAIN_S = 3.0
STATUS_TARGET = "status"


@dataclass(frozen=True)
class SpeechParts:
    """Speech capture and pre-fill, when ``speech.enabled``."""
    capture: SpeechCapture
    prefill: TicketPrefill
    recogniser: Recogniser | None
    audiosocket: AudioSocketServer | None   # None: its port could not be had; Asterisk records the callers instead


class GatewayService:
    """The running gateway: every part started. Made by ``GatewayService.running``, which starts the parts in one
    sequence and closes them in the reverse order (``AsyncExitStack``) when the block ends."""

    def __init__(self, config: Config, *, status_file: Path, store: Store, ami: AMIConnection,
                 publisher: MQTTPublisher, screenpopper: ScreenPopper, fastagi: FastAGIServer,
                 speech: SpeechParts | None, background: set[asyncio.Task],
                 outbox_store: SpillingOutboxStore | None = None, loop_lag: LoopLagMonitor | None = None) -> None:
        self.config = config
        self.status_file = status_file
        self.store = store
        self.ami = ami
        self.publisher = publisher
        self.screenpopper = screenpopper
        self.fastagi = fastagi
        self.speech = speech
        self._background = background
        self.loop_lag = loop_lag or LoopLagMonitor()
        self._stopping = asyncio.Event()
        self.outbox_store = outbox_store
        self.emergencies: EmergencyListHolder | None = None
        self.filer: CallRecordingFiler | None = None
        self.exporter: PlatformPusher | None = None

    @classmethod
    @asynccontextmanager
    async def running(cls, config: Config, *, status_file: Path | None = None) -> AsyncIterator[GatewayService]:
        cfg = config
        status_file = status_file or cfg.status_file
        menu = load_menu(cfg.ivr.menu)
        validate_prompts(menu, load_catalogue(cfg.ivr.prompt_catalogue))
        async with AsyncExitStack() as stack:
            log.info("event=starting")
            stack.callback(log.info, "event=stopped")
            stack.callback(status_file.unlink, missing_ok=True)
            metrics = await start_metrics(cfg.metrics, stack)     # the Prometheus page, docs/metrics.md
            loop_lag = LoopLagMonitor(on_lag=metrics.observe_loop_lag)
            await loop_lag.start()
            stack.push_async_callback(loop_lag.close)
            store = await Store.open(cfg.store.location, **cfg.store.pool)
            stack.push_async_callback(store.close)

            ami = AMIConnection(host=cfg.ami.host, port=cfg.ami.port, username=cfg.ami.username,
                                secret=cfg.ami_secret(), reconnect_min=cfg.ami.reconnect_min_s,
                                reconnect_max=cfg.ami.reconnect_max_s)
            stack.push_async_callback(ami.close)
            QueueEventRecorder(store, clock=utc_now, observer=metrics.tracker).attach(ami)
            filer = CallRecordingFiler(store, spool=cfg.speech.local_recording_dir,
                                       recordings_dir=cfg.speech.recordings_dir, fmt=cfg.recordings.format,
                                       codec=cfg.recordings.codec, bitrate=cfg.recordings.bitrate, clock=utc_now)
            filer.attach(ami)
            stack.push_async_callback(filer.close)

            # a full state disk must not stop the screen-pops: the outbox spills to memory meanwhile
            outbox_store = SpillingOutboxStore(store)
            outbox = Outbox(outbox_store, clock=utc_now)
            publisher = MQTTPublisher(outbox_store, host=cfg.mqtt.host, port=cfg.mqtt.port,
                                      username=cfg.cluster.gateway_user,
                                      password=mqtt_password(cfg.state_dir, cfg.cluster.gateway_user),
                                      on_published=metrics.screenpops.published)
            outbox.on_added(publisher.wake)
            await publisher.start()
            stack.push_async_callback(publisher.close, PUBLISH_DRAIN_S)
            screenpopper = ScreenPopper(store, outbox, clock=utc_now, low_confidence=cfg.triage.low_confidence)

            emergencies = EmergencyListHolder(cfg.linkage.emergency_list)
            centre_users = CentreUsers(cfg.state_dir, agents=[a.name for a in cfg.agents], host=cfg.mqtt.host,
                                       port=cfg.mqtt.port, pid_file=cfg.state_dir / "run" / "mosquitto.pid",
                                       gateways=cfg.cluster.gateway_users)
            emergencies.add_check(lambda new: centre_users.ensure(new, before=emergencies.current))
            await emergencies.check_in_force()
            await emergencies.start()
            stack.push_async_callback(emergencies.close)

            def emergency_list() -> EmergencyList:
                """The emergency list in force (the holder swaps in a new one when the file changes)."""
                return emergencies.current

            pusher = Pusher(store, outbox=outbox, http=HTTPPush())
            stack.push_async_callback(pusher.close)
            await resume_pending_pushes(store, pusher, emergencies.current, clock=utc_now)
            linkage = LinkageHandoff(store, emergency_list, pusher, clock=utc_now, ami=ami, queue=cfg.queue.name,
                                     observer=metrics.tracker)
            ami.on_event("UserEvent", linkage.on_event)
            agent_transfer = AgentTransfer(ami, store, emergency_list, pusher, clock=utc_now,
                                           caller_profile="hotline_caller")
            agent_transfer.attach(ami)
            stack.push_async_callback(agent_transfer.close)

            speech = await _start_speech(cfg, stack, ami, store, linkage, emergency_list) if cfg.speech.enabled \
                else None
            background: set[asyncio.Task] = set()
            stack.push_async_callback(finish_background, background, SHUTDOWN_GRACE_S)

            spoken_units = await asyncio.to_thread(catalogue_units)   # the units whose names have a prompt
            # art. 18: sound files go where this node's Asterisk plays its prompts from (inside its root)
            announcements = AnnouncementsInForce(store, voice=cfg.ivr.espeak_voice, clock=utc_now, sound_dir=(
                cfg.asterisk.root / cfg.ivr.asterisk_prompt_dir.lstrip("/")))
            await announcements.start()
            stack.push_async_callback(announcements.close)
            flow = CallFlow(store, menu, CallFlowSettings(
                prompt_dir=cfg.ivr.asterisk_prompt_dir, deadline_s=cfg.gateway.call_deadline_s, tz=cfg.gateway.tz,
                capture_mode=speech.capture.mode if speech else (lambda: None),
                restricted_emergency_key=cfg.restriction.emergency_key), clock=utc_now, linkage=linkage,
                lookup_ticket=progress_lookup(store.ticket_status, spoken_units), announcements=announcements,
                calls=metrics.tracker)
            surveys = SurveyFlow(store, menu.survey, prompt_dir=cfg.ivr.asterisk_prompt_dir, clock=utc_now)
            fastagi = FastAGIServer({"entry": flow.entry, "survey": surveys.intake,
                                     "return_call": surveys.return_call}, host=cfg.fastagi.host, port=cfg.fastagi.port,
                                    command_timeout=cfg.fastagi.command_timeout_s,
                                    header_timeout=cfg.fastagi.header_timeout_s)
            service = cls(cfg, status_file=status_file, store=store, ami=ami, publisher=publisher,
                          screenpopper=screenpopper, fastagi=fastagi, speech=speech, background=background,
                          outbox_store=outbox_store, loop_lag=loop_lag)
            service.emergencies = emergencies
            ami.on_event("AgentConnect", service._on_agent_connect)
            metrics.watch(ami=ami, loop_lag=loop_lag, store=store, spill=outbox_store, speech=speech)
            outbound = OutboundCalls(ami, store, cfg.aftercall, hotline_number=cfg.sip.hotline_number,
                                     tz=cfg.gateway.tz, clock=utc_now)
            outbound.attach()
            await ami.connect()
            await outbound.start()
            stack.push_async_callback(outbound.close)
            await fastagi.start()
            stack.push_async_callback(fastagi.close)
            console = await _start_console(cfg, store, agent_transfer.transfer, centre_choices(emergency_list),
                                           outbound.call_back)
            stack.push_async_callback(console.cleanup)
            workorder_api = await _start_workorder_api(cfg, store)
            if workorder_api is not None:
                stack.push_async_callback(workorder_api.cleanup)
            filer.start_sweeping()
            service.filer = filer
            purging = asyncio.get_running_loop().create_task(purge_recordings_daily(
                store, cfg.speech.recordings_dir, cfg.speech.local_recording_dir,
                retention_days=cfg.recordings.retention_days), name="recordings-purge")
            stack.push_async_callback(cancel_and_wait, purging)
            # the push to the provincial platform (art. 19): a background task, closed before the store
            service.exporter = await start_configured_push(cfg.export, store, clock=utc_now, node=cfg.cluster.name)
            if service.exporter is not None:
                stack.push_async_callback(service.exporter.close)
            log.info("event=started fastagi=%s:%s ami=%s:%s store=%s frozen_objects=%d", cfg.fastagi.host,
                     fastagi.port, cfg.ami.host, cfg.ami.port, store.target, freeze_startup_objects())
            try:
                yield service
            finally:
                service._stopping.set()
                log.info("event=stopping")

    async def _on_agent_connect(self, event) -> None:
        """An agent answered: end the caller's description at once and file it, then pop the ticket."""
        call_id = channel_vars(event).get(CALL_ID_VAR)
        if not call_id:
            return
        capture = self.speech.capture if self.speech else None
        session = await capture.finish_for_call(call_id) if capture is not None else None
        await self.screenpopper.handle(event)
        if capture is not None and session is None and not self._stopping.is_set():
            # No live capture: Asterisk may have recorded the caller instead. Recognising the file takes longer
            # than an agent should wait, so the pop went first and an updated pop follows.
            task = asyncio.create_task(self._recorded_capture(call_id, event), name=f"recorded-capture-{call_id}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _recorded_capture(self, call_id: str, event) -> None:
        try:
            hold_s = float(event.get("HoldTime") or 0) + 1.0
        except (TypeError, ValueError):   # TypeError: a repeated header comes as a list
            hold_s = float(self.config.speech.max_seconds)
        try:
            # recorded by the gateway's own spy (every recogniser stream was busy): filed once recognised
            if await self.speech.capture.take_recording(call_id):
                await self.screenpopper.handle(event)
                return
            result = await transcribe_recording(self.config.speech.local_recording_dir, call_id, hold_s=hold_s,
                                                recogniser=self.speech.recogniser)
            if result is None:
                return
            await self.speech.prefill(result)
            await self.screenpopper.handle(event)
        except asyncio.CancelledError:
            # The gateway is stopping and its grace ran out: the agent has the first pop, without the transcript.
            log.warning("call=%s event=recorded_capture_cancelled reason=shutdown", call_id)
            raise
        except Exception:  # noqa: BLE001 - a lost transcript, not a lost call
            log.exception("call=%s event=recorded_capture_failed", call_id)

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "fastagi_listening": True,
            "fastagi_port": self.fastagi.port,
            "active_sessions": self.fastagi.active_sessions,
            "ami_ready": self.ami.ready,
            "ami_reconnects": self.ami.reconnects,
            "ami_event_backlog": self.ami.event_backlog,
            "recordings_filing": self.filer.pending if self.filer else 0,
            "mqtt_connected": self.publisher.connected,
            "console_listening": True,
            # the state disk: writes refused (store, status file, recordings) and pops waiting in memory
            "state_writes": {**self.store.health.snapshot(),
                             "outbox_in_memory": self.outbox_store.spilled if self.outbox_store else 0},
            **self._speech_status(),
            "emergency_list": self.emergencies.status() if self.emergencies else None,
            "export": self.exporter.status() if self.exporter else None,
            **self.loop_lag.status(),
            "updated_at": utc_now().isoformat(timespec="seconds"),
        }

    def _speech_status(self) -> dict:
        """Captures registered, recogniser streams open and recordings waiting for one: all return to 0 when no
        caller is queued."""
        if self.speech is None:
            return {}
        recogniser = self.speech.recogniser
        return {"capture_sessions": self.speech.capture.open_sessions,
                "speech_streams": recogniser.open_streams if recogniser else 0,
                "speech_waiting": recogniser.waiting_recordings if recogniser else 0}

    async def _write_status(self) -> bool:
        """Write the status file; False (recorded in the health, never raised) when the disk refuses it."""
        try:
            await asyncio.to_thread(write_status_file, self.status_file, json.dumps(self.status()))
        except OSError as exc:
            if failure_kind(exc) is None:
                log.warning("event=status_write_failed error=%s", type(exc).__name__)
            self.store.health.failed(STATUS_TARGET, exc)
            return False
        self.store.health.succeeded(STATUS_TARGET)
        return True

    async def run_until_stopped(self) -> None:
        """Serve until SIGTERM or SIGINT, keeping the status file current."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        last = None
        while not self._stopping.is_set():
            current = self.status()
            writes = current["state_writes"]
            key = (current["ami_ready"], current["active_sessions"], current["ami_reconnects"],
                   current["mqtt_connected"], writes["ok"], tuple(writes["failing"]), writes["outbox_in_memory"],
                   current.get("capture_sessions"), current.get("speech_streams"), json.dumps(current["emergency_list"]),
                   current["loop_stalls"], current["loop_lag_recent_ms"] // 10, json.dumps(current["export"]))
            if key != last and await self._write_status():
                last = key
            try:
                await asyncio.wait_for(self._stopping.wait(), STATUS_INTERVAL_S)
            except TimeoutError:
                pass


async def load_triage_model(path: Path | None) -> TriageModel | None:
    """The configured triage model, read off the event loop; an unusable file leaves the rules alone in charge
    (logged), since the pre-fill works without a model and a call must not wait on a bad file."""
    if path is None:
        return None
    try:
        model = await asyncio.to_thread(load_model, path)
    except ModelError as exc:
        log.error("event=triage_model_refused file=%s reason=%s", path, exc.reason)
        return None
    log.info("event=triage_model_loaded file=%s fields=%s", path, ",".join(model.fields))
    return model


async def _start_speech(cfg: Config, stack: AsyncExitStack, ami: AMIConnection, store: Store,
                        linkage: LinkageHandoff, emergency_list: Callable[[], EmergencyList]) -> SpeechParts:
    """Recogniser, pre-fill, capture and its AudioSocket server; their closes go on ``stack``."""
    recogniser = recogniser_from_config(str(cfg.speech.model) if cfg.speech.model else None,
                                        max_streams=cfg.speech.streams or None,
                                        max_waiting=cfg.speech.waiting_recordings or None)
    if recogniser is not None:
        await recogniser.load()
    prefill = TicketPrefill(store, recordings_dir=cfg.speech.recordings_dir, clock=utc_now,
                            emergencies=emergency_list, on_emergency=linkage.offer_from_speech,
                            model=await load_triage_model(cfg.triage.model), health=store.health)
    vad = VADSettings(end_silence_ms=cfg.speech.end_silence_ms, no_speech_ms=cfg.speech.no_speech_ms,
                      max_ms=cfg.speech.max_seconds * 1000)
    server: list[AudioSocketServer] = []   # filled below: the capture asks for the port only once it runs
    capture = SpeechCapture(
        ami, audiosocket_host=cfg.speech.audiosocket_host, audiosocket_port=lambda: server[0].port,
        recogniser=recogniser, vad=vad, prompt_pcm=await asyncio.to_thread(_prompt_pcm, cfg, "describe_matter"),
        on_result=prefill, forced_mode=cfg.speech.capture)
    stack.push_async_callback(capture.close)
    audiosocket = AudioSocketServer(capture.handle_connection, host=cfg.speech.audiosocket_host,
                                    port=cfg.speech.audiosocket_port)
    capture.attach(ami)
    try:
        await audiosocket.start()
    except OSError as exc:
        # e.g. the port is taken: Asterisk records the callers instead (the fallback); nothing is lost
        log.error("event=audiosocket_unavailable error=%r fallback=record", str(exc))
        capture.use_recording_only()
        return SpeechParts(capture, prefill, recogniser, None)
    server.append(audiosocket)
    stack.push_async_callback(audiosocket.close)
    log.info("event=speech_capture_ready audiosocket=%s:%s model=%s mode=%s", cfg.speech.audiosocket_host,
             audiosocket.port, "yes" if recogniser else "none", capture.mode())
    return SpeechParts(capture, prefill, recogniser, audiosocket)


async def _start_console(cfg: Config, store: Store, transfer, centres, call_back) -> web.AppRunner:
    app = create_console_app(store=store, state_dir=cfg.state_dir, agents=[a.name for a in cfg.agents],
                             ws_url=f"ws://{cfg.mqtt.host}:{cfg.mqtt.ws_port}/mqtt", clock=utc_now,
                             transfer=transfer, centres=centres, low_confidence=cfg.triage.low_confidence,
                             call_back=call_back, office=office_settings(cfg),
                             supervisors=[a.name for a in cfg.agents if a.role == "supervisor"])
    runner = await _serve_app(app, cfg.console.host, cfg.console.port, backlog=128)
    log.info("event=console_ready url=http://%s:%s/", cfg.console.host, cfg.console.port)
    return runner


async def _start_workorder_api(cfg: Config, store: Store) -> web.AppRunner | None:
    """The work-order system's status API (gateway.workorder.status_api), if a token is configured."""
    token = cfg.workorder_token()
    if token is None:
        log.warning("event=workorder_api_disabled reason=no_token token_env=%s", cfg.workorder.token_env)
        return None
    runner = await _serve_app(create_status_app(store=store, token=token, clock=utc_now), cfg.workorder.host,
                              cfg.workorder.port, backlog=32)
    log.info("event=workorder_api_ready url=http://%s:%s/api/v1/", cfg.workorder.host, cfg.workorder.port)
    return runner


async def _serve_app(app: web.Application, host: str, port: int, *, backlog: int) -> web.AppRunner:
    """Listen with ``app`` on host:port; unparseable requests are logged as one DEBUG line each."""
    runner = web.AppRunner(app, access_log=None, logger=console_server_logger())
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=backlog).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def finish_background(tasks: set[asyncio.Task], grace_s: float) -> int:
    """At shutdown, before the store closes: background work (recognising a recorded capture and filing it) gets
    ``grace_s`` to finish; what is still running then is cancelled, awaited, and logged by name. The number
    cancelled."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(set(tasks), timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in pending:
        log.warning("event=background_work_cancelled task=%s grace_s=%g", task.get_name(), grace_s)
    return len(pending)


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
    """``hotline run``: start the gateway, serve until signalled, close everything in reverse order."""
    async with GatewayService.running(config) as service:
        await service.run_until_stopped()
    return 0
