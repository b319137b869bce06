"""The console API's JSON in and out: a request body that must be a JSON object, replies, and errors shaped as
``{"field": ..., "reason": ...}``."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from aiohttp import web

__all__ = ["error_reply", "http_error", "json_reply", "read_json_body"]


async def read_json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 otherwise."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: json's decoder gives up on arrays or objects nested about 1,000 deep
        raise http_error(web.HTTPBadRequest, "body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise http_error(web.HTTPBadRequest, "body", "must be a JSON object")
    return body


def json_reply(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, default=_jsonable,
                                                                                ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def error_reply(status: int, field: str, reason: str) -> web.Response:
    return web.json_response({"field": field, "reason": reason}, status=status)


def http_error(cls: type[web.HTTPException], field: str, reason: str) -> web.HTTPException:
    return cls(text=json.dumps({"field": field, "reason": reason}), content_type="application/json")
