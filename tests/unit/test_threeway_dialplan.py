"""The rendered ``[hotline-threeway]`` context (agent console three-way transfer) and what it relies on."""

import re

import pytest

from gateway.asterisk_render import render_all
from gateway.config import load_config
from linkage import agent_transfer


@pytest.fixture(scope="module")
def files():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HOTLINE_CONFIG", raising=False)
        return render_all(load_config(), "secret")


def contexts(text: str) -> dict[str, list[str]]:
    """Dialplan lines (comments and blanks dropped) by context; a context named twice fails."""
    out: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            current = m.group(1)
            assert current not in out, f"[{current}] appears twice"
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def priorities(lines: list[str], exten: str) -> list[tuple[str | None, str, str]]:
    """(label, application, arguments) of ``exten``'s priorities, in order."""
    out, inside = [], False
    for line in lines:
        if m := re.fullmatch(r"exten\s*=>\s*([^,]+),\s*1,(.*)", line):
            inside, label, body = m.group(1) == exten, None, m.group(2)
        elif m := re.fullmatch(r"same\s*=>\s*n(?:\(([^)]*)\))?,(.*)", line):
            label, body = m.group(1), m.group(2)
        else:
            raise AssertionError(f"unexpected dialplan line {line!r}")
        if inside:
            app = re.fullmatch(r"(\w+)\((.*)\)", body)
            assert app, f"not an application call: {line!r}"
            out.append((label, app.group(1), app.group(2)))
    return out


def conf_sections(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            current = out.setdefault(m.group(1), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return out


def test_threeway_joins_the_cases_conference_with_the_legs_profile_and_hangs_up_after(files):
    steps = priorities(contexts(files["extensions.conf"])[agent_transfer.THREEWAY_CONTEXT], "s")
    apps = [app for _, app, _ in steps]
    assert apps == ["GotoIf", "ConfBridge", "Hangup"]
    conference, bridge, user = steps[1][2].split(",", 2)
    assert conference == "${%s}" % agent_transfer.CONF_VAR
    assert bridge == agent_transfer.BRIDGE_PROFILE
    # The leg's profile from HOTLINE_CONF_USER, else the plain user profile.
    assert user == ("${IF($[${ISNULL(${%s})}]?%s:${%s})}"
                    % (agent_transfer.CONF_USER_VAR, agent_transfer.USER_PROFILE, agent_transfer.CONF_USER_VAR))
    assert user.count("(") == user.count(")") and user.count("{") == user.count("}")


def test_a_channel_without_a_conference_name_is_hung_up_not_put_in_an_empty_one(files):
    steps = priorities(contexts(files["extensions.conf"])[agent_transfer.THREEWAY_CONTEXT], "s")
    label, app, args = steps[0]
    assert app == "GotoIf" and args == "$[${ISNULL(${%s})}]?done" % agent_transfer.CONF_VAR
    assert steps[-1][:2] == ("done", "Hangup")


def test_threeway_is_reached_only_by_redirect(files):
    text = files["extensions.conf"]
    lines = contexts(text)[agent_transfer.THREEWAY_CONTEXT]
    entries = [line for line in lines if line.startswith("exten") and not line.startswith("exten => h,")]
    assert entries == [lines[0]] and lines[0].startswith("exten => s,1,")
    assert not re.search(r"include\s*=>\s*hotline-threeway", text)
    assert not re.search(r"Goto(If)?\([^)]*hotline-threeway", text)


def test_the_profiles_the_transfer_names_exist_in_confbridge_conf(files):
    sections = conf_sections(files["confbridge.conf"])
    assert sections[agent_transfer.BRIDGE_PROFILE]["type"] == "bridge"
    user = sections[agent_transfer.USER_PROFILE]
    assert user["type"] == "user" and user["quiet"] == "yes"    # announcements would cost the caller 3 s


def test_blind_transfer_target_and_the_modules_and_ami_rights_are_there(files):
    assert priorities(contexts(files["extensions.conf"])[agent_transfer.LINKAGE_CONTEXT], "s")
    loaded = {line.split("=>", 1)[1].strip() for line in files["modules.conf"].splitlines()
              if line.strip().startswith("load")}
    assert {"app_confbridge.so", "bridge_softmix.so", "func_logic.so"} <= loaded
    writes = set()
    for section in conf_sections(files["manager.conf"]).values():
        writes |= {c.strip() for c in section.get("write", "").split(",") if c.strip()}
    assert {"call", "originate"} <= writes    # Setvar/Redirect; Originate


def test_the_callers_hangup_in_the_conference_is_reported_with_its_handoff(files):
    [(_, app, args)] = priorities(contexts(files["extensions.conf"])[agent_transfer.THREEWAY_CONTEXT], "h")
    assert app == "UserEvent"
    name, *fields = [part.strip() for part in args.split(",")]
    assert name == agent_transfer.LINKAGE_EVENT
    assert "Handoff: ${HOTLINE_HANDOFF_ID}" in fields and "Stage: left" in fields
