"""The office's figures at their boundaries (definitions in gateway/office/definitions.py)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.basics.clock import SHANGHAI
from gateway.office.call_figures import Fate, call_fate, call_figures, percentile_nearest_rank, ratio
from gateway.office.service_figures import (
    callback_figures,
    handoff_figures,
    prefill_figures,
    request_figures,
    satisfaction_figures,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


def call(n: int, outcome: str | None, *, queued: float | None = None, answered: float | None = None,
         ended: float | None = None, start: datetime = T0, request_type: str | None = None) -> dict:
    at = lambda s: None if s is None else start + timedelta(seconds=s)  # noqa: E731
    return {"call_id": f"c{n}", "started_at": start, "outcome": outcome, "queued_at": at(queued),
            "answered_at": at(answered), "ended_at": at(ended), "request_type": request_type}


def figures(calls, refused=(), timely_s=15):
    return call_figures(calls, set(refused), zone=SHANGHAI, timely_s=timely_s)


def test_an_answer_at_exactly_15_seconds_is_timely_and_one_microsecond_later_is_not():
    exact = call(1, "answered", queued=10, answered=25)
    late = call(2, "answered", queued=10, answered=25.000001)
    f = figures([exact, late])
    assert f.timely == 1 and f.timely_rate == 50.0


def test_a_hang_up_before_the_queue_is_an_ivr_abandon_and_after_joining_a_queue_abandon():
    in_menu = call(1, "abandoned", ended=4)
    in_queue = call(2, "abandoned", queued=6, ended=36)
    assert call_fate(in_menu, False) == Fate.ABANDONED_IVR and call_fate(in_queue, False) == Fate.ABANDONED_QUEUE
    f = figures([in_menu, in_queue])
    assert f.counts[Fate.ABANDONED_IVR] == 1 and f.counts[Fate.ABANDONED_QUEUE] == 1
    assert f.abandon_wait_avg == 30.0 and f.connection_rate == 0.0


def test_system_faults_untracked_and_refused_calls_are_outside_the_connection_rate():
    calls = [call(1, "answered", queued=1, answered=5), call(2, "abandoned", queued=1, ended=40),
             call(3, "failed"), call(4, "ivr"), call(5, "queued", queued=2), call(6, "blocked", ended=0)]
    f = figures(calls, refused={"c6"})
    assert f.counts == {"offered": 6, Fate.ANSWERED: 1, Fate.ABANDONED_QUEUE: 1, Fate.SYSTEM_FAULT: 1,
                        Fate.UNTRACKED: 2, Fate.REFUSED: 1, Fate.ABANDONED_IVR: 0}
    assert f.connection_rate == 50.0  # 1 answered of the 2 calls that wanted service


def test_a_refused_caller_who_reached_emergency_help_counts_as_answered_not_refused():
    rescued = call(1, "answered", queued=20, answered=24)
    assert call_fate(rescued, True) == Fate.ANSWERED
    f = figures([rescued], refused={"c1"})
    assert f.counts[Fate.REFUSED] == 0 and f.connection_rate == 100.0


def test_an_answer_without_a_recorded_queue_join_is_left_out_of_the_waits():
    f = figures([call(1, "answered", answered=30), call(2, "answered", queued=0, answered=3)])
    assert f.answered_wait_unknown == 1 and f.waits == [3.0] and f.timely_rate == 100.0
    assert f.counts[Fate.ANSWERED] == 2


def test_no_calls_give_no_rates_rather_than_zero_percent():
    f = figures([])
    assert f.connection_rate is None and f.timely_rate is None and f.wait_avg is None and f.wait_p90 is None


def test_p90_is_the_nearest_rank():
    assert percentile_nearest_rank(range(1, 11), 90) == 9
    assert percentile_nearest_rank([5.0], 90) == 5.0
    assert percentile_nearest_rank(range(1, 12), 90) == 10   # ceil(0.9 * 11) = 10th value
    assert ratio(1, 3) == 33.33 and ratio(0, 0) is None


def test_calls_are_counted_in_the_local_hour_they_started():
    late_evening = datetime(2026, 12, 1, 23, 59, 59, tzinfo=SHANGHAI)
    f = figures([call(1, "answered", queued=0, answered=10, start=late_evening), call(2, "abandoned")])
    assert f.hourly[23]["offered"] == 1 and f.hourly[23]["wait_avg"] == 10.0 and f.hourly[9]["abandoned"] == 1
    assert sum(h["offered"] for h in f.hourly) == 2


def test_requests_by_type_category_and_unit_count_missing_values_apart():
    tickets = [{"type": "complaint", "category": "噪音", "unit": "市生态环境局"},
               {"type": "complaint", "category": "噪音", "unit": None}, {"type": None, "category": None, "unit": None}]
    r = request_figures(tickets)
    assert r["type"] == [("complaint", 2), ("unspecified", 1)]
    assert r["unit"] == [("(none)", 2), ("市生态环境局", 1)]


def test_handoffs_per_centre_with_answer_times_and_fallbacks():
    h = handoff_figures([
        {"centre": "110", "requested_at": T0, "answered_at": T0 + timedelta(seconds=4), "result": "answered"},
        {"centre": "110", "requested_at": T0, "answered_at": T0 + timedelta(seconds=8), "result": "answered"},
        {"centre": "110", "requested_at": T0, "answered_at": None, "result": "fallback_queue"},
        {"centre": "119", "requested_at": T0, "answered_at": None, "result": "no_answer"},
        {"centre": "119", "requested_at": T0, "answered_at": None, "result": None}])
    assert h[0] == {"centre": "110", "requested": 3, "answered": 2, "fallbacks": 1, "not_answered": 0, "open": 0,
                    "answer_s_avg": 6.0, "answer_s_max": 8.0}
    assert (h[1]["not_answered"], h[1]["open"], h[1]["answer_s_avg"]) == (1, 1, None)


def test_satisfaction_counts_levels_and_leaves_not_rated_out_of_the_rate():
    ratings = [{"kind": "intake", "rating": r} for r in (1, 2, 3, 4, None)] + [{"kind": "handling", "rating": 5}]
    s = satisfaction_figures(ratings)
    assert s["intake"]["asked"] == 5 and s["intake"]["not_rated"] == 1 and s["intake"]["satisfaction_rate"] == 75.0
    assert s["handling"]["levels"][5] == 1 and s["handling"]["satisfaction_rate"] == 0.0


def test_a_callback_done_on_its_due_date_is_in_time_and_the_day_after_is_late():
    due = date(2026, 12, 3)
    tasks = [{"state": "done", "due": due, "done_at": datetime(2026, 12, 3, 23, 59, tzinfo=SHANGHAI)},
             {"state": "done", "due": due, "done_at": datetime(2026, 12, 4, 0, 0, tzinfo=SHANGHAI)},
             {"state": "open", "due": due, "done_at": None}]
    c = callback_figures(tasks, zone=SHANGHAI)
    assert (c["done_in_time"], c["done_late"], c["open"], c["callbacks_in_time"]) == (1, 1, 1, 33.33)


def test_prefill_accuracy_counts_the_fields_the_agent_changed_before_saving():
    tickets = [
        {"status": "saved", "type": "complaint", "category": "交通", "due": date(2026, 12, 8),
         "prefilled": {"type": "complaint", "category": "噪音", "due": "2026-12-08"}},
        {"status": "draft", "type": "help", "prefilled": {"type": "help"}},
        {"status": "saved", "type": "help", "prefilled": {}},
    ]
    p = prefill_figures(tickets)
    assert p["covered"] == 2 and p["prefill_coverage"] == 66.67
    assert p["fields"]["type"] == {"filled": 2, "saved": 1, "changed": 0, "accuracy": 100.0}
    assert p["fields"]["category"] == {"filled": 1, "saved": 1, "changed": 1, "accuracy": 0.0}
    assert p["saved_fields"] == 3 and p["changed_fields"] == 1 and p["prefill_accuracy"] == 66.67
