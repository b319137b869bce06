"""The daily report and the nuisance review on a store filled with known calls (tests/office_day.py), on both
backends: the figures, the formats, the CLI, and the console's supervisors' page."""
from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import report as cli_report
from gateway.config import load_config
from gateway.office.charts import chinese_font, draw_charts
from gateway.office.daily import read_report, report_dict
from gateway.office.nuisance import ReviewSettings, read_review_list, request_restriction
from gateway.office.report_html import render_html
from tests.conftest import store_section
from tests.office_day import DAY, EXPECTED, NUISANCE, fill_day

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def day_store(store):
    await fill_day(store)
    return store


async def report_of(store):
    return await read_report(store, DAY, zone=SHANGHAI, timely_answer_s=15)


async def test_the_headline_figures_of_a_known_day(day_store):
    report = await report_of(day_store)
    headline = {row["key"]: row["value"] for row in report_dict(report)["headline"]}
    assert {key: headline[key] for key in EXPECTED} == EXPECTED
    assert sum(h["offered"] for h in report.calls.hourly) == 10 and report.calls.hourly[9]["answered"] == 3


async def test_requests_handoffs_satisfaction_callbacks_and_prefill_of_a_known_day(day_store):
    report = await report_of(day_store)
    assert report.requests["type"] == [("complaint", 2), ("consultation", 1), ("help", 1), ("report", 1)]
    assert [(h["centre"], h["answered"], h["answer_s_avg"], h["fallbacks"]) for h in report.handoffs] == [
        ("110", 1, 4.0, 0), ("119", 0, None, 1)]
    intake = report.satisfaction["intake"]
    assert (intake["asked"], intake["levels"][1], intake["levels"][4], intake["not_rated"],
            intake["satisfaction_rate"]) == (3, 1, 1, 1, 50.0)
    assert (report.callbacks["due"], report.callbacks["done_in_time"], report.callbacks["callbacks_in_time"]) == (
        1, 1, 100.0)
    prefill = report.prefill
    assert (prefill["tickets"], prefill["covered"], prefill["prefill_coverage"]) == (5, 2, 40.0)
    assert prefill["fields"]["category"] == {"filled": 2, "saved": 2, "changed": 1, "accuracy": 50.0}
    assert prefill["prefill_accuracy"] == 80.0
    assert [(a["text"], a["heard"], a["answered"]) for a in report.announcements] == [("赤坎区今日停水至十八时", 1, 1)]


async def test_the_html_report_holds_every_chart_and_figure_and_no_caller_number(day_store, caplog):
    report = await report_of(day_store)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        charts = draw_charts(report)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert chinese_font() is not None and not missing and "missing from" not in caplog.text
    page = render_html(report, charts)
    assert [c.key for c in charts] == ["calls_per_hour", "waits", "types", "satisfaction", "handoffs"]
    assert page.count("<svg") == 5 and "人工接通率" in page and "57.14%" in page and "15秒应答及时率" in page
    assert "13800138000" not in page and NUISANCE[3:] not in page and "<script" not in page


async def test_the_cli_writes_json_csv_and_html(day_store, store_location, cli, tmp_path):
    config = SimpleNamespace(store=store_section(store_location), gateway=SimpleNamespace(timezone="Asia/Shanghai"),
                             office=load_config(None).office)
    run = cli(config, cli_report)
    code, out, err = await run("report", "daily", "--date", DAY.isoformat(), "--format", "json")
    assert code == 0 and err == ""
    assert {r["key"]: r["value"] for r in json.loads(out)["headline"]}["connection_rate"] == 57.14
    code, out, _ = await run("report", "daily", "--date", DAY.isoformat(), "--format", "csv")
    rows = {(r["section"], r["key"]): r for r in csv.DictReader(io.StringIO(out))}
    assert rows[("headline", "timely_rate")]["value"] == "66.67" and rows[("headline", "offered")]["definition"]
    target = tmp_path / "daily.html"
    code, out, _ = await run("report", "daily", "--date", DAY.isoformat(), "--out", str(target))
    assert code == 0 and target.read_text(encoding="utf-8").count("<svg") == 5
    with pytest.raises(SystemExit):
        await run("report", "daily", "--date", "2026-13-01")


async def test_the_review_lists_busy_and_silent_numbers_and_never_restricts(day_store):
    settings = ReviewSettings(calls_per_day=8, silent_calls=1, window_days=7)
    entries = await read_review_list(day_store, DAY, zone=SHANGHAI, settings=settings, now=NOW)
    assert [(e.number, e.calls_on_busiest_day, e.silent_calls) for e in entries] == [
        ("+8613800138000", 8, 0), (NUISANCE, 0, 1)]
    assert entries[0].busiest_day == DAY and entries[0].last_call_id == "1764000010.10"
    assert await day_store.active_restriction(NUISANCE, NOW) is None
    request = await request_restriction(day_store, entries[1].last_call_id, requested_by="lead1", reason="无声来电",
                                        at=NOW)
    pending = await day_store.get_pending_restriction(request)
    assert pending["number"] == NUISANCE and pending["status"] == "pending"
    again = await read_review_list(day_store, DAY, zone=SHANGHAI, settings=settings, now=NOW)
    assert again[1].pending_request == request
    assert [e.number for e in await read_review_list(day_store, DAY, zone=SHANGHAI, now=NOW, settings=ReviewSettings(
        calls_per_day=9, silent_calls=2, window_days=7))] == []


async def test_the_nuisance_commands_mask_numbers_and_raise_a_request(day_store, store_location, cli):
    office = load_config(None).office
    config = SimpleNamespace(store=store_section(store_location), gateway=SimpleNamespace(timezone="Asia/Shanghai"),
                             office=SimpleNamespace(**{**office.__dict__, "nuisance_silent_calls": 1}))
    run = cli(config, cli_report)
    code, out, _ = await run("nuisance", "list", "--date", DAY.isoformat(), "--json")
    listed = json.loads(out)
    assert code == 0 and [e["number"] for e in listed] == ["137****5555"]
    code, out, _ = await run("nuisance", "request", listed[0]["last_call_id"], "--by", "lead1", "--reason", "无声来电")
    assert code == 0 and "restrict confirm" in out
    code, _, err = await run("nuisance", "request", "no-such-call", "--by", "lead1", "--reason", "x")
    assert code == 1 and "no call" in err
