"""The gateway's configuration: one TOML file over embedded defaults, validated into frozen dataclasses.

Every error names the file, the field (dotted path) and the reason. Secrets are not read from the file: the AMI
secret comes from the environment variable named by ``ami.secret_env`` (or the sandbox stack's generated file).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config_checks import (
    ConfigProblem,
    SettingsReader,
    is_ip,
    is_port,
    is_zone,
    merge_tables,
    with_extended_file,
    is_host_port,
)
from gateway.config_aftercall import AfterCallSection, read_aftercall
from gateway.config_cluster import ClusterSection, read_cluster
from gateway.config_office import ExportSection, MetricsSection, OfficeSection, read_export, read_metrics, read_office
from gateway.config_recordings import RecordingsSection, read_recordings
from gateway.config_store import StoreSection, read_store
from gateway.contract import CAPTURE_MODES

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
CONFIG_ENV = "HOTLINE_CONFIG"
ASTERISK_ROOT_ENV = "HOTLINE_ASTERISK_ROOT"  # the default Asterisk root, as scripts/setup.sh builds it
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SIP_CONTACT = re.compile(r"^sips?:[^@\s]+@[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$")


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` lists each field and why."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


@dataclass(frozen=True)
class GatewaySection:
    state_dir: Path
    timezone: str
    log_level: str
    call_deadline_s: float

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class FastAGISection:
    host: str
    port: int
    backup: str                     # "host:port" of a second gateway the dialplan tries, or ""
    command_timeout_s: float
    header_timeout_s: float


@dataclass(frozen=True)
class AMISection:
    host: str
    port: int
    username: str
    secret_env: str
    reconnect_min_s: float
    reconnect_max_s: float


@dataclass(frozen=True)
class SIPSection:
    bind: str
    port: int
    hotline_number: str
    caller_match: str
    rtp_start: int
    rtp_end: int


@dataclass(frozen=True)
class QueueSection:
    name: str
    ring_timeout_s: int


@dataclass(frozen=True)
class Endpoint:
    """A SIP peer with a static contact: an agent phone or a linked centre."""

    name: str
    contact: str
    role: str = "agent"     # agents only: "agent" or "supervisor" (sees every ticket on the console, audited)

    @property
    def host_port(self) -> tuple[str, int]:
        hostpart = self.contact.split("@", 1)[1].split(";", 1)[0]
        host, _, port = hostpart.rpartition(":")
        return (host, int(port)) if host and port.isdigit() else (hostpart, 5060)


@dataclass(frozen=True)
class IVRSection:
    menu: Path
    prompt_catalogue: Path
    asterisk_prompt_dir: str
    espeak_voice: str


@dataclass(frozen=True)
class RestrictionSection:
    default_days: int
    emergency_key: str


@dataclass(frozen=True)
class LinkageSection:
    emergency_list: Path | None


@dataclass(frozen=True)
class TriageSection:
    model: Path | None          # the trained classifier (hotline triage train); None: the rules alone
    low_confidence: float       # pre-filled fields scored below this are marked for the agent


@dataclass(frozen=True)
class SpeechSection:
    enabled: bool
    model: Path | None
    audiosocket_host: str
    audiosocket_port: int
    recordings_dir: Path
    max_seconds: int
    end_silence_ms: int
    no_speech_ms: int
    streams: int                  # recogniser streams at once; 0: two per CPU core
    waiting_recordings: int       # recordings that may wait for a stream; 0: four per stream
    capture: str
    asterisk_recording_dir: str
    local_recording_dir: Path


@dataclass(frozen=True)
class ConsoleSection:
    host: str
    port: int


@dataclass(frozen=True)
class WorkOrderSection:
    host: str
    port: int
    token_env: str                # the status API's bearer token; else the generated state file


@dataclass(frozen=True)
class MQTTSection:
    host: str
    port: int
    ws_port: int


@dataclass(frozen=True)
class AsteriskSection:
    root: Path
    module_dir: str


@dataclass(frozen=True)
class SandboxSection:
    simulated_agents: bool
    agent_answer_after_ms: int


@dataclass(frozen=True)
class Config:
    source: str
    gateway: GatewaySection
    store: StoreSection
    fastagi: FastAGISection
    ami: AMISection
    sip: SIPSection
    queue: QueueSection
    agents: tuple[Endpoint, ...]
    centres: tuple[Endpoint, ...]
    ivr: IVRSection
    restriction: RestrictionSection
    linkage: LinkageSection
    speech: SpeechSection
    triage: TriageSection
    console: ConsoleSection
    workorder: WorkOrderSection
    recordings: RecordingsSection
    aftercall: AfterCallSection
    mqtt: MQTTSection
    asterisk: AsteriskSection
    sandbox: SandboxSection
    cluster: ClusterSection
    office: OfficeSection
    metrics: MetricsSection
    export: ExportSection

    @property
    def state_dir(self) -> Path:
        return self.gateway.state_dir

    @property
    def prompt_build_dir(self) -> Path:
        """Where `hotline prompts build` writes the 8 kHz WAV files (copied into the Asterisk root)."""
        return self.gateway.state_dir / "prompts" / "zh"

    @property
    def status_file(self) -> Path:
        """The gateway's status file, which `hotline stack status` reads (one per node)."""
        suffix = f"-{self.cluster.name}" if self.cluster.name else ""
        return self.gateway.state_dir / "run" / f"gateway{suffix}.status.json"

    @property
    def ami_secret_file(self) -> Path:
        return self.gateway.state_dir / "secrets" / "ami.secret"

    @property
    def workorder_token_file(self) -> Path:
        return self.gateway.state_dir / "secrets" / "workorder.token"

    def workorder_token(self) -> str | None:
        """The work-order status API's token: the environment variable first, then the file `hotline stack up`
        generates; None when neither is set (the API is then not started)."""
        return os.environ.get(self.workorder.token_env, "").strip() or _generated(self.workorder_token_file) or None

    def ami_secret(self) -> str:
        """The AMI secret: the environment variable first, then the sandbox stack's generated file."""
        value = os.environ.get(self.ami.secret_env, "") or _generated(self.ami_secret_file)
        if not value:
            raise ConfigError(self.source, [ConfigProblem(
                "ami.secret_env",
                f"no AMI secret: set ${self.ami.secret_env} (or run `hotline stack up`, which generates one)")])
        return value


