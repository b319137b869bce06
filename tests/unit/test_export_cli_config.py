"""`hotline export` (exit codes, messages, the file, masking unless --full and the config allow it) and the
``[export]`` section (a clear ConfigError naming each bad field); the store on both backends."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.cli import export as cli_export
from gateway.config import CONFIG_ENV, ConfigError, load_config
from gateway.store.database import Store
from tests.conftest import store_section
from tests.export_rows import T0, answered_call, restriction_decided_and_lifted
from datetime import timedelta


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)


@pytest.fixture
def export_section():
    return dataclasses.replace(load_config().export)


@pytest.fixture
async def config(store_location, export_section):
    async with await Store.open(store_location) as store:
        await answered_call(store, "1764000001.1", T0)
        await answered_call(store, "1764000002.2", T0 + timedelta(hours=1))
        await restriction_decided_and_lifted(store, T0)
    return SimpleNamespace(store=store_section(store_location), export=export_section)


@pytest.fixture
def run(cli, config):
    return cli(config, cli_export)


async def test_the_window_goes_to_the_file_as_json_lines_masked(run, tmp_path):
    out = tmp_path / "export.jsonl"
    code, stdout, stderr = await run("export", "--since", "2026-11-30", "--until", "2026-11-30T09:30",
                                     "--format", "jsonl", "--out", str(out))
    assert code == 0 and stdout == ""
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["record_type"], r.get("call_id")) for r in records] == [("call", "1764000001.1"),
                                                                      ("ticket", "1764000001.1")]
    assert all(r["numbers"] == "masked" for r in records) and "13800138000" not in out.read_text()
    assert "exported 1 call records, 1 ticket records (masked numbers)" in stderr
    assert os.stat(out).st_mode & 0o777 == 0o640 and not list(tmp_path.glob(".*partial"))


async def test_without_out_the_records_go_to_standard_output(run):
    code, stdout, _ = await run("export", "--since", "2026-11-30T00:00+08:00", "--until", "2026-12-01")
    assert code == 0 and [json.loads(line)["call_id"] for line in stdout.splitlines()] == ["1764000001.1",
                                                                                          "1764000002.2"] * 2


async def test_full_numbers_need_the_flag_and_the_config(run, config):
    code, _, err = await run("export", "--since", "2026-11-30", "--until", "2026-12-01", "--full")
    assert code == 2 and "--full needs export.full_numbers = true" in err
    config.export = dataclasses.replace(config.export, full_numbers=True)
    code, stdout, _ = await run("export", "--since", "2026-11-30", "--until", "2026-12-01")
    assert code == 0 and "+8613800138000" not in stdout          # allowed, not asked: still masked
    code, stdout, _ = await run("export", "--since", "2026-11-30", "--until", "2026-12-01", "--full")
    assert code == 0 and json.loads(stdout.splitlines()[0])["caller_number"] == "+8613800138000"


async def test_the_restriction_audit_is_in_the_file_only_when_configured(run, config):
    _, stdout, _ = await run("export", "--since", "2026-11-30", "--until", "2026-12-01")
    assert "restriction_audit" not in stdout
    config.export = dataclasses.replace(config.export, include_restriction_audit=True)
    _, stdout, err = await run("export", "--since", "2026-11-30", "--until", "2026-12-01")
    assert [json.loads(line)["action"] for line in stdout.splitlines()[-2:]] == ["add", "lift"]
    assert "2 restriction audit records" in err


@pytest.mark.parametrize("args, message", [
    (("--since", "yesterday", "--until", "2026-12-01"), "error: --since: 'yesterday' is not a date or time"),
    (("--since", "2026-11-30", "--until", "2026-13-01"), "error: --until: '2026-13-01' is not a date or time"),
    (("--since", "2026-12-01", "--until", "2026-11-30"),
     "error: --until (2026-11-30T00:00:00+08:00) must be after --since (2026-12-01T00:00:00+08:00)"),
    (("--since", "2026-11-30T09:00", "--until", "2026-11-30T01:00Z"), "must be after --since"),
])
async def test_bad_times_exit_2_with_a_message_naming_the_option(run, args, message, tmp_path):
    code, stdout, err = await run("export", *args, "--out", str(tmp_path / "x.jsonl"))
    assert code == 2 and message in err and stdout == "" and not (tmp_path / "x.jsonl").exists()


async def test_an_output_file_that_cannot_be_written_exits_1(run, tmp_path):
    code, _, err = await run("export", "--since", "2026-11-30", "--until", "2026-12-01",
                             "--out", str(tmp_path / "missing" / "x.jsonl"))
    assert code == 1 and "error: --out: cannot write" in err


async def test_an_unknown_format_is_refused_by_the_parser(run):
    with pytest.raises(SystemExit) as info:
        await run("export", "--since", "2026-11-30", "--until", "2026-12-01", "--format", "csv")
    assert info.value.code == 2


def test_the_export_defaults_push_nothing_and_mask(export_section):
    assert export_section.endpoint == "" and not export_section.full_numbers
    assert not export_section.include_restriction_audit and export_section.ca_file is None


def _problems(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "hotline.toml"
    path.write_text("[export]\n" + text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return {p.field: p.reason for p in info.value.problems}


@pytest.mark.parametrize("setting, field, reason", [
    ('endpoint = "http://province.example/api"', "export.endpoint", "https:// URL"),
    ('endpoint = "https://"', "export.endpoint", "https:// URL"),
    ('endpoint = "https://host:99999/x"', "export.endpoint", "https:// URL"),
    ('batch_size = 0', "export.batch_size", "1-5000"),
    ('batch_size = "500"', "export.batch_size", "must be int"),
    ('interval_s = 0', "export.interval_s", "1-86400 s"),
    ('settle_s = -1', "export.settle_s", "1-3600 s"),
    ('open_limit_s = 10', "export.open_limit_s", "60-604800 s"),
    ('token_env = "1 TOKEN"', "export.token_env", "environment variable name"),
    ('ca_file = "/nonexistent/ca.pem"', "export.ca_file", "existing PEM file"),
    ('source = "Zhan Jiang"', "export.source", "lower-case letters"),
    ('full_numbers = "yes"', "export.full_numbers", "must be bool"),
    ('include_restriction_audit = 1', "export.include_restriction_audit", "must be bool"),
    ('retry_max_s = 0.5', "export.retry_max_s", "1-3600 s"),
    ('push = true', "export.push", "unknown setting"),
])
def test_a_bad_export_setting_is_a_config_error_naming_the_field(tmp_path, setting, field, reason):
    problems = _problems(tmp_path, setting + "\n")
    assert field in problems and reason in problems[field], problems


def test_a_good_export_section_loads(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    path = tmp_path / "hotline.toml"
    path.write_text(f'[export]\nendpoint = "https://12345.gd.gov.cn:8443/api/v1/records"\nca_file = "{ca}"\n'
                    'full_numbers = true\ninclude_restriction_audit = true\ntoken_env = ""\nsource = "zhanjiang-12345"\n',
                    encoding="utf-8")
    section = load_config(path).export
    assert (section.endpoint, section.ca_file, section.full_numbers, section.token_env) == (
        "https://12345.gd.gov.cn:8443/api/v1/records", ca, True, "")


async def test_no_endpoint_no_push_and_a_ca_file_without_certificates_stops_only_the_push(store, tmp_path, caplog):
    from gateway.basics.clock import utc_now
    from gateway.export.configured import start_configured_push
    section = load_config().export
    assert await start_configured_push(section, store, clock=utc_now) is None
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n", encoding="utf-8")
    section = dataclasses.replace(section, endpoint="https://province.example/api", ca_file=bad)
    assert await start_configured_push(section, store, clock=utc_now) is None
    assert "event=export_push_off reason=ca_file_unusable" in caplog.text
