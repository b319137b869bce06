"""The console app against a real Store, served on a loopback port for one test, and signing in to it."""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from gateway.console.app import create_console_app
from gateway.mqtt.passwords import mqtt_password

AGENTS = ["agent1", "agent2", "lead1"]
SUPERVISORS = ["lead1"]
WS_URL = "ws://127.0.0.1:19001/mqtt"


@asynccontextmanager
async def console_client(store, state_dir: Path, now: datetime, **options):
    """A test client of the console app (agents agent1, agent2 and the supervisor lead1)."""
    app = create_console_app(store=store, state_dir=state_dir, agents=AGENTS, supervisors=SUPERVISORS,
                             ws_url=WS_URL, clock=lambda: now, **options)
    async with TestClient(TestServer(app)) as client:
        yield client


async def sign_in(client: TestClient, state_dir: Path, agent: str) -> None:
    """Sign in as ``agent`` (dropping any earlier session cookie)."""
    client.session.cookie_jar.clear()
    response = await client.post("/api/login", json={"agent": agent, "password": mqtt_password(state_dir, agent)})
    assert response.status == 200, await response.text()
