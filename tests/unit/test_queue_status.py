"""Whether QueueStatus events list a caller as waiting in a queue."""
import pytest

from ami_handlers.queue_status import is_waiting

CALLER = "PJSIP/hotline-trunk-00000007"
QUEUE = "hotline"


def entry(channel: str, position: int = 1, queue: str = QUEUE) -> dict:
    return {"Event": "QueueEntry", "Queue": queue, "Position": str(position), "Channel": channel, "Wait": "12"}


@pytest.mark.parametrize("events,waiting", [
    ([entry(CALLER)], True),
    ([{**entry(CALLER), "Event": "queueentry"}], True),
    ([], False),
    ([entry("PJSIP/other-1")], False),
    ([entry(CALLER, queue="supervisors")], False),                          # waiting, but in another queue
    ([{"Event": "QueueMember", "Queue": QUEUE, "Name": CALLER}], False),
    ([{"Event": "QueueEntry", "Queue": QUEUE}], False),                     # an entry without its channel
])
def test_waiting_means_a_queue_entry_for_that_channel_in_that_queue(events, waiting):
    assert is_waiting(events, queue=QUEUE, channel=CALLER) is waiting
