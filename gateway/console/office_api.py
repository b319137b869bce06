"""The supervisors' page of the console (Zhanjiang 12345 rules, art. 5 and 9): one day's report with its charts, and
the nuisance review list, from which a supervisor raises a pending restriction request with one click.

Only supervisors see it; an agent gets 403. The review list shows masked numbers and names each entry by its
latest call id; the request is made for that call's number server-side, so no full number reaches the page.
The page has its own Content-Security-Policy: the charts are SVG with inline style attributes, which the console's
policy (style-src 'self') would strip; scripts stay limited to the gateway's own file.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.basics.phone import mask
from gateway.console.replies import error_reply, http_error, json_reply, read_json_body
from gateway.console.sessions import CONFIG_KEY, STORE_KEY, signed_in
from gateway.office.daily import read_report
from gateway.office.nuisance import ReviewEntry, ReviewSettings, read_review_list, request_restriction

__all__ = ["OFFICE_KEY", "OfficeSettings", "PAGE_POLICY", "add_office_routes", "office_settings"]

log = logging.getLogger("gateway.console.office")

OFFICE_KEY = web.AppKey("office", object)
PAGE_POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_REASON_LIMIT = 500
_CALL_ID_LIMIT = 64


@dataclass(frozen=True)
class OfficeSettings:
    zone: ZoneInfo
    timely_answer_s: int
    review: ReviewSettings


def office_settings(config: Any) -> OfficeSettings:
    """The page's settings from the gateway's configuration (``[gateway] timezone`` and ``[office]``)."""
    office = config.office
    return OfficeSettings(zone=ZoneInfo(config.gateway.timezone), timely_answer_s=office.timely_answer_s,
                          review=ReviewSettings(calls_per_day=office.nuisance_calls_per_day,
                                                silent_calls=office.nuisance_silent_calls,
                                                window_days=office.nuisance_window_days))


def add_office_routes(app: web.Application, settings: OfficeSettings) -> None:
    app[OFFICE_KEY] = settings
    app.router.add_get("/supervisor", _page)
    app.router.add_get("/api/office/nuisance", _nuisance)
    app.router.add_post("/api/office/nuisance/request", _request)


def _supervisor(request: web.Request):
    viewer = signed_in(request)
    if not viewer.is_supervisor:
        raise http_error(web.HTTPForbidden, "role", "only supervisors see the office's figures")
    return viewer


def _day(request: web.Request, default: date) -> date:
    text = request.query.get("date")
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise http_error(web.HTTPBadRequest, "date", "must be YYYY-MM-DD") from None


def _entry_json(entry: ReviewEntry) -> dict[str, Any]:
    return {"number": mask(entry.number), "last_call_id": entry.last_call_id, "reasons": entry.reasons,
            "busiest_day": entry.busiest_day.isoformat() if entry.busiest_day else None,
            "calls_on_busiest_day": entry.calls_on_busiest_day, "silent_calls": entry.silent_calls,
            "restricted_until": entry.restricted_until.isoformat() if entry.restricted_until else None,
            "pending_request": entry.pending_request}


async def _review(request: web.Request, day: date) -> list[ReviewEntry]:
    settings: OfficeSettings = request.app[OFFICE_KEY]
    now: datetime = request.app[CONFIG_KEY].clock()
    return await read_review_list(request.app[STORE_KEY], day, zone=settings.zone, settings=settings.review, now=now)


def _review_table(entries: list[ReviewEntry]) -> str:
    if not entries:
        return '<p id="review-empty">无需复核的号码。</p>'
    rows = []
    for e in entries:
        state = ("已限制至 " + e.restricted_until.date().isoformat() if e.restricted_until else
                 f"待审批申请 {e.pending_request}" if e.pending_request else "")
        action = ("" if state else f'<button type="button" class="request" data-call="{escape(e.last_call_id)}">'
                                   "提交限制申请</button>")
        rows.append(f'<tr data-call="{escape(e.last_call_id)}"><td>{escape(mask(e.number))}</td>'
                    f"<td>{escape('; '.join(e.reasons))}</td><td class=\"state\">{escape(state)}</td>"
                    f"<td>{action}</td></tr>")
    return ('<table id="review"><thead><tr><th>号码</th><th>原因</th><th>状态</th><th></th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


async def _page(request: web.Request) -> web.Response:
    _supervisor(request)
    settings: OfficeSettings = request.app[OFFICE_KEY]
    today = request.app[CONFIG_KEY].clock().astimezone(settings.zone).date()
    day = _day(request, today - timedelta(days=1))
    # imported here: matplotlib loads only when a supervisor first opens the page
    from gateway.office.charts import draw_charts
    from gateway.office.report_html import STYLE, render_body

    report = await read_report(request.app[STORE_KEY], day, zone=settings.zone,
                               timely_answer_s=settings.timely_answer_s)
    charts = await asyncio.get_running_loop().run_in_executor(None, draw_charts, report)
    entries = await _review(request, day)
    html = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>班长台 {day.isoformat()}</title>'
            f'<style>{STYLE}</style><script src="/static/supervisor.js" defer></script></head><body>'
            f'<form method="get" action="/supervisor"><label>日期 <input type="date" name="date" '
            f'value="{day.isoformat()}"></label> <button type="submit">查看</button></form>'
            f"{render_body(report, charts)}"
            f"<h2>骚扰来电复核（第九条）</h2><p>近{settings.review.window_days}天内：单日来电不少于"
            f"{settings.review.calls_per_day}次，或无声来电不少于{settings.review.silent_calls}次。"
            f"列表不会自动限制任何号码。</p>"
            '<p><label>申请理由 <input id="review-reason" maxlength="500" size="40" '
            'value="无正当理由反复来电（第九条）"></label></p>'
            f"{_review_table(entries)}"
            '<p id="review-message" role="status"></p></body></html>')
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": PAGE_POLICY})


async def _nuisance(request: web.Request) -> web.Response:
    _supervisor(request)
    settings: OfficeSettings = request.app[OFFICE_KEY]
    day = _day(request, request.app[CONFIG_KEY].clock().astimezone(settings.zone).date())
    return json_reply({"date": day.isoformat(), "entries": [_entry_json(e) for e in await _review(request, day)]})


async def _request(request: web.Request) -> web.Response:
    """``{"call_id": ..., "reason": ...}``: a pending restriction request for that call's number (art. 9)."""
    viewer = _supervisor(request)
    body = await read_json_body(request)
    call_id, reason = body.get("call_id"), body.get("reason") or "nuisance review: repeated calls without good reason"
    if not isinstance(call_id, str) or not 0 < len(call_id) <= _CALL_ID_LIMIT:
        return error_reply(400, "call_id", "name the entry's latest call")
    if not isinstance(reason, str) or len(reason) > _REASON_LIMIT:
        return error_reply(400, "reason", f"at most {_REASON_LIMIT} characters")
    try:
        request_id = await request_restriction(request.app[STORE_KEY], call_id, requested_by=viewer.name,
                                               reason=reason, at=request.app[CONFIG_KEY].clock())
    except LookupError:
        return error_reply(404, "call_id", "no such call with a caller number")
    log.info("event=nuisance_restriction_requested call=%s by=%s request=%s", call_id, viewer.name, request_id)
    return json_reply({"pending_request": request_id}, status=201)
