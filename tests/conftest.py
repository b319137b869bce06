"""Fixtures every kind of test uses."""
from __future__ import annotations

import pytest

from gateway.store.database import Store


@pytest.fixture
async def store(tmp_path):
    """A fresh store on disk (SQLite, every migration applied)."""
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()
