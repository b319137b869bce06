"""The provincial platform's side of the push: one HTTPS POST of one batch (docs/export.md, "The push").

``POST <endpoint>`` with the batch as JSON, ``Content-Type: application/json; charset=utf-8``, ``Idempotency-Key:
<batch id>`` and, when configured, ``Authorization: Bearer <token>`` (the token from the environment). Any 2xx
answer acknowledges the whole batch; anything else, a timeout or a connection that fails is a `PlatformError`,
and the pusher sends the same bytes again later. The server's certificate is checked against the system's CAs or
the configured CA file; redirects are not followed (a batch goes only where it was configured to go).
"""
from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from gateway.export.position import batch_id, record_json
from gateway.export.records import SCHEMA, ExportOptions

__all__ = ["Batch", "HTTPSPlatform", "PlatformError", "make_batch", "tls_context"]

# 408 Request Timeout, 425 Too Early, 429 Too Many Requests and every 5xx may succeed later; the other answers
# need someone to fix the endpoint, the token or the gateway, and are retried too, but logged as errors.
_TRANSIENT_4XX = frozenset({408, 425, 429})
_ERROR_BODY = 200


class PlatformError(Exception):
    """A batch the platform did not acknowledge: why, whether it looks transient, and the server's Retry-After."""

    def __init__(self, reason: str, *, transient: bool = True, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Batch:
    id: str
    record_type: str
    count: int
    body: bytes


def make_batch(record_type: str, records: list[dict], options: ExportOptions) -> Batch:
    """The POST body of one batch: ``{"schema", "source", "batch_id", "record_type", "count", "records"}``."""
    encoded = [record_json(record) for record in records]
    bid = batch_id(encoded)
    head = json.dumps({"schema": SCHEMA, "source": options.source, "batch_id": bid, "record_type": record_type,
                       "count": len(records)}, ensure_ascii=False, separators=(",", ":"))
    body = f'{head[:-1]},"records":[{",".join(encoded)}]}}'
    return Batch(bid, record_type, len(records), body.encode("utf-8"))


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name checked, against ``ca_file`` instead of the system's CAs when given. Reads the
    file: call it off the event loop. ssl.SSLError or OSError when the file is no CA file."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class HTTPSPlatform:
    """POSTs batches to ``endpoint`` over one keep-alive session."""

    def __init__(self, endpoint: str, *, tls: ssl.SSLContext, timeout_s: float, token_env: str = "",
                 env: Mapping[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.host = urlsplit(endpoint).hostname or "?"
        self._tls = tls
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token_env = token_env
        self._env = env if env is not None else os.environ
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, batch: Batch) -> None:
        """Deliver ``batch``; returns once the platform acknowledged it, else raises PlatformError."""
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": batch.id}
        if self._token_env:
            token = self._env.get(self._token_env, "").strip()
            if not token:
                raise PlatformError(f"environment variable {self._token_env} (the platform's token) is not set",
                                    transient=False)
            headers["Authorization"] = f"Bearer {token}"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._tls, limit=2))
        try:
            async with self._session.post(self.endpoint, data=batch.body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return
                text = (await response.content.read(_ERROR_BODY)).decode("utf-8", "replace")
                raise PlatformError(f"HTTP {response.status}" + (f": {' '.join(text.split())}" if text.strip() else ""),
                                    transient=response.status >= 500 or response.status in _TRANSIENT_4XX,
                                    retry_after_s=_retry_after(response.headers.get("Retry-After")))
        except TimeoutError:
            raise PlatformError(f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise PlatformError(f"{type(exc).__name__}: {exc}") from None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by APIs that ask us to wait)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
