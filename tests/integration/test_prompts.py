import json
import shutil
import threading
import wave

import pytest

import ivr.prompts
from ivr.menu import DEFAULT_MENU_PATH, load_menu
from ivr.prompts import (
    DEFAULT_CATALOGUE_PATH, CatalogueError, PromptBuildError, build_prompts, catalogue_units, load_catalogue,
    unit_prompt_name,
)
from ivr.say import WORD_PROMPTS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SMALL = """
transfer_agent = "正在为您转接人工服务，请稍候"
digit_8 = "八"
ticket_prompt = "请输入工单编号，以井号键结束"
"""


def write(tmp_path, text, name="zh.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def wav_info(path):
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


async def test_prompts_are_built_as_8khz_mono_16bit_wav(tmp_path):
    out = tmp_path / "zh"
    report = await build_prompts(write(tmp_path, SMALL), out, units=())
    assert report.built == ["transfer_agent", "digit_8", "ticket_prompt"] and report.skipped == []
    for name in report.built:
        rate, channels, width, seconds = wav_info(out / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2)
        assert seconds > 0.3, name
    assert wav_info(out / "transfer_agent.wav")[3] > wav_info(out / "digit_8.wav")[3]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["prompts"]) == {"transfer_agent", "digit_8", "ticket_prompt"}


async def test_second_run_skips_unchanged_prompts_and_rebuilds_changed_ones(tmp_path):
    catalogue, out = write(tmp_path, SMALL), tmp_path / "zh"
    await build_prompts(catalogue, out, units=())
    first_mtime = (out / "digit_8.wav").stat().st_mtime_ns

    again = await build_prompts(catalogue, out, units=())
    assert again.built == [] and sorted(again.skipped) == ["digit_8", "ticket_prompt", "transfer_agent"]
    assert (out / "digit_8.wav").stat().st_mtime_ns == first_mtime

    write(tmp_path, SMALL.replace('"八"', '"九"'))
    (out / "ticket_prompt.wav").unlink()
    changed = await build_prompts(catalogue, out, units=())
    assert changed.built == ["digit_8", "ticket_prompt"] and changed.skipped == ["transfer_agent"]

    assert len((await build_prompts(catalogue, out, force=True, units=())).built) == 3
    assert len((await build_prompts(catalogue, out, voice="cmn", units=())).built) == 3


async def test_conversion_runs_off_the_event_loop_thread(tmp_path, monkeypatch):
    threads = []
    convert = ivr.prompts._convert

    def spy(src, dest):
        threads.append(threading.current_thread())
        convert(src, dest)

    monkeypatch.setattr(ivr.prompts, "_convert", spy)
    await build_prompts(write(tmp_path, SMALL), tmp_path / "zh", units=())
    assert len(threads) == 3 and threading.main_thread() not in threads


@pytest.mark.parametrize("text, name, reason", [
    ('Welcome = "您好"', "Welcome", "must match"),
    ('welcome-en = "hello"', "welcome-en", "must match"),
    ('retry = ""', "retry", "non-empty"),
    ('retry = "  "', "retry", "non-empty"),
    ("retry = 3", "retry", "non-empty"),
    ('retry = "-v en 坏"', "retry", "must not start with '-'"),
])
async def test_a_broken_catalogue_raises_naming_the_prompt(tmp_path, text, name, reason):
    path = write(tmp_path, SMALL + text + "\n")
    with pytest.raises(CatalogueError) as info:
        await build_prompts(path, tmp_path / "zh", units=())
    assert f"{path}: {name}: " in str(info.value) and reason in str(info.value)
    assert isinstance(info.value, PromptBuildError)  # what `hotline prompts build` reports
    assert not (tmp_path / "zh" / "transfer_agent.wav").exists()


def test_a_catalogue_that_is_not_toml_is_named(tmp_path):
    path = write(tmp_path, 'welcome = "unterminated')
    with pytest.raises(CatalogueError, match="not valid TOML"):
        load_catalogue(path)


async def test_missing_espeak_ng_is_a_clear_error(tmp_path):
    with pytest.raises(PromptBuildError, match=r"prompt '\w+': .*not found"):
        await build_prompts(write(tmp_path, SMALL), tmp_path / "zh", espeak=str(tmp_path / "no-espeak-ng"), units=())


async def test_espeak_failure_names_the_prompt_and_keeps_the_prompts_already_built(tmp_path):
    # A wrapper around the real espeak-ng that fails on one text, as espeak-ng does for a voice it lacks.
    wrapper = tmp_path / "espeak-ng"
    wrapper.write_text('#!/bin/sh\ncase "$*" in *坏*) echo "broken text" >&2; exit 3;; esac\n'
                       f'exec {shutil.which("espeak-ng")} "$@"\n')
    wrapper.chmod(0o755)
    catalogue, out = write(tmp_path, SMALL + 'ticket_not_found = "坏"\n'), tmp_path / "zh"
    with pytest.raises(PromptBuildError, match=r"prompt 'ticket_not_found'.*exit 3.*broken text"):
        await build_prompts(catalogue, out, espeak=str(wrapper), jobs=1, units=())
    assert set(json.loads((out / "manifest.json").read_text())["prompts"]) == {
        "transfer_agent", "digit_8", "ticket_prompt"}

    write(tmp_path, SMALL + 'ticket_not_found = "对不起，没有查到该工单。"\n')
    report = await build_prompts(catalogue, out, espeak=str(wrapper), units=())
    assert report.built == ["ticket_not_found"]


async def test_an_unknown_voice_is_a_clear_error_not_english_babble(tmp_path):
    # espeak-ng itself exits 0 for an unknown voice, speaking English instead.
    with pytest.raises(PromptBuildError, match="prompt 'transfer_agent': voice 'no-such-voice' is not installed"):
        await build_prompts(write(tmp_path, SMALL), tmp_path / "zh", voice="no-such-voice", units=())


@pytest.mark.parametrize("voice", ["cmn", "cmn-latn-pinyin", "zh", "sit/cmn", "cmn-latn-pinyin+f3", "yue"])
async def test_installed_voices_are_accepted_by_language_name_or_file(tmp_path, voice):
    report = await build_prompts(write(tmp_path, 'digit_1 = "一"'), tmp_path / "zh", voice=voice, units=())
    assert report.built == ["digit_1"]


async def test_the_shipped_catalogue_builds_every_prompt_the_menu_and_say_use(tmp_path):
    out = tmp_path / "zh"
    report = await build_prompts(DEFAULT_CATALOGUE_PATH, out)
    menu = load_menu(DEFAULT_MENU_PATH)
    needed = {name for _, name in menu.prompt_refs()} | set(WORD_PROMPTS) | {"restricted_intro", "restricted_outro"}
    assert needed <= set(report.built)
    # and the name of every unit of the unit catalogue, for the progress query (art. 12)
    assert {unit_prompt_name(u) for u in catalogue_units()} <= set(report.built)
    for name in report.built:
        assert wav_info(out / f"{name}.wav")[:3] == (8000, 1, 2)

    # A silent caller: the digit wait after the welcome, then the transfer prompt, then the queue (GB/T 33358).
    wait_ms = menu.nodes[menu.start].timeout_ms
    transfer_ms = wav_info(out / f"{menu.transfer_prompt}.wav")[3] * 1000
    assert wait_ms + transfer_ms <= 10_000
