"""The daily report's charts, drawn with matplotlib to inline SVG.

Text is drawn as glyph outlines (``svg.fonttype = "path"``), so the report shows the Chinese labels the same in
any browser, with or without Chinese fonts; the drawing itself needs a font with Chinese glyphs on this machine
(`chinese_font`; scripts/setup.sh installs Droid Sans Fallback). Figures are made with the object API, not pyplot,
so charts can be drawn in executor threads. Blocking (CPU): call `draw_charts` in an executor.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from gateway.office.daily import DailyReport  # noqa: E402
from gateway.office.definitions import KIND_LABELS, RATING_LEVEL_LABELS, REQUEST_TYPE_LABELS  # noqa: E402

__all__ = ["Chart", "chinese_font", "draw_charts"]

log = logging.getLogger(__name__)

# Fonts known to hold the CJK Unified Ideographs, best first.
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
              "Droid Sans Fallback", "AR PL UMing CN", "SimHei")
_COLOURS = {"offered": "#8fa9c9", "answered": "#2f6f4f", "abandoned": "#c0504d", "wait": "#e0a030",
            "levels": ("#2f6f4f", "#6aa84f", "#b6d7a8", "#f6b26b", "#cc0000"), "none": "#bbbbbb"}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: str            # an <svg> element, without the XML prolog


@lru_cache(maxsize=1)
def chinese_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (the charts then warn once)."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for name in _CJK_FONTS:
        if name in installed:
            return name
    log.warning("event=no_chinese_font hint='install fonts-droid-fallback or fonts-noto-cjk' families=%d",
                len(installed))
    return None


def _figure(width: float = 7.5, height: float = 3.2) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "hotline-report",
                                "font.family": [chinese_font() or "DejaVu Sans", "DejaVu Sans"]}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _with_font(draw):
    """Draw with the Chinese font in force (text is laid out while drawing, not only when saved)."""
    def wrapped(*args, **kwargs):
        with matplotlib.rc_context({"font.family": [chinese_font() or "DejaVu Sans", "DejaVu Sans"],
                                    "axes.unicode_minus": False}):
            return draw(*args, **kwargs)
    return wrapped


@_with_font
def _calls_per_hour(report: DailyReport) -> Chart:
    title = "每小时来电与平均等待"
    hourly = report.calls.hourly
    hours = [h["hour"] for h in hourly]
    figure = _figure()
    axes = figure.add_subplot()
    axes.bar(hours, [h["offered"] for h in hourly], color=_COLOURS["offered"], label="呼入")
    axes.bar(hours, [h["answered"] for h in hourly], width=0.5, color=_COLOURS["answered"], label="人工接听")
    axes.plot(hours, [h["abandoned"] for h in hourly], "o-", color=_COLOURS["abandoned"], ms=3, label="放弃")
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlabel("时段（时）")
    axes.set_ylabel("来电数")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    waits = axes.twinx()
    waits.plot(hours, [h["wait_avg"] if h["wait_avg"] is not None else float("nan") for h in hourly], "s--",
               color=_COLOURS["wait"], ms=3, label="平均等待（秒）")
    waits.set_ylabel("平均等待（秒）")
    waits.set_ylim(bottom=0)
    lines, labels = axes.get_legend_handles_labels()
    more_lines, more_labels = waits.get_legend_handles_labels()
    axes.legend(lines + more_lines, labels + more_labels, loc="upper left", fontsize=8)
    axes.set_title(title)
    return Chart("calls_per_hour", title, _svg(figure))


@_with_font
def _waits(report: DailyReport) -> Chart:
    title = f"人工接听等待时长分布（{report.timely_answer_s}秒内为及时）"
    figure = _figure()
    axes = figure.add_subplot()
    waits = report.calls.waits
    top = max([*waits, report.timely_answer_s * 2.0])
    axes.hist(waits, bins=[top * i / 24 for i in range(25)], color=_COLOURS["answered"])
    axes.axvline(report.timely_answer_s, color=_COLOURS["abandoned"], ls="--")
    axes.set_xlabel("等待（秒）")
    axes.set_ylabel("来电数")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    return Chart("waits", title, _svg(figure))


@_with_font
def _types(report: DailyReport) -> Chart:
    title = "诉求类型"
    ranked = report.requests["type"]
    figure = _figure(height=2.6)
    axes = figure.add_subplot()
    names = [REQUEST_TYPE_LABELS.get(name, name) for name, _ in ranked] or ["（无）"]
    counts = [count for _, count in ranked] or [0]
    axes.barh(names[::-1], counts[::-1], color=_COLOURS["offered"])
    axes.set_xlabel("工单数")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    return Chart("types", title, _svg(figure))


def _stacked_bars(key: str, title: str, rows: list[str], parts: list[tuple[str, str, list[int]]],
                  x_label: str) -> Chart:
    """Horizontal bars, one per row, stacked from ``parts`` (label, colour, a count per row), legend on top."""
    figure = _figure(height=2.6)
    axes = figure.add_subplot()
    left = [0] * len(rows)
    for label, colour, counts in parts:
        axes.barh(rows, counts, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, counts)]
    axes.legend(fontsize=7, ncol=len(parts), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    axes.set_xlabel(x_label)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return Chart(key, title, _svg(figure))


@_with_font
def _satisfaction(report: DailyReport) -> Chart:
    kinds = list(report.satisfaction)
    parts = [(RATING_LEVEL_LABELS[level], colour, [report.satisfaction[k]["levels"][level] for k in kinds])
             for level, colour in zip(range(1, 6), _COLOURS["levels"])]
    parts.append(("未评价", _COLOURS["none"], [report.satisfaction[k]["not_rated"] for k in kinds]))
    return _stacked_bars("satisfaction", "满意度评价", [KIND_LABELS[k] for k in kinds], parts, "评价数")


@_with_font
def _handoffs(report: DailyReport) -> Chart:
    centres = [h["centre"] for h in report.handoffs] or ["（无）"]
    parts = [(label, colour, [h[key] for h in report.handoffs] or [0])
             for key, label, colour in (("answered", "接通", _COLOURS["answered"]),
                                        ("fallbacks", "转回/备用", _COLOURS["wait"]),
                                        ("not_answered", "未接通", _COLOURS["abandoned"]),
                                        ("open", "未结束", _COLOURS["none"]))]
    return _stacked_bars("handoffs", "应急联动转接", centres, parts, "转接次数")


def draw_charts(report: DailyReport) -> list[Chart]:
    """Every chart of the report, in the order shown. Blocking: run in an executor from async code."""
    return [_calls_per_hour(report), _waits(report), _types(report), _satisfaction(report), _handoffs(report)]
