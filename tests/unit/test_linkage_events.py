"""The hand-off log's UserEvent handler against odd events (found by fuzzing the AMI door)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from linkage.handoff import LinkageHandoff


class Store:
    def __init__(self) -> None:
        self.looked_up: list[int] = []

    async def get_handoff(self, handoff_id: int) -> None:   # no such hand-off
        self.looked_up.append(handoff_id)


def handoff_log(store: Store) -> LinkageHandoff:
    return LinkageHandoff(store, lambda: None, pusher=None, clock=lambda: datetime(2026, 3, 2, tzinfo=UTC))


@pytest.mark.parametrize("handoff", [["7", "8"], "9" * 40, "-3", "0", str(2**63), "x", "", None])
async def test_a_handoff_id_that_is_no_row_id_of_ours_is_ignored_without_touching_the_store(handoff):
    store = Store()
    event = {"Event": "UserEvent", "UserEvent": "HotlineLinkage", "Stage": "ring", "Target": "119"}
    if handoff is not None:
        event["Handoff"] = handoff
    await handoff_log(store).on_event(event)
    assert store.looked_up == []


async def test_a_handoff_id_of_ours_is_looked_up():
    store = Store()
    await handoff_log(store).on_event({"UserEvent": "HotlineLinkage", "Handoff": "42", "Stage": "ring"})
    assert store.looked_up == [42]