def _generated(path: Path) -> str:
    """A secret `hotline stack up` generated into ``path``, or "" when there is none."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration from ``path``, ``$HOTLINE_CONFIG``, or the embedded defaults alone.

    ``$HOTLINE_ASTERISK_ROOT`` replaces the default ``asterisk.root`` (scripts/setup.sh reads it too).
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
    defaults = tomllib.loads(DEFAULTS_PATH.read_text(encoding="utf-8"))
    if root := os.environ.get(ASTERISK_ROOT_ENV):
        defaults["asterisk"]["root"] = root  # a config file's asterisk.root still wins
    if path is None:
        return _build(defaults, "<embedded defaults>")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [ConfigProblem("<file>", f"cannot be read: {exc}")]) from None
    try:
        overrides = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("<file>", f"not valid TOML: {exc}")]) from None
    problems: list[ConfigProblem] = []
    merged = merge_tables(with_extended_file(defaults, overrides, problems), overrides, "", problems)
    try:
        config = _build(merged, source)
    except ConfigError as exc:
        problems += exc.problems
    if problems:  # unknown keys and bad values together: one round of fixes, not two
        raise ConfigError(source, problems)
    return config


_ROLES = ("agent", "supervisor")


def _endpoints(r: SettingsReader, key: str, *, roles: bool = False) -> tuple[Endpoint, ...]:
    items = r.data.get(key)
    if not isinstance(items, list):
        r.problems.append(ConfigProblem(key, "must be an array of tables"))
        return ()
    seen: set[str] = set()
    out = []
    allowed = {"name", "contact", "role"} if roles else {"name", "contact"}
    for i, item in enumerate(items):
        field = f"{key}[{i}]"
        if not isinstance(item, dict) or set(item) - allowed:
            keys = "'name', 'contact' and 'role'" if roles else "'name' and 'contact'"
            r.problems.append(ConfigProblem(field, f"must be a table with only {keys}"))
            continue
        role = item.get("role", "agent")
        if role not in _ROLES:
            r.problems.append(ConfigProblem(f"{field}.role", 'must be "agent" or "supervisor"'))
            continue
        name, contact = item.get("name"), item.get("contact")
        if not isinstance(name, str) or not _NAME.match(name):
            r.problems.append(ConfigProblem(f"{field}.name", "must be 1-40 letters, digits, '_' or '-'"))
            continue
        if name in seen:
            r.problems.append(ConfigProblem(f"{field}.name", f"duplicate name {name!r}"))
        seen.add(name)
        if not isinstance(contact, str) or not _SIP_CONTACT.match(contact):
            r.problems.append(ConfigProblem(f"{field}.contact", "must be a SIP URI like sip:agent1@127.0.0.1:5071"))
            continue
        out.append(Endpoint(name, contact, role))
    return tuple(out)


def _build(data: dict[str, Any], source: str) -> Config:
    r = SettingsReader(data)
    positive = dict(check=lambda v: v > 0, reason="must be greater than 0")
    port = dict(check=is_port, reason="must be a TCP/UDP port 1-65535")
    ip = dict(check=is_ip, reason="must be an IP address")
    state_dir = r.get("gateway.state_dir", str, check=lambda v: v.startswith("/"), reason="must be an absolute path")
    state = Path(state_dir or "/nonexistent")
    pkg_ivr = Path(__file__).resolve().parent.parent / "ivr"
    menu = r.get("ivr.menu", str)
    catalogue = r.get("ivr.prompt_catalogue", str)
    rtp_start = r.get("sip.rtp_start", int, **port)
    rtp_end = r.get("sip.rtp_end", int, **port)
    if rtp_start and rtp_end and rtp_end - rtp_start < 10:
        r.problems.append(ConfigProblem("sip.rtp_end", "must be at least 10 above sip.rtp_start"))
    cfg = Config(
        source=source,
        gateway=GatewaySection(
            state_dir=state,
            timezone=r.get("gateway.timezone", str, check=is_zone, reason="unknown time zone"),
            log_level=r.get("gateway.log_level", str, check=lambda v: v.upper() in
                            {"DEBUG", "INFO", "WARNING", "ERROR"}, reason="must be DEBUG, INFO, WARNING or ERROR"),
            call_deadline_s=r.get("gateway.call_deadline_s", float, **positive),
        ),
        store=read_store(r, state),
        fastagi=FastAGISection(
            host=r.get("fastagi.host", str, **ip),
            port=r.get("fastagi.port", int, **port),
            backup=r.get("fastagi.backup", str, check=lambda v: v == "" or is_host_port(v),
                         reason='must be "" or "IP:port" of another gateway'),
            command_timeout_s=r.get("fastagi.command_timeout_s", float, **positive),
            header_timeout_s=r.get("fastagi.header_timeout_s", float, **positive),
        ),
        ami=AMISection(
            host=r.get("ami.host", str, **ip),
            port=r.get("ami.port", int, **port),
            username=r.get("ami.username", str, check=_NAME.match, reason="must be 1-40 letters, digits, '_' or '-'"),
            secret_env=r.get("ami.secret_env", str, check=re.compile(r"^[A-Z_][A-Z0-9_]*$").match,
                             reason="must be an environment variable name"),
            reconnect_min_s=r.get("ami.reconnect_min_s", float, **positive),
            reconnect_max_s=r.get("ami.reconnect_max_s", float, **positive),
        ),
        sip=SIPSection(
            bind=r.get("sip.bind", str, **ip),
            port=r.get("sip.port", int, **port),
            hotline_number=r.get("sip.hotline_number", str, check=str.isdigit, reason="must be digits"),
            caller_match=r.get("sip.caller_match", str, check=lambda v: all(
                is_ip(x.strip().split("/")[0]) for x in v.split(",")), reason="must be IP addresses or networks"),
            rtp_start=rtp_start,
            rtp_end=rtp_end,
        ),
        queue=QueueSection(
            name=r.get("queue.name", str, check=_NAME.match, reason="must be 1-40 letters, digits, '_' or '-'"),
            ring_timeout_s=r.get("queue.ring_timeout_s", int, **positive),
        ),
        agents=_endpoints(r, "agents", roles=True),
        centres=_endpoints(r, "centres"),
        ivr=IVRSection(
            menu=Path(menu) if menu else pkg_ivr / "menu.toml",
            prompt_catalogue=Path(catalogue) if catalogue else pkg_ivr / "prompts" / "zh.toml",
            asterisk_prompt_dir=r.get("ivr.asterisk_prompt_dir", str, check=lambda v: v.startswith("/"),
                                      reason="must be an absolute path inside the Asterisk root"),
            espeak_voice=r.get("ivr.espeak_voice", str),
        ),
        restriction=RestrictionSection(
            default_days=r.get("restriction.default_days", int, check=lambda v: 1 <= v <= 365, reason="must be 1-365"),
            emergency_key=r.get("restriction.emergency_key", str, check=lambda v: v == "" or (
                len(v) == 1 and v in "0123456789*#"), reason="must be one DTMF key or empty")),
        linkage=LinkageSection(emergency_list=Path(el) if (el := r.get("linkage.emergency_list", str)) else None),
        speech=SpeechSection(
            enabled=r.get("speech.enabled", bool),
            model=Path(model) if (model := r.get("speech.model", str)) else None,
            audiosocket_host=r.get("speech.audiosocket_host", str, **ip),
            audiosocket_port=r.get("speech.audiosocket_port", int, **port),
            recordings_dir=Path(rec) if (rec := r.get("speech.recordings_dir", str)) else state / "recordings",
            max_seconds=r.get("speech.max_seconds", int, check=lambda v: 1 <= v <= 60,
                              reason="must be 1-60 (the capture keeps at most 60 s of audio)"),
            end_silence_ms=r.get("speech.end_silence_ms", int, **positive),
            no_speech_ms=r.get("speech.no_speech_ms", int, **positive),
            streams=r.get("speech.streams", int, check=lambda v: 0 <= v <= 256,
                          reason="must be 0 (two per CPU core) to 256"),
            waiting_recordings=r.get("speech.waiting_recordings", int, check=lambda v: 0 <= v <= 10_000,
                                     reason="must be 0 (four per stream) to 10000"),
            capture=r.get("speech.capture", str, check=lambda v: v in CAPTURE_MODES,
                          reason='must be "audiosocket" or "record"'),
            asterisk_recording_dir=(ast_rec := r.get("speech.asterisk_recording_dir", str,
                                                     check=lambda v: v.startswith("/") and " " not in v,
                                                     reason="must be an absolute path without spaces")) or "/",
            local_recording_dir=(Path(local) if (local := r.get("speech.local_recording_dir", str))
                                 else Path(r.get("asterisk.root", str) or "/") / (ast_rec or "/").lstrip("/")),
        ),
        triage=TriageSection(
            model=(pkg_ivr / "triage" / "default_model.json" if (tm := r.get("triage.model", str)) == "packaged"
                   else Path(tm) if tm not in ("", "none") else None),
            low_confidence=r.get("triage.low_confidence", float, check=lambda v: 0 <= v <= 1,
                                 reason="must be a score from 0 to 1")),
        console=ConsoleSection(host=r.get("console.host", str, **ip), port=r.get("console.port", int, **port)),
        workorder=WorkOrderSection(host=r.get("workorder.host", str, **ip), port=r.get("workorder.port", int, **port),
                                   token_env=r.get("workorder.token_env", str)),
        recordings=read_recordings(r),
        aftercall=read_aftercall(r),
        mqtt=MQTTSection(host=r.get("mqtt.host", str, **ip), port=r.get("mqtt.port", int, **port),
                         ws_port=r.get("mqtt.ws_port", int, **port)),
        asterisk=AsteriskSection(
            root=Path(r.get("asterisk.root", str) or "/nonexistent"),
            module_dir=r.get("asterisk.module_dir", str),
        ),
        sandbox=SandboxSection(simulated_agents=r.get("sandbox.simulated_agents", bool),
                               agent_answer_after_ms=r.get("sandbox.agent_answer_after_ms", int,
                                                           check=lambda v: 0 <= v <= 120_000,
                                                           reason="must be 0-120000")),
        cluster=read_cluster(r),
        office=read_office(r),
        metrics=read_metrics(r),
        export=read_export(r),
    )
    if cfg.ami.reconnect_min_s and cfg.ami.reconnect_max_s and cfg.ami.reconnect_max_s < cfg.ami.reconnect_min_s:
        r.problems.append(ConfigProblem("ami.reconnect_max_s", "must not be below ami.reconnect_min_s"))
    if not cfg.agents:
        r.problems.append(ConfigProblem("agents", "at least one agent is needed (7x24 human service)"))
    if r.problems:
        raise ConfigError(source, r.problems)
    return cfg
