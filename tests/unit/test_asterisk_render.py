import ipaddress
import os
import re
import stat
from pathlib import Path

import pytest

from gateway import asterisk_render
from gateway.asterisk_render import CONF_FILES, TEMPLATE_DIR, render_all, write_all
from gateway.config import ConfigError, load_config

SECRET = "Zq7-secret-4f1e9c"


@pytest.fixture
def cfg(monkeypatch):
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    return load_config()


@pytest.fixture
def files(cfg):
    return render_all(cfg, SECRET)


def sections(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Asterisk .conf text as (section, [(key, value), ...]) in order; a section name may repeat."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line):
            out.append((m.group(1), []))
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key = value line: {raw!r}"
        assert out, f"line outside a section: {raw!r}"
        out[-1][1].append((key.strip().rstrip(">").strip(), value.strip().lstrip(">").strip()))
    return out


def section(text: str, name: str) -> dict[str, list[str]]:
    matches = [pairs for sec, pairs in sections(text) if sec == name]
    assert len(matches) == 1, f"[{name}] appears {len(matches)} times"
    out: dict[str, list[str]] = {}
    for key, value in matches[0]:
        out.setdefault(key, []).append(value)
    return out


# -- every template ----------------------------------------------------------------------------------------------

def test_every_conf_file_has_a_template_and_renders_without_leftover_placeholders(files):
    assert set(files) == set(CONF_FILES)
    assert {p.name for p in TEMPLATE_DIR.glob("*.conf")} == set(CONF_FILES)
    for name, text in files.items():
        assert "@{" not in text, name
        assert text.strip(), name


def test_template_naming_an_unknown_value_is_an_error(cfg, tmp_path, monkeypatch):
    for name in CONF_FILES:
        (tmp_path / name).write_text((TEMPLATE_DIR / name).read_text())
    (tmp_path / "rtp.conf").write_text("[general]\nrtpstart = @{rtp_begin}\n")
    monkeypatch.setattr(asterisk_render, "TEMPLATE_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"asterisk_conf/rtp.conf.*rtp_begin"):
        render_all(cfg, SECRET)


def test_dialplan_keeps_asterisk_variables_intact(files):
    template = (TEMPLATE_DIR / "extensions.conf").read_text()
    text = files["extensions.conf"]
    assert text.count("${") == template.count("${") > 0
    for var in ("${HOTLINE_ACTION}", "${AGISTATUS}", "${QUEUESTATUS}", "${HOTLINE_PRIORITY}"):
        assert var in text


def test_rtp_range_comes_from_the_config(cfg, files):
    rtp = section(files["rtp.conf"], "general")
    assert rtp["rtpstart"] == [str(cfg.sip.rtp_start)] and rtp["rtpend"] == [str(cfg.sip.rtp_end)]


# -- pjsip.conf ---------------------------------------------------------------------------------------------------

def pjsip_objects(text: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    objects: dict[tuple[str, str], dict[str, list[str]]] = {}
    for name, pairs in sections(text):
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        [kind] = values["type"]
        assert (name, kind) not in objects, f"[{name}] type={kind} twice"
        objects[(name, kind)] = values
    return objects


def test_pjsip_has_one_endpoint_and_aor_per_agent_and_centre_with_the_configured_contact(cfg, files):
    objects = pjsip_objects(files["pjsip.conf"])
    expected = {a.name: a.contact for a in cfg.agents} | {f"centre-{c.name}": c.contact for c in cfg.centres}
    expected["hotline-outbound"] = cfg.aftercall.outbound_contact     # the trunk of the hotline's own calls
    assert len(expected) == 10
    for name, contact in expected.items():
        endpoint, aor = objects[(name, "endpoint")], objects[(name, "aor")]
        assert endpoint["aors"] == [name]
        assert endpoint["transport"] == ["transport-udp"]
        assert endpoint["dtmf_mode"] == ["rfc4733"]
        assert aor["contact"] == [contact]
    endpoint_names = {name for name, kind in objects if kind == "endpoint"}
    assert endpoint_names == set(expected) | {"hotline-trunk"}
    assert {name for name, kind in objects if kind == "aor"} == set(expected)


def test_pjsip_transport_binds_to_the_configured_address(cfg, files):
    transport = pjsip_objects(files["pjsip.conf"])[("transport-udp", "transport")]
    assert transport["bind"] == ["127.0.0.1:5060"]
    assert transport["protocol"] == ["udp"]


def test_pjsip_follows_an_override_file(tmp_path):
    path = tmp_path / "hotline.toml"
    path.write_text('[sip]\nbind = "10.1.2.3"\nport = 5070\ncaller_match = "10.9.0.0/16"\n'
                    '[[agents]]\nname = "desk7"\ncontact = "sip:desk7@10.1.2.7:5080"\n')
    objects = pjsip_objects(render_all(load_config(path), SECRET)["pjsip.conf"])
    assert objects[("transport-udp", "transport")]["bind"] == ["10.1.2.3:5070"]
    assert objects[("hotline-trunk", "identify")]["match"] == ["10.9.0.0/16"]
    assert objects[("desk7", "aor")]["contact"] == ["sip:desk7@10.1.2.7:5080"]
    assert ("agent1", "endpoint") not in objects


def test_trunk_calls_enter_the_hotline_context(files):
    objects = pjsip_objects(files["pjsip.conf"])
    assert objects[("hotline-trunk", "endpoint")]["context"] == ["hotline-in"]
    assert objects[("hotline-trunk", "identify")]["match"] == ["127.0.0.1"]
    # agents and centres cannot reach the hotline entry
    assert objects[("agent1", "endpoint")]["context"] == ["hotline-agents"]


# -- queues.conf --------------------------------------------------------------------------------------------------

def test_queue_lists_every_agent_as_a_member(cfg, files):
    queue = section(files["queues.conf"], cfg.queue.name)
    assert queue["member"] == ["PJSIP/agent1,0,agent1", "PJSIP/agent2,0,agent2"]
    assert queue["timeout"] == [str(cfg.queue.ring_timeout_s)]


def test_queue_keeps_callers_when_no_agent_is_available(cfg, files):
    # 7x24: a caller joins and stays even when every agent is logged out or busy.
    queue = section(files["queues.conf"], cfg.queue.name)
    assert queue["joinempty"] == ["yes"]
    assert queue["leavewhenempty"] == ["no"]


# -- manager.conf -------------------------------------------------------------------------------------------------

def test_ami_listens_on_loopback_only(cfg, files):
    general = section(files["manager.conf"], "general")
    assert general["enabled"] == ["yes"]
    assert general["port"] == [str(cfg.ami.port)]
    [bindaddr] = general["bindaddr"]
    assert ipaddress.ip_address(bindaddr).is_loopback


def test_ami_user_is_permitted_only_from_the_ami_host(cfg, files):
    user = section(files["manager.conf"], cfg.ami.username)
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    assert user["permit"] == [f"{cfg.ami.host}/255.255.255.255"]


def test_ami_secret_is_the_argument_and_appears_in_no_other_file(cfg, files):
    assert section(files["manager.conf"], cfg.ami.username)["secret"] == [SECRET]
    for name, text in files.items():
        if name != "manager.conf":
            assert SECRET not in text, name


def test_ami_user_reads_only_agent_dtmf_and_user_events_and_writes_only_call_and_originate(cfg, files):
    user = section(files["manager.conf"], cfg.ami.username)
    [read] = user["read"]
    assert {c.strip() for c in read.split(",")} == {"agent", "dtmf", "user"}
    [write] = user["write"]
    # Originate starts the speech-capture spy, Setvar/Redirect move a caller to a centre; nothing that reloads,
    # restarts or runs commands
    assert {c.strip() for c in write.split(",") if c.strip()} == {"call", "originate"}


def test_ami_channel_variables_carry_the_call_id_and_request_type(files):
    [channelvars] = section(files["manager.conf"], "general")["channelvars"]
    names = channelvars.split(",")
    assert "HOTLINE_CALL_ID" in names and "HOTLINE_REQUEST_TYPE" in names


# -- modules.conf ----------------------------------------------------------------------------------------------

def test_modules_are_loaded_explicitly(files):
    modules = section(files["modules.conf"], "modules")
    assert modules["autoload"] == ["no"]
    loaded = set(modules["load"])
    # what the rendered files rely on: dialplan, FastAGI, the queue, PJSIP with IP identification, IF()
    for module in ("pbx_config.so", "res_agi.so", "app_queue.so", "chan_pjsip.so", "res_pjsip.so",
                   "res_pjsip_endpoint_identifier_ip.so", "func_logic.so", "codec_ulaw.so"):
        assert module in loaded, module


# -- extensions.conf: the 12345 entry -----------------------------------------------------------------------------

def extension(text: str, context: str, exten: str) -> list[tuple[str | None, str, str]]:
    """The priorities of ``exten`` in ``context``: (label, application, arguments) in order."""
    lines = []
    current = None
    in_exten = False
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            current = m.group(1)
            continue
        if current != context or not line:
            continue
        if m := re.fullmatch(r"exten\s*=>\s*([^,]+),\s*1,(.*)", line):
            in_exten = m.group(1) == exten
            body = m.group(2)
        elif m := re.fullmatch(r"same\s*=>\s*n(?:\(([^)]*)\))?,(.*)", line):
            if not in_exten:
                continue
            body = m.group(2)
            label = m.group(1)
        else:
            raise AssertionError(f"unexpected dialplan line {raw!r}")
        if not in_exten:
            continue
        app = re.fullmatch(r"(\w+)\((.*)\)", body)
        assert app, f"not an application call: {raw!r}"
        lines.append((label if line.startswith("same") else None, app.group(1), app.group(2)))
    return lines


ENTRY_IS_HANGUP = '$["${HOTLINE_ACTION}" = "hangup" & "${HOTLINE_PRIORITY}" = "0"]'
# Taken: no second gateway is tried (the first one answered, or said something, or there is no second one).
ENTRY_NO_FAILOVER = ('$["${AGISTATUS}" != "FAILURE" | ${EXISTS(${HOTLINE_ACTION})} |'
                     ' ${ISNULL(${GLOBAL(HOTLINE_AGI_BACKUP)})}]')


def entry_paths(priorities):
    """Every way through the entry extension: (list of (condition, taken) decisions, how it ends)."""
    labels = {label: i for i, (label, _, _) in enumerate(priorities) if label}
    endings = []

    def walk(i, decisions):
        assert len(decisions) < 20, "loop in the entry extension"
        if i >= len(priorities):
            endings.append((decisions, ("fell off the end", None)))
            return
        label, app, args = priorities[i]
        if app == "Hangup":
            endings.append((decisions, ("Hangup", label)))
        elif app == "Goto":
            endings.append((decisions, ("Goto", args)))
        elif app == "GotoIf":
            cond, _, targets = args.rpartition("?")
            true_target, _, false_target = targets.partition(":")
            for taken, target in ((True, true_target), (False, false_target)):
                step = decisions + [(cond, taken)]
                if not target:
                    walk(i + 1, step)
                elif target in labels:
                    walk(labels[target], step)
                else:
                    endings.append((step, ("Goto", target)))
        else:
            walk(i + 1, decisions)

    walk(0, [])
    return endings


def test_hotline_entry_calls_the_gateway_over_fastagi(files):
    priorities = extension(files["extensions.conf"], "hotline-in", "12345")
    apps = [(app, args) for _, app, args in priorities]
    assert ("AGI", "agi://127.0.0.1:4573/entry") in apps
    agi_at = apps.index(("AGI", "agi://127.0.0.1:4573/entry"))
    assert ("Answer", "") in apps[:agi_at]
    # the dialplan decides on HOTLINE_ACTION only after the gateway has had its say
    assert all("HOTLINE_ACTION" not in args for _, args in apps[:agi_at])


def test_only_hotline_action_hangup_ends_the_call_and_every_other_path_reaches_the_queue(files):
    priorities = extension(files["extensions.conf"], "hotline-in", "12345")
    endings = entry_paths(priorities)
    assert len(endings) >= 3
    for decisions, (kind, where) in endings:
        if kind == "Hangup":
            assert where == "refused"
            # the refusal is reached through exactly one decision: HOTLINE_ACTION is "hangup" on a channel whose
            # priority the gateway never raised (a caller who asked for emergency help is never refused)
            assert [cond for cond, taken in decisions if taken and cond != ENTRY_NO_FAILOVER] == [ENTRY_IS_HANGUP], \
                decisions
        elif where == "hotline-linkage,s,1":
            # linkage: the gateway chose a linked centre; that context falls back to the queue itself
            assert any(taken and '"${HOTLINE_ACTION}" = "linkage"' in cond for cond, taken in decisions), decisions
        else:
            assert (kind, where) == ("Goto", "hotline-queue,s,1"), decisions
    assert any(kind == "Hangup" for _, (kind, _) in endings)
    hangups = [(label, app) for label, app, _ in priorities if app == "Hangup"]
    assert hangups == [("refused", "Hangup")]


def test_linkage_tries_each_centre_then_queues_the_caller_at_top_priority(files):
    priorities = extension(files["extensions.conf"], "hotline-linkage", "s")
    apps = [app for _, app, _ in priorities]
    labels = {label: i for i, (label, _, _) in enumerate(priorities) if label}
    dial = [args for _, app, args in priorities if app == "Dial"]
    assert dial == ["${HOTLINE_LINKAGE_DIAL},${CUT(HOTLINE_LINKAGE_T,|,2)},"
                    "b(hotline-linkage-predial^s^1)U(hotline-linkage-answered^s^1)"]
    # the only Hangup is after a centre answered; running out of centres goes to the agent queue, priority 10
    assert [label for label, app, _ in priorities if app == "Hangup"] == ["done"]
    fallback = priorities[labels["fallback"]:]
    assert ("Set", "__HOTLINE_PRIORITY=10") in [(app, args) for _, app, args in fallback]
    assert ("Goto", "hotline-queue,s,1") in [(app, args) for _, app, args in fallback]
    assert apps.count("UserEvent") == 3


def test_any_number_dialled_into_the_hotline_context_reaches_the_entry(files):
    for exten in ("_X.", "i"):
        assert extension(files["extensions.conf"], "hotline-in", exten) == [
            (None, "Goto", "hotline-in,12345,1")]


def test_queue_context_enters_the_configured_queue_and_retries_when_it_returns(cfg, files):
    priorities = extension(files["extensions.conf"], "hotline-queue", "s")
    assert ("enter", "Queue", f"{cfg.queue.name},rc") in priorities
    retry = [args for _, app, args in priorities if app == "GotoIf" and '"TIMEOUT"' in args]
    assert len(retry) == 1 and retry[0].endswith("?again")
    labels = [label for label, _, _ in priorities]
    again = labels.index("again")
    assert priorities[again + 1][1:] == ("Goto", "enter")


def test_after_the_agent_hangs_up_the_caller_is_surveyed_then_hung_up(cfg, files):
    """Queue option c: the caller continues in the dialplan; the survey script decides whether to ask."""
    priorities = extension(files["extensions.conf"], "hotline-queue", "s")
    apps = [(app, args) for _, app, args in priorities]
    survey = apps.index(("AGI", f"agi://{cfg.fastagi.host}:{cfg.fastagi.port}/survey"))
    assert apps[survey + 1:survey + 4] == [
        ("GotoIf", '$["${AGISTATUS}" != "FAILURE" | ${ISNULL(${GLOBAL(HOTLINE_AGI_BACKUP)})}]?surveyed'),
        ("AGI", "agi://${GLOBAL(HOTLINE_AGI_BACKUP)}/survey"), ("Hangup", "")]
    assert apps.index(("Queue", f"{cfg.queue.name},rc")) < survey


def test_queue_context_records_the_caller_only_when_the_gateway_asks_for_the_fallback(cfg, files):
    priorities = extension(files["extensions.conf"], "hotline-queue", "s")
    apps = [app for _, app, _ in priorities]
    skip = [args for _, app, args in priorities if app == "GotoIf" and "HOTLINE_CAPTURE" in args]
    assert skip == ['$["${HOTLINE_CAPTURE}" != "record" | ${ISNULL(${HOTLINE_CALL_ID})}]?enter']
    [whole_call, monitor] = [args for _, app, args in priorities if app == "MixMonitor"]
    rec = cfg.speech.asterisk_recording_dir
    assert monitor == f"{rec}/${{HOTLINE_CALL_ID}}-call.wav,r({rec}/${{HOTLINE_CALL_ID}}.wav)"
    capture = [label for label, _, _ in priorities].index("capture")
    assert capture < [args for _, _, args in priorities].index(monitor) < apps.index("Queue")


def test_every_queued_call_is_recorded_once_while_bridged_and_the_gateway_told_at_hangup(cfg, files):
    """MixMonitor b (both parties, only while bridged), named by the channel's own uniqueid, started once however
    often the caller comes back to the queue; a hangup handler sends the event the gateway files it on."""
    priorities = extension(files["extensions.conf"], "hotline-queue", "s")
    calls = f"{cfg.speech.asterisk_recording_dir}/calls"
    steps = [(app, args) for _, app, args in priorities]
    start = steps.index(("MixMonitor", f"{calls}/${{UNIQUEID}}.wav,b"))
    assert steps[start - 2] == ("GotoIf", "$[${EXISTS(${HOTLINE_RECORDING})}]?capture")
    assert steps[start - 1] == ("Set", "HOTLINE_RECORDING=${UNIQUEID}")
    assert steps[start + 1] == ("Set", "CHANNEL(hangup_handler_push)=hotline-recording-done,s,1")
    assert "CALLERID" not in f"{steps[start]}"
    done = extension(files["extensions.conf"], "hotline-recording-done", "s")
    assert [(app, args) for _, app, args in done] == [("UserEvent", "HotlineRecording,Call: ${UNIQUEID}"),
                                                      ("Return", "")]


def test_entry_follows_the_configured_number_and_fastagi_address(tmp_path):
    path = tmp_path / "hotline.toml"
    path.write_text('[sip]\nhotline_number = "12346"\n[fastagi]\nhost = "10.0.0.9"\nport = 4600\n')
    text = render_all(load_config(path), SECRET)["extensions.conf"]
    priorities = extension(text, "hotline-in", "12346")
    assert ("AGI", "agi://10.0.0.9:4600/entry") in [(app, args) for _, app, args in priorities]
    assert extension(text, "hotline-in", "12345") == []
    assert extension(text, "hotline-in", "_X.") == [(None, "Goto", "hotline-in,12346,1")]


def test_a_second_gateway_is_tried_only_when_the_first_cannot_be_reached(tmp_path):
    path = tmp_path / "hotline.toml"
    path.write_text('[fastagi]\nbackup = "127.0.0.2:4673"\n')
    text = render_all(load_config(path), SECRET)["extensions.conf"]
    assert section(text, "globals")["HOTLINE_AGI_BACKUP"] == ["127.0.0.2:4673"]
    apps = [(label, app, args) for label, app, args in extension(text, "hotline-in", "12345")]
    first = apps.index((None, "AGI", "agi://127.0.0.1:4573/entry"))
    assert apps[first + 1] == (None, "GotoIf", ENTRY_NO_FAILOVER + "?entered")
    assert apps[first + 2] == (None, "AGI", "agi://${GLOBAL(HOTLINE_AGI_BACKUP)}/entry")
    assert apps[first + 3][0] == "entered" and apps[first + 3][2].startswith(ENTRY_IS_HANGUP)
    # without one the global is empty and the dialplan goes on as before
    (tmp_path / "none.toml").write_text("")
    assert section(render_all(load_config(tmp_path / "none.toml"), SECRET)["extensions.conf"],
                   "globals")["HOTLINE_AGI_BACKUP"] == [""]
    bad = tmp_path / "bad.toml"
    bad.write_text('[fastagi]\nbackup = "gateway-b"\n')
    with pytest.raises(ConfigError, match="fastagi.backup"):
        load_config(bad)


# -- write_all ------------------------------------------------------------------------------------------------------

def test_write_all_writes_every_file_with_manager_conf_0640(cfg, files, tmp_path):
    target = tmp_path / "etc" / "asterisk"
    written = write_all(cfg, SECRET, target, owner=(os.getuid(), os.getgid()))
    assert [p.name for p in written] == list(CONF_FILES)
    assert sorted(p.name for p in target.iterdir()) == sorted(CONF_FILES)  # no .tmp left behind
    for path in written:
        assert path.read_text(encoding="utf-8") == files[path.name]
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o640 if path.name == "manager.conf" else 0o644), (path.name, oct(mode))


def test_write_all_tightens_an_existing_world_readable_manager_conf(cfg, tmp_path):
    old = tmp_path / "manager.conf"
    old.write_text("secret = old\n")
    old.chmod(0o666)
    write_all(cfg, SECRET, tmp_path)
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    assert "secret = old" not in old.read_text() and SECRET in old.read_text()


def test_template_dir_is_the_repository_asterisk_conf():
    assert TEMPLATE_DIR == Path(__file__).resolve().parents[2] / "asterisk_conf"


def test_the_hotlines_own_calls_dial_only_the_gateways_string_and_report_once(cfg, files):
    """Call-back: the agent's leg dials the number the gateway set, as 12345; its end is reported by h alone.
    Return call: the answered citizen runs the survey script; a failure says why."""
    text = files["extensions.conf"]
    callback = [(app, args) for _, app, args in extension(text, "hotline-callback", "s")]
    assert ("Set", f"CALLERID(all)={cfg.sip.hotline_number} <{cfg.sip.hotline_number}>") in callback
    assert ("Dial", f"${{HOTLINE_OUTBOUND_DIAL}},{cfg.aftercall.ring_s}") in callback
    assert not any(app == "UserEvent" and "DIALSTATUS" in args for app, args in callback)
    [(_, end)] = [(app, args) for _, app, args in extension(text, "hotline-callback", "h")]
    assert "Stage: ${IF($[${ISNULL(${DIALSTATUS})}]?agent_gone:${DIALSTATUS})}" in end
    assert "CALLERID(num)" not in text.split("[hotline-callback]")[1].split("[hotline-return-call]")[0]
    ret = [(app, args) for _, app, args in extension(text, "hotline-return-call", "s")]
    assert ("AGI", f"agi://{cfg.fastagi.host}:{cfg.fastagi.port}/return_call") in ret
    failed = [args for _, app, args in extension(text, "hotline-return-call", "failed") if app == "UserEvent"]
    assert failed == ["HotlineReturnCall,Id: ${HOTLINE_RETURN_CALL},Stage: failed,Reason: ${REASON}"]
