"""The daily report as one self-contained HTML page: the figures with their definitions beside them, and the
charts inline (SVG): no script, no stylesheet or font fetched from anywhere, so the page can be mailed or archived.

No caller number appears in it: the report counts calls, it does not list callers.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from gateway.office.charts import Chart
from gateway.office.daily import DailyReport, report_dict
from gateway.office.definitions import DEFINITIONS, KIND_LABELS, RATING_LEVEL_LABELS, REQUEST_TYPE_LABELS

__all__ = ["STYLE", "render_body", "render_html"]

# The page's look; the console's supervisors' page inlines the same sheet.
STYLE = Path(__file__).with_name("report.css").read_text(encoding="utf-8")


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "%":
        return f"{value:.2f}%"
    if unit == "s":
        return f"{value:.1f} 秒"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _headline(data: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-key="{escape(r["key"])}"><th>{escape(r["label"])}</th>'
        f'<td class="num">{escape(_value(r["value"], r["unit"]))}</td><td class="def">{escape(r["definition"])}</td></tr>'
        for r in data["headline"])
    return f'<table id="headline"><tbody>{rows}</tbody></table>'


def _requests(report: DailyReport) -> str:
    parts = []
    for key, title in (("type", "诉求类型"), ("category", "问题分类"), ("unit", "承办单位")):
        ranked = report.requests[key]
        names = [REQUEST_TYPE_LABELS.get(n, n) if key == "type" else n for n, _ in ranked]
        parts.append(f"<h3>{title}</h3>" + _table(["", "工单数"], [[n, str(c)] for n, (_, c) in zip(names, ranked)],
                                                   {1}))
    return "".join(parts)


def _handoffs(report: DailyReport) -> str:
    rows = [[h["centre"], str(h["requested"]), str(h["answered"]), _value(h["answer_s_avg"], "s"),
             _value(h["answer_s_max"], "s"), str(h["fallbacks"]), str(h["not_answered"]), str(h["open"])]
            for h in report.handoffs]
    return (_table(["联动中心", "转接", "接通", "平均接通时长", "最长接通时长", "转回/备用", "未接通", "未结束"], rows,
                   set(range(1, 8))) + f'<p class="def">{escape(DEFINITIONS["handoff_answer_s"].text)}</p>')


def _satisfaction(report: DailyReport) -> str:
    head = ["", "邀评", *RATING_LEVEL_LABELS.values(), "未评价", "满意率"]
    rows = [[KIND_LABELS[k], str(f["asked"]), *(str(f["levels"][level]) for level in range(1, 6)),
             str(f["not_rated"]), _value(f["satisfaction_rate"], "%")] for k, f in report.satisfaction.items()]
    return _table(head, rows, set(range(1, 9))) + f'<p class="def">{escape(DEFINITIONS["satisfaction_rate"].text)}</p>'


def _callbacks(report: DailyReport) -> str:
    c = report.callbacks
    return (_table(["当日到期回访", "按时完成", "逾期完成", "未完成", "按时完成率"],
                   [[str(c["due"]), str(c["done_in_time"]), str(c["done_late"]), str(c["open"]),
                     _value(c["callbacks_in_time"], "%")]], set(range(5)))
            + f'<p class="def">{escape(DEFINITIONS["callbacks_in_time"].text)}</p>')


def _prefill(report: DailyReport) -> str:
    p = report.prefill
    rows = [[name, str(f["filled"]), str(f["saved"]), str(f["changed"]), _value(f["accuracy"], "%")]
            for name, f in p["fields"].items()]
    return (_table(["工单", "语音预填", "覆盖率", "准确率(使用中)"],
                   [[str(p["tickets"]), str(p["covered"]), _value(p["prefill_coverage"], "%"),
                     _value(p["prefill_accuracy"], "%")]], {0, 1, 2, 3})
            + f'<p class="def">{escape(DEFINITIONS["prefill_coverage"].text)} '
              f'{escape(DEFINITIONS["prefill_accuracy"].text)}</p>'
            + _table(["字段", "预填", "已保存", "坐席修改", "准确率"], rows, {1, 2, 3, 4}))


def _announcements(report: DailyReport) -> str:
    if not report.announcements:
        return "<p>当日无公告。</p>"
    rows = [[str(a.get("id", "")), str(a.get("text", "")), str(a.get("heard", 0)), str(a.get("answered", 0))]
            for a in report.announcements]
    return (_table(["编号", "公告内容", "收听来电", "公告解答来电"], rows, {2, 3})
            + f'<p class="def">{escape(DEFINITIONS["announcement_answered"].text)}</p>')


def _charts(charts: list[Chart]) -> str:
    return "".join(f'<figure data-chart="{escape(c.key)}"><figcaption>{escape(c.title)}</figcaption>{c.svg}</figure>'
                   for c in charts)


def render_html(report: DailyReport, charts: list[Chart]) -> str:
    """The report page (pure; the charts are drawn beforehand by `gateway.office.charts.draw_charts`)."""
    day = report.day.isoformat()
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>12345热线日报 {day}</title>'
            f"<style>{STYLE}</style></head><body>{render_body(report, charts)}</body></html>")


def render_body(report: DailyReport, charts: list[Chart]) -> str:
    """The report's content, for a page of its own or the console's supervisors' page."""
    data = report_dict(report)
    day = report.day.isoformat()
    return (
        f'<h1>12345政务服务便民热线 日报 <span id="day">{day}</span></h1>'
        f"<p>统计口径：{escape(report.zone)} 当地时间 {day} 00:00 至次日 00:00 开始的来电。</p>"
        f"<h2>服务指标</h2>{_headline(data)}"
        f"<h2>图表</h2>{_charts(charts)}"
        f"<h2>诉求</h2>{_requests(report)}"
        f"<h2>应急联动</h2>{_handoffs(report)}"
        f"<h2>满意度</h2>{_satisfaction(report)}"
        f"<h2>回访</h2>{_callbacks(report)}"
        f"<h2>语音预填</h2>{_prefill(report)}"
        f"<h2>公告</h2>{_announcements(report)}")
