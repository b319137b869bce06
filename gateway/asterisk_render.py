"""Render asterisk_conf/ templates with values from the gateway config.

Placeholders are ``@{name}`` so that the dialplan's own ``${VAR}`` passes through untouched. A template that names
a value we do not supply is an error, not a silent blank.
"""
from __future__ import annotations

import os
import string
from pathlib import Path

from gateway.config import Config, Endpoint
from gateway.contract import AMI_CHANNEL_VARS, CENTRE_PREFIX, OUTBOUND_ENDPOINT
from recordings.call_files import asterisk_calls_dir

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "asterisk_conf"
CONF_FILES = ("asterisk.conf", "modules.conf", "logger.conf", "pjsip.conf", "extensions.conf", "queues.conf",
              "manager.conf", "rtp.conf", "musiconhold.conf", "cdr.conf", "confbridge.conf")

# The gateway reads queue and agent events (class "agent"), DTMF (a caller's '#' ends the description) and the
# dialplan's UserEvent HotlineLinkage (class "user": the hand-off log). It
# writes Originate (the speech-capture spy) and, class "call", Setvar and Redirect (taking a caller from the queue
# to confirm a spoken emergency, or to a centre). No "reporting": this build emits TestEvent noise in that class.
# Never "system" or "command": those restart Asterisk or run shell commands.
AMI_READ = "agent,dtmf,user"
AMI_WRITE = "call,originate"


class _AtTemplate(string.Template):
    delimiter = "@"


def _endpoint_block(ep: Endpoint, *, kind: str) -> str:
    name = f"{CENTRE_PREFIX}{ep.name}" if kind == "centre" else ep.name
    return "\n".join([
        f"; {kind} {ep.name}",
        f"[{name}]", "type = endpoint", "transport = transport-udp", "context = hotline-agents",
        "disallow = all", "allow = ulaw,alaw", "dtmf_mode = rfc4733", "direct_media = no",
        "rtp_symmetric = yes", f"aors = {name}", "",
        f"[{name}]", "type = aor", f"contact = {ep.contact}", "max_contacts = 1", "",
    ])


def asterisk_dirs(instance: str) -> dict[str, str]:
    """The directories of one Asterisk instance in the root: the classic ones for "" (a single node), else each
    with the instance's name appended ("/etc/asterisk-node2"), so several instances share one root."""
    suffix = f"-{instance}" if instance else ""
    return {"ast_etc_dir": f"/etc/asterisk{suffix}", "ast_run_dir": f"/run/asterisk{suffix}",
            "ast_spool_dir": f"/var/spool/asterisk{suffix}", "ast_log_dir": f"/var/log/asterisk{suffix}",
            "ast_db_dir": f"/var/lib/asterisk{suffix}"}


def render_values(config: Config, ami_secret: str) -> dict[str, str]:
    """The values every template may use."""
    endpoints = [_endpoint_block(a, kind="agent") for a in config.agents]
    endpoints += [_endpoint_block(c, kind="centre") for c in config.centres]
    # the calls the hotline places itself (return calls, call-backs): PJSIP/<number>@hotline-outbound
    endpoints.append(_endpoint_block(Endpoint(OUTBOUND_ENDPOINT, config.aftercall.outbound_contact), kind="trunk"))
    members = "\n".join(f"member => PJSIP/{a.name},0,{a.name}" for a in config.agents)
    instance = config.cluster.name
    return {
        **asterisk_dirs(instance),
        "systemname_option": f"systemname = {instance}" if instance else "; systemname: none (a single node)",
        "module_dir": config.asterisk.module_dir,
        "sip_bind": config.sip.bind,
        "sip_port": str(config.sip.port),
        "caller_match": config.sip.caller_match,
        "hotline_number": config.sip.hotline_number,
        "rtp_start": str(config.sip.rtp_start),
        "rtp_end": str(config.sip.rtp_end),
        "static_endpoints": "\n".join(endpoints),
        "fastagi_host": config.fastagi.host,
        "fastagi_port": str(config.fastagi.port),
        "fastagi_backup": config.fastagi.backup,
        "queue_name": config.queue.name,
        "queue_ring_timeout": str(config.queue.ring_timeout_s),
        "queue_members": members,
        "outbound_ring_s": str(config.aftercall.ring_s),
        "recording_dir": config.speech.asterisk_recording_dir,
        "call_recording_dir": asterisk_calls_dir(config.speech.asterisk_recording_dir),
        "prompt_dir": config.ivr.asterisk_prompt_dir,
        "ami_host": config.ami.host,
        "ami_port": str(config.ami.port),
        "ami_permit": config.ami.host,
        "ami_username": config.ami.username,
        "ami_secret": ami_secret,
        "ami_read": AMI_READ,
        "ami_write": AMI_WRITE,
        "ami_channel_vars": ",".join(AMI_CHANNEL_VARS),
    }


def render_all(config: Config, ami_secret: str) -> dict[str, str]:
    """Rendered text of every configuration file, by file name."""
    values = render_values(config, ami_secret)
    out = {}
    for name in CONF_FILES:
        template = _AtTemplate((TEMPLATE_DIR / name).read_text(encoding="utf-8"))
        try:
            out[name] = template.substitute(values)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"asterisk_conf/{name}: unknown or malformed placeholder {exc}") from None
    return out


def write_all(config: Config, ami_secret: str, target_dir: Path, *, owner: tuple[int, int] | None = None) -> list[Path]:
    """Write the rendered files into ``target_dir``; manager.conf (it holds the secret) is made 0640."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all(config, ami_secret).items():
        path = target_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o640 if name == "manager.conf" else 0o644)
        if owner is not None:
            os.chown(tmp, *owner)
        tmp.replace(path)
        written.append(path)
    return written
