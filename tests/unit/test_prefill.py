"""The pre-fill writes the triage into the call's draft, with its scores, and offers a spoken emergency."""

from datetime import datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from ivr.speech.capture import CaptureResult
from ivr.triage.model import TriageModel
from ivr.triage.prefill import TicketPrefill
from ivr.triage.training import fit_field

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
CALL = "1764222222.7"


class Offers(list):
    """The spoken-emergency offers the pre-fill made (its on_emergency callback)."""

    async def record(self, **kwargs) -> None:
        self.append(kwargs)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    await s.open_call(call_id=CALL, number="+8613800138000", channel="PJSIP/trunk-1",
                      started_at=NOW - timedelta(minutes=1))
    yield s
    await s.close()


async def test_the_draft_gets_the_fields_and_their_scores_and_an_emergency_is_offered(store, tmp_path):
    ticket_id = await store.create_ticket_draft(call_id=CALL, request_type=None, created_at=NOW)
    offers = Offers()
    prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: NOW, on_emergency=offers.record)
    await prefill(CaptureResult(CALL, b"", "阿婆 喺 楼梯 跌咗 起唔到身 赤坎区 大通街 十 号", "silence"))
    draft = await store.get_ticket_draft(ticket_id)
    assert (draft["type"], draft["category"], draft["emergency"]) == ("help", "医疗卫生", "120")
    assert set(draft["scores"]) >= {"type", "category", "unit", "emergency", "address"}
    assert draft["prefilled"]["category"] == "医疗卫生" and draft["prefilled"]["due"] == draft["due"].isoformat()
    assert "transcript" not in draft["prefilled"] and "scores" not in draft["prefilled"]
    assert offers == [{"call_id": CALL, "ticket_id": ticket_id, "situation_id": "medical"}]


async def test_the_configured_model_is_used(store, tmp_path):
    ticket_id = await store.create_ticket_draft(call_id=CALL, request_type=None, created_at=NOW)
    texts = ["公园里的鸽子", "广场上的鸽子"] * 6 + ["楼下那条流浪狗", "门口的野狗"] * 6
    model = TriageModel({"type": fit_field(texts, ["suggestion"] * 12 + ["help"] * 12)}, {})
    prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: NOW, model=model)
    await prefill(CaptureResult(CALL, b"", "公园里的鸽子", "silence"))
    draft = await store.get_ticket_draft(ticket_id)
    assert draft["type"] == "suggestion" and draft["scores"]["type"]["runner_up"] == "help"


async def test_an_unusable_spoken_number_costs_neither_the_pre_fill_nor_the_emergency(store, tmp_path, caplog):
    ticket_id = await store.create_ticket_draft(call_id=CALL, request_type=None, created_at=NOW)
    offers = Offers()
    prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: NOW, on_emergency=offers.record)
    await prefill(CaptureResult(CALL, b"", "我的电话是二三四五六七八，家里着火了", "silence"))
    draft = await store.get_ticket_draft(ticket_id)
    assert (draft["type"], draft["category"], draft["emergency"]) == ("help", "消防安全", "119")
    assert draft["callback_number"] is None and "二三四五六七八" in draft["transcript"]
    assert [o["situation_id"] for o in offers] == ["fire"]


async def test_a_field_the_store_refuses_is_left_out_and_not_logged(store, tmp_path, caplog, monkeypatch):
    """Whatever value the store refuses (here a number no check upstream caught), the other fields and the
    emergency offer go on, and the log names the field but not the caller's number."""
    import dataclasses

    import ivr.triage.prefill as prefill_module

    real = prefill_module.triage
    monkeypatch.setattr(prefill_module, "triage",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), callback_number="2345678"))
    ticket_id = await store.create_ticket_draft(call_id=CALL, request_type=None, created_at=NOW)
    offers = Offers()
    prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: NOW, on_emergency=offers.record)
    with caplog.at_level("INFO"):
        await prefill(CaptureResult(CALL, b"", "家里着火了 电话 二三四五六七八", "silence"))
    draft = await store.get_ticket_draft(ticket_id)
    assert (draft["emergency"], draft["category"], draft["callback_number"]) == ("119", "消防安全", None)
    assert draft["transcript"] and offers
    assert "callback_number" not in draft["prefilled"] and draft["prefilled"]["emergency"] == "119"
    assert "field=callback_number" in caplog.text and "2345678" not in caplog.text
