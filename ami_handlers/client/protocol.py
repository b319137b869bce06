"""The AMI wire format: the frame decoder (banner line, then messages ended by a blank line), the action encoder,
and the reconnect delays. No I/O and no logging; ``connection.AMIConnection`` is the client that uses them.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from ami_handlers.client.errors import AMIProtocolError

BANNER_PREFIX = "Asterisk Call Manager/"
EOL = "\r\n"
MESSAGE_END = "\r\n\r\n"
# The largest AMI message seen in practice (a CoreShowChannels entry with every channelvar) is a few kB; a
# peer that sends a megabyte without a blank line is not speaking AMI.
MAX_MESSAGE_CHARS = 1_000_000


class AMIFrameDecoder:
    """Turns the byte stream of one AMI connection into its banner line and complete message texts.

    One incremental UTF-8 decoder per connection, so a character split across TCP reads is joined before it
    is decoded; truly invalid bytes become U+FFFD instead of vanishing.
    """

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._max = max_message_chars
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[str]:
        self._buffer += self._decoder.decode(data)
        if self.banner is None:
            line, found, rest = self._buffer.partition(EOL)
            if not found:
                self._check_size()
                return []
            if not line.startswith(BANNER_PREFIX):
                raise AMIProtocolError(f"not an AMI banner: {line[:60]!r}")
            self.banner, self._buffer = line, rest
        *messages, self._buffer = self._buffer.split(MESSAGE_END)
        self._check_size()
        # Asterisk sometimes ends a message with a single EOL followed by the next one's: strip like panoramisk.
        return [text for text in (m.strip() for m in messages) if text]

    def _check_size(self) -> None:
        if len(self._buffer) > self._max:
            raise AMIProtocolError(f"message longer than {self._max} characters")


def encode_action(action: Mapping[str, Any], action_id: str) -> bytes:
    """Serialise an action; list values become repeated headers (``Variable``). CR/LF in a value would let it
    inject headers or a second action, so it is refused."""
    lines = []
    for key, value in action.items():
        if key.lower() == "actionid":
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            text = str(item)
            if "\r" in text or "\n" in text or "\r" in key or "\n" in key or ":" in key:
                raise ValueError(f"AMI header {key!r} contains a line break or colon")
            lines.append(f"{key}: {text}")
    lines.append(f"ActionID: {action_id}")
    return (EOL.join(lines) + MESSAGE_END).encode("utf-8")
