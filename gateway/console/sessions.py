"""Who is signed in to the console: the app's shared settings and sessions, and the check every API handler
starts with (``signed_in``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from gateway.console.access import Viewer
from gateway.console.replies import http_error

__all__ = ["CONFIG_KEY", "SESSIONS_KEY", "SESSION_COOKIE", "SESSION_TTL", "STORE_KEY", "ConsoleConfig", "Session",
           "drop_expired", "signed_in"]

SESSION_COOKIE = "hotline_console"
SESSION_TTL = timedelta(hours=12)

STORE_KEY = web.AppKey("store", object)
CONFIG_KEY = web.AppKey("console_config", object)
SESSIONS_KEY = web.AppKey("sessions", object)


@dataclass(frozen=True)
class ConsoleConfig:
    state_dir: Path
    agents: frozenset[str]
    supervisors: frozenset[str]
    ws_url: str
    clock: Callable[[], datetime]
    low_confidence: float


@dataclass(frozen=True)
class Session:
    viewer: Viewer
    expires: datetime


def drop_expired(sessions: dict[str, Session], now: datetime) -> None:
    for token in [token for token, session in sessions.items() if session.expires <= now]:
        del sessions[token]


def signed_in(request: web.Request) -> Viewer:
    """The request's viewer; 401 without a live session."""
    token = request.cookies.get(SESSION_COOKIE)
    sessions: dict[str, Session] = request.app[SESSIONS_KEY]
    session = sessions.get(token) if token else None
    if session is None or session.expires <= request.app[CONFIG_KEY].clock():
        if token:
            sessions.pop(token, None)
        raise http_error(web.HTTPUnauthorized, "session", "sign in first")
    return session.viewer
