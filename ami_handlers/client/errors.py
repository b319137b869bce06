"""The AMI client's errors (their own module: the wire format and the connection both raise them)."""
from __future__ import annotations

from typing import Any, Mapping


class AMIError(Exception):
    """An action failed (``Response: Error``), or the connection is not there to carry it."""

    def __init__(self, message: str, response: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response


class AMITimeout(AMIError):
    """No response within the action's timeout."""


class AMIProtocolError(AMIError):
    """The peer does not speak AMI (bad banner, unbounded message)."""
