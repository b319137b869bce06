"""Reconnect and retry delays shared by the AMI client, the MQTT publisher and the linkage pushes."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator


def backoff_delays(
    minimum: float, maximum: float, *, jitter: float = 0.2, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Endless reconnect delays: ``minimum`` doubling up to ``maximum``, each shortened by up to ``jitter``.

    Jitter only shortens, so a delay never exceeds ``maximum``; it keeps several gateways (or a gateway and
    its standby) from hammering a restarting Asterisk in lockstep.
    """
    if minimum <= 0 or maximum < minimum:
        raise ValueError(f"need 0 < minimum <= maximum, got minimum={minimum} maximum={maximum}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    base = minimum
    while True:
        yield base * (1.0 - jitter * rand())
        base = min(maximum, base * 2)
