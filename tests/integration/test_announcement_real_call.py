"""Incident announcements on the real stack (Zhanjiang 12345 rules, art. 18), all without restarting the gateway:
an announcement added with the CLI while the stack runs is made into a sound file by the gateway (espeak-ng) and
played by Asterisk right after the welcome; a caller who keys 3 during it gets the complaint path (barge-in); a
caller who hangs up after it is counted as answered by it; after `announce remove` the next caller does not hear it."""
from __future__ import annotations

import json
import random
import re
import wave

import pytest

from gateway.sandbox.processes import wait_until
from gateway.sandbox.sipp_scenario import PAUSE_MS

pytestmark = pytest.mark.integration
DIGITS = "零一二三四五六七八九"
PLAYBACK_LOG = "hotline-announcement-test.log"     # a temporary Asterisk log channel, in the instance's log dir
FIRST_KEY_AFTER_S = 1.5                            # CallerScript.first_digit_after_ms


def wav_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture
def announcements(sandbox):
    """Announcements this test adds are removed afterwards, and their sound files deleted: the stack as found."""
    added: list[dict] = []
    yield added
    for a in added:
        sandbox.hotline("announce", "remove", str(a["id"]), "--by", "test", check=False)
        sandbox.stack.root.path(sandbox.config.ivr.asterisk_prompt_dir).joinpath(f"{a['prompt']}.wav").unlink(
            missing_ok=True)


@pytest.fixture
def asterisk_playback(sandbox):
    """Asterisk's own word on what it played: a temporary log channel at verbose 3, where res_agi logs each
    STREAM FILE ("Playing '/path/name.slin' (escape_digits=...)"); removed afterwards, the verbosity put back to the configured 0."""
    root = sandbox.stack.root
    log_file = root.path(root.dirs["ast_log_dir"]) / PLAYBACK_LOG
    log_file.unlink(missing_ok=True)
    added = root.cli(f"logger add channel {PLAYBACK_LOG} verbose(3)")
    assert added.returncode == 0 and "already exists" not in added.stdout, added.stdout + added.stderr
    root.cli("core set verbose 3")
    yield log_file
    root.cli(f"logger remove channel {PLAYBACK_LOG}")
    root.cli("core set verbose 0")
    log_file.unlink(missing_ok=True)


def call_lines(log: str, call_id: str) -> str:
    return "\n".join(line for line in log.splitlines() if f"call={call_id} " in line)


def test_an_announcement_added_while_the_stack_runs_is_heard_barged_into_counted_and_removed(
        sandbox, agents, announcements, asterisk_playback):
    cfg, gateway_pid = sandbox.config, sandbox.stack.gateway.pid()
    # a text of its own each run, so this gateway has to make the file itself
    serial = "".join(random.choice(DIGITS) for _ in range(4))
    text = f"市民您好，赤坎区人民大道供水管道爆裂，正在抢修，预计今晚八点恢复供水。通知编号{serial}。"
    offset = len(sandbox.gateway_log())

    shown = json.loads(sandbox.hotline("announce", "add", "--text", text, "--until", "+1h", "--by", "test",
                                       "--json").stdout)
    announcements.append(shown)
    assert shown["state"] == "in force"
    ident, prompt = shown["id"], shown["prompt"]
    sound = sandbox.stack.root.path(cfg.ivr.asterisk_prompt_dir) / f"{prompt}.wav"
    assert wait_until(lambda: f"event=announcement_prompt_made announcement={ident} " in sandbox.gateway_log()[offset:],
                      20), sandbox.gateway_log()[offset:][-2000:]
    assert sound.is_file()
    with wave.open(str(sound)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    welcome_s, announcement_s = wav_seconds(cfg.prompt_build_dir / "welcome.wav"), wav_seconds(sound)
    assert announcement_s > 6, "long enough to key into"

    # 1. hears the welcome and the whole announcement, then hangs up during the wait for a key
    listener = sandbox.call("13800138201", dtmf="", hold_s=welcome_s + announcement_s + 1.0 - FIRST_KEY_AFTER_S)
    assert listener["hangup_by"] == "caller" and listener["outcome"] == "abandoned", listener
    assert not listener["queued"]
    lines = call_lines(sandbox.gateway_log()[offset:], listener["call_id"])
    assert f"event=announcement_played announcement={ident} prompt={prompt}" in lines, lines
    assert f"event=announcement_heard announcement={ident} key=-" in lines, "played to its end"
    # res_agi logs this once the file is open and playing, with the keys that may cut it short
    played = re.compile(re.escape(f"Playing '{cfg.ivr.asterisk_prompt_dir}/{prompt}.") + r"\w+' "
                        + re.escape("(escape_digits=0123456789*#)"))
    assert len(played.findall(asterisk_playback.read_text(errors="replace"))) == 1, asterisk_playback.read_text()

    # 2. keys 3 halfway through the announcement: the complaint path, and no second wait for a key
    pauses = round((welcome_s + announcement_s / 2 - FIRST_KEY_AFTER_S) / (PAUSE_MS / 1000))
    keyed = sandbox.call("13800138202", dtmf="," * pauses + "3", hold_s=10)
    assert keyed["ivr_path"] == ["welcome", "3"] and keyed["type"] == "complaint", keyed
    assert keyed["queued"] and keyed["answered_by"] in {"agent1", "agent2"}, keyed
    lines = call_lines(sandbox.gateway_log()[offset:], keyed["call_id"])
    assert f"event=announcement_heard announcement={ident} key=3" in lines, lines
    assert len(played.findall(asterisk_playback.read_text(errors="replace"))) == 2

    calls = {c: sandbox.store_query(lambda s, c=c: s._db.execute_fetchall(
        "SELECT announcement_id FROM calls WHERE call_id = ?", (c,))) for c in (listener["call_id"], keyed["call_id"])}
    assert {c: rows[0]["announcement_id"] for c, rows in calls.items()} == {c: ident for c in calls}
    started = sandbox.store_query(lambda s: s.get_call(listener["call_id"]))["started_at"]
    figures = sandbox.store_query(lambda s: s.announcement_figures(started, started.replace(year=started.year + 1)))
    assert [f for f in figures if f["id"] == ident] == [{"id": ident, "text": text, "heard": 2, "answered": 1}]

    # 3. removed: the gateway's next read drops it, and the next caller goes from the welcome to the wait
    removed = sandbox.hotline("announce", "remove", str(ident), "--by", "test")
    assert f"announcement {ident} removed" in removed.stdout
    assert wait_until(lambda: re.search(r"event=announcements_changed listed=(?!.*\b%d\b)" % ident,
                                        sandbox.gateway_log()[offset:]), 10)
    after = sandbox.call("13800138203", dtmf="", hold_s=welcome_s + 2.0 - FIRST_KEY_AFTER_S)
    assert after["outcome"] == "abandoned" and after["call_id"], after
    assert "event=announcement_" not in call_lines(sandbox.gateway_log()[offset:], after["call_id"])
    assert sandbox.store_query(lambda s: s.get_call(after["call_id"]))["ivr_path"] == []

    assert sandbox.stack.gateway.pid() == gateway_pid, "all of it without restarting the gateway"
    log = sandbox.gateway_log()[offset:]
    assert "13800138201" not in log and "13800138202" not in log, "no full caller number in the log"
