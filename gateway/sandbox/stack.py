"""`hotline stack up|down|status`: the sandbox stack (Asterisk in its root, mosquitto, the gateway).

Synchronous on purpose: it is a CLI that starts and stops processes; the service itself is asyncio.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from gateway.sandbox.asterisk_account import AccountError, current_check, ensure_account
from gateway.sandbox.asterisk_root import AsteriskRoot
from gateway.config import Config
from gateway.metrics.headline import fetch_headline
from gateway.mqtt.broker_config import write_broker_config
from gateway.mqtt.centre_users import mqtt_centres
from gateway.sandbox.processes import ManagedProcess, tcp_port_open, udp_port_in_use, wait_until
from gateway.sandbox.sipp_scenario import agent_scenario
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH, EmergencyListError, load_emergency_list
from recordings.call_files import asterisk_calls_dir

READY_TIMEOUT_S = 60.0


class StackError(Exception):
    """The stack could not be brought up; the message says which part and why."""


class Stack:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        run = config.state_dir / "run"
        logs = config.state_dir / "logs"
        # A node of several (`--nodes N`) has its own Asterisk and gateway; the broker and the simulated agents
        # are node 1's, shared by all.
        node = f"-{config.cluster.name}" if config.cluster.name else ""
        self.first_node = config.cluster.node == 1
        self.asterisk = ManagedProcess(f"asterisk{node}", run / f"asterisk{node}.pid", logs / f"asterisk{node}.out")
        self.mosquitto = ManagedProcess("mosquitto", run / "mosquitto.pid", logs / "mosquitto.out")
        self.gateway = ManagedProcess(f"gateway{node}", run / f"gateway{node}.pid", logs / f"gateway{node}.log")
        self.agents = [ManagedProcess(f"sim-{a.name}", run / f"sim-{a.name}.pid", logs / f"sim-{a.name}.out")
                       for a in config.agents] if self.first_node else []
        self.root = AsteriskRoot(config.asterisk.root, config.cluster.name)

    @property
    def status_file(self) -> Path:
        return self.config.status_file

    # -- up ---------------------------------------------------------------------------------------------
    def up(self, *, simulated_agents: bool | None = None, log=print) -> None:
        """Start every part that is not running; return when all are ready. Idempotent."""
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        secret = self._ami_secret()
        self.root.build()
        self._prompts(log)
        if self.asterisk.pid() is None:
            self._check_free()
            try:
                ensure_account(self.root.root, log=log)
            except AccountError as exc:
                raise StackError(f"asterisk: {exc}") from None
            self.root.install_config(cfg, secret)
            self.root.install_prompts(cfg.prompt_build_dir, cfg.ivr.asterisk_prompt_dir)
            self.root.mount(extra_dirs=[cfg.speech.asterisk_recording_dir,
                                        asterisk_calls_dir(cfg.speech.asterisk_recording_dir)])
            self.asterisk.start(self.root.command_argv())
            log(f"asterisk: starting in {self.root.root}")
        if not wait_until(self.root.fully_booted, READY_TIMEOUT_S, 0.3):
            raise StackError(f"asterisk did not finish booting in {READY_TIMEOUT_S:.0f} s;"
                             f" see {self.asterisk.log_file}")
        if not wait_until(lambda: tcp_port_open(cfg.ami.host, cfg.ami.port), 10):
            raise StackError(f"asterisk: AMI is not listening on {cfg.ami.host}:{cfg.ami.port}")
        log(f"asterisk: ready (SIP udp {cfg.sip.bind}:{cfg.sip.port}, AMI {cfg.ami.host}:{cfg.ami.port})")

        if self.mosquitto.pid() is None and self.first_node:
            conf = self._mosquitto_conf()
            self.mosquitto.start(["mosquitto", "-c", str(conf)])
        if not wait_until(lambda: tcp_port_open(cfg.mqtt.host, cfg.mqtt.port), 15):
            raise StackError(f"mosquitto did not listen on {cfg.mqtt.host}:{cfg.mqtt.port};"
                             f" see {self.mosquitto.log_file}")
        log(f"mosquitto: ready ({cfg.mqtt.host}:{cfg.mqtt.port})")

        if self.gateway.pid() is None:
            self.status_file.unlink(missing_ok=True)
            if not os.environ.get(cfg.workorder.token_env):
                _generated_secret(cfg.workorder_token_file)    # the work-order status API's token
            argv = [sys.executable, "-m", "gateway.cli.main"]
            if self.config_path:
                argv += ["--config", str(self.config_path)]
            self.gateway.start(argv + ["run"], env={**os.environ, cfg.ami.secret_env: secret},
                               cwd=Path(__file__).resolve().parents[2])
        if not wait_until(self._gateway_ready, READY_TIMEOUT_S, 0.2):
            raise StackError(f"gateway not ready in {READY_TIMEOUT_S:.0f} s (status {self.gateway_status()}); "
                             f"see {self.gateway.log_file}")
        log(f"gateway: ready (FastAGI {cfg.fastagi.host}:{cfg.fastagi.port}, AMI logged in, MQTT connected, "
            f"agent console http://{cfg.console.host}:{cfg.console.port}/)")

        if simulated_agents if simulated_agents is not None else cfg.sandbox.simulated_agents:
            self.start_simulated_agents(log)

    def start_simulated_agents(self, log=print, *, answer_after_ms: int | None = None,
                               hang_up_after_ms: int | None = None, say_pcap: Path | None = None) -> None:
        """sipp answering machines as the agents; they ring ``answer_after_ms`` before answering, speak
        ``say_pcap`` (if given) at once and, with ``hang_up_after_ms``, hang up that long after answering."""
        ring_ms = self.config.sandbox.agent_answer_after_ms if answer_after_ms is None else answer_after_ms
        scenario = self.config.state_dir / "run" / f"sim-agent-{ring_ms}-{hang_up_after_ms}-{bool(say_pcap)}.xml"
        scenario.parent.mkdir(parents=True, exist_ok=True)
        scenario.write_text(agent_scenario(answer_after_ms=ring_ms, hang_up_after_ms=hang_up_after_ms,
                                           plays=[(0, say_pcap)] if say_pcap else []))
        for i, (agent, proc) in enumerate(zip(self.config.agents, self.agents)):
            if proc.pid() is not None:
                continue
            host, port = agent.host_port
            # sipp takes mp..mp+3 for media: instances 10 ports apart never collide
            proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", str(port), "-mp", str(30010 + 10 * i),
                        "-nostdin"], cwd=self.config.state_dir / "logs")
            log(f"simulated agent {agent.name}: answering at {host}:{port}")

    def _check_free(self) -> None:
        cfg = self.config
        busy = []
        if udp_port_in_use(cfg.sip.bind, cfg.sip.port):
            busy.append(f"SIP udp {cfg.sip.bind}:{cfg.sip.port}")
        if tcp_port_open(cfg.ami.host, cfg.ami.port):
            busy.append(f"AMI tcp {cfg.ami.host}:{cfg.ami.port}")
        if busy:
            raise StackError("another Asterisk seems to run (in use: " + ", ".join(busy) +
                             "); stop it first (`hotline stack down` with its config)")

    def _ami_secret(self) -> str:
        env = os.environ.get(self.config.ami.secret_env)
        if env:
            return env
        return _generated_secret(self.config.ami_secret_file)

    def _prompts(self, log) -> None:
        from ivr.prompts import build_prompts  # noqa: PLC0415 (pydub import cost only when needed)
        import asyncio
        report = asyncio.run(build_prompts(self.config.ivr.prompt_catalogue, self.config.prompt_build_dir,
                                           voice=self.config.ivr.espeak_voice))
        log(f"prompts: {report}")

    def _mosquitto_conf(self) -> Path:
        """Per-user passwords and the ACL (agents read only their own topic); see gateway/mqtt/broker_config.py.
        The centres are the configured ones and the emergency list's MQTT centres (the gateway adds a centre
        that a reload brings; a broker started later must know it too)."""
        cfg = self.config
        centres = [c.name for c in cfg.centres]
        try:
            listed = load_emergency_list(cfg.linkage.emergency_list or DEFAULT_EMERGENCY_PATH, require_centres=True)
            centres += [name for name in mqtt_centres(listed) if name not in centres]
        except EmergencyListError:
            pass        # the gateway refuses to start on it and says why
        return write_broker_config(cfg.state_dir, host=cfg.mqtt.host, port=cfg.mqtt.port, ws_port=cfg.mqtt.ws_port,
                                   agents=[a.name for a in cfg.agents], centres=centres,
                                   gateways=cfg.cluster.gateway_users)

    def _gateway_ready(self) -> bool:
        if self.gateway.pid() is None:
            return False
        status = self.gateway_status()
        return bool(status.get("fastagi_listening") and status.get("ami_ready") and status.get("mqtt_connected"))

    def gateway_status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    # -- down / status ----------------------------------------------------------------------------------
    def down(self, log=print) -> None:
        for proc in self.agents:
            if proc.stop():
                log(f"{proc.name}: stopped")
        if self.gateway.stop(timeout=10):
            log(f"{self.gateway.name}: stopped")
        if self.first_node and self.mosquitto.stop():
            log("mosquitto: stopped")
        if self.asterisk.pid() is not None:
            try:
                self.root.cli("core stop now", timeout=10)
            except subprocess.TimeoutExpired:
                pass
            wait_until(lambda: self.asterisk.pid() is None, 10)
            self.asterisk.stop()
            log(f"{self.asterisk.name}: stopped")
        self.root.unmount()
        self.status_file.unlink(missing_ok=True)

    def status(self) -> dict:
        cfg = self.config
        gw = self.gateway_status()
        ast_pid = self.asterisk.pid()
        return {
            "asterisk": {"pid": ast_pid, "running": ast_pid is not None,
                         "ami_listening": tcp_port_open(cfg.ami.host, cfg.ami.port),
                         "sip": f"udp {cfg.sip.bind}:{cfg.sip.port}"},
            "mosquitto": {"pid": self.mosquitto.pid(), "running": self.mosquitto.pid() is not None,
                          "listening": tcp_port_open(cfg.mqtt.host, cfg.mqtt.port)},
            "gateway": {"pid": self.gateway.pid(), "running": self.gateway.pid() is not None,
                        "fastagi_listening": bool(gw.get("fastagi_listening")),
                        "ami_ready": bool(gw.get("ami_ready")), "ami_reconnects": gw.get("ami_reconnects"),
                        "mqtt_connected": bool(gw.get("mqtt_connected")),
                        "console": f"http://{cfg.console.host}:{cfg.console.port}/" if gw.get("console_listening")
                        else None,
                        "active_sessions": gw.get("active_sessions"), "updated_at": gw.get("updated_at"),
                        **_state_writes(gw.get("state_writes")),
                        **{k: gw.get(k) for k in ("capture_sessions", "speech_streams", "speech_waiting",
                                                  "ami_event_backlog")},
                        "emergency_list": gw.get("emergency_list"),
                        **{k: gw.get(k) for k in ("loop_lag_max_ms", "loop_lag_recent_ms", "loop_stalls")}},
            # the headline of the gateway's metrics page (docs/metrics.md)
            "metrics": fetch_headline(cfg.metrics.host, cfg.metrics.port) \
                if self.gateway.pid() is not None else {"running": False},
            "simulated_agents": {p.name: p.pid() for p in self.agents if p.pid() is not None},
            "asterisk_account": self._account(ast_pid),
        }

    def _account(self, pid: int | None) -> dict:
        """Which uid Asterisk runs as, and whether that is the dedicated host account."""
        try:
            return current_check(self.root.root, pid).as_dict()
        except AccountError as exc:
            return {"ok": False, "problem": str(exc)}


def _state_writes(writes: object) -> dict:
    """The gateway's state-disk health for ``stack status``: whether its writes go through, which fail and why."""
    if not isinstance(writes, dict):
        return {"state_ok": None}
    failing = writes.get("failing") or {}
    return {"state_ok": bool(writes.get("ok")),
            "state_failing": ",".join(f"{target}:{info.get('kind')}" for target, info in failing.items()) or None,
            "state_failed_writes": writes.get("failed_writes"),
            "outbox_in_memory": writes.get("outbox_in_memory")}


def _generated_secret(path: Path) -> str:
    """The secret kept in ``path`` (mode 0600), made on first use."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()
