"""The case data that goes with an emergency hand-off (art. 14), through the centre's adapter.

A centre's `push` setting (linkage/emergency.toml) picks the adapter:
- ``mqtt``: the case is written to the durable outbox for ``hotline/linkage/<centre>``; the MQTT publisher
  delivers it at least once, and the broker's ACL lets only ``centre-<centre>`` read it (art. 20);
- ``http``: POST of the JSON case to the centre's URL, each attempt bounded by its timeout, capped retries with
  backoff, the same ``Idempotency-Key`` on every attempt so the centre can drop repeats;
- ``none``: nothing is sent (recorded as skipped).

`push_case` records the push in the store (pending -> queued | sent | failed | skipped, attempts, last error) and
never raises: the caller's voice transfer must not wait on, or fail with, a data push. Run it beside the transfer
(`Pusher.spawn`), not before it. A push the gateway stops in the middle of stays "pending" and is taken up again
at the next start (linkage/push_resume.py), with the same push id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from gateway.basics.backoff import backoff_delays
from gateway.contract import linkage_topic
from gateway.basics.phone import mask
from gateway.basics.clock import SHANGHAI
from gateway.basics.write_health import log_write_failure
from linkage.emergency_list import Centre

log = logging.getLogger(__name__)

# 408 Request Timeout, 425 Too Early, 429 Too Many Requests: the request may succeed later. Any other 4xx will
# not, and retrying it would only delay the failure the agent needs to see.
_RETRYABLE_4XX = frozenset({408, 425, 429})
_ERROR_BODY = 200

OnAttempt = Callable[[int, str | None], Awaitable[None]]


class PushFailed(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class PushResult:
    push_id: str
    centre: str
    adapter: str
    state: str                      # queued | sent | failed | skipped
    attempts: int
    error: str | None = None
    row_id: int | None = None       # the store's pushes.id (None if the store could not record it)


class PushAdapter(Protocol):
    name: str

    async def send(self, centre: Centre, payload: dict, *, push_id: str, on_attempt: OnAttempt,
                   attempts_made: int = 0) -> tuple[str, int]:
        """Deliver or hand over `payload`: (state, attempts in all). `attempts_made`: attempts of the same push
        before a gateway restart. Raises PushFailed when it gives up."""
        ...


class NoPush:
    name = "none"

    async def send(self, centre: Centre, payload: dict, *, push_id: str, on_attempt: OnAttempt,
                   attempts_made: int = 0) -> tuple[str, int]:
        return "skipped", attempts_made


class MQTTPush:
    """Through the durable outbox (gateway.store.outbox.Outbox): committed to the store now, published by the MQTT
    publisher, a broker outage loses nothing. The message id is the push id."""

    name = "mqtt"

    def __init__(self, outbox: Any) -> None:
        self._outbox = outbox

    async def send(self, centre: Centre, payload: dict, *, push_id: str, on_attempt: OnAttempt,
                   attempts_made: int = 0) -> tuple[str, int]:
        try:
            await self._outbox.put(linkage_topic(centre.name), payload, message_id=push_id)
        except Exception as exc:
            raise PushFailed(f"outbox: {type(exc).__name__}: {exc}", attempts_made + 1) from exc
        return "queued", attempts_made + 1


class HTTPPush:
    """POST JSON to the centre's `http_url`. Worst case: (retries + 1) x http_timeout_s plus the backoffs
    (`bound_s`)."""

    name = "http"

    def __init__(self, session: aiohttp.ClientSession | None = None, *, backoff_s: float = 0.5,
                 backoff_max_s: float = 4.0, env: Mapping[str, str] | None = None) -> None:
        self._session = session
        self._owns_session = session is None
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._env = env if env is not None else os.environ

    def bound_s(self, centre: Centre) -> float:
        """The longest `send` can take for this centre."""
        delays = backoff_delays(self._backoff_s, self._backoff_max_s, jitter=0.0)
        return (centre.http_retries + 1) * centre.http_timeout_s + sum(next(delays) for _ in range(centre.http_retries))

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, centre: Centre, payload: dict, *, push_id: str, on_attempt: OnAttempt,
                   attempts_made: int = 0) -> tuple[str, int]:
        """Up to ``http_retries + 1`` attempts in all, counting those made before a restart; a resumed push
        always gets at least one more."""
        if not centre.http_url:
            raise PushFailed("no http_url configured", attempts_made)
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": push_id}
        if centre.http_token_env:
            token = self._env.get(centre.http_token_env)
            if not token:
                raise PushFailed(f"environment variable {centre.http_token_env} (the centre's token) is not set",
                                 attempts_made)
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        session = self._session_for_use()
        delays = backoff_delays(self._backoff_s, self._backoff_max_s)
        timeout = aiohttp.ClientTimeout(total=centre.http_timeout_s)
        error = "not attempted"
        last = max(attempts_made + 1, centre.http_retries + 1)
        for attempt in range(attempts_made + 1, last + 1):
            if attempt > attempts_made + 1:
                await asyncio.sleep(next(delays))
            retry, error = await self._attempt(session, centre.http_url, body, headers, timeout)
            await on_attempt(attempt, error)
            if error is None:
                return "sent", attempt
            if not retry:
                raise PushFailed(error, attempt)
        raise PushFailed(error, last)

    async def _attempt(self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict,
                       timeout: aiohttp.ClientTimeout) -> tuple[bool, str | None]:
        """(retry?, error or None)."""
        try:
            async with session.post(url, data=body, headers=headers, timeout=timeout,
                                    allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return False, None
                text = (await response.content.read(_ERROR_BODY)).decode("utf-8", "replace").strip()
                error = f"HTTP {response.status}" + (f": {' '.join(text.split())}" if text else "")
                return response.status >= 500 or response.status in _RETRYABLE_4XX, error
        except TimeoutError:
            return True, f"no answer within {timeout.total:g} s"
        except aiohttp.ClientError as exc:
            return True, f"{type(exc).__name__}: {exc}"

    def _session_for_use(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session


def new_push_id() -> str:
    return uuid.uuid4().hex


def case_payload(*, push_id: str, centre: str, call_id: str, ticket_id: str | None, caller_number: str | None,
                 address: str | None, situation: str | None, transcript: str | None, agent: str | None,
                 at: datetime, situation_name: str | None = None) -> dict:
    """What a linked centre receives. The caller's full number goes only to the centre (it must call back);
    logs carry it masked."""
    return {
        "push_id": push_id,
        "ticket_id": ticket_id,
        "caller_number": caller_number,
        "address": address,
        "situation": situation,
        "situation_name": situation_name,
        "transcript": transcript,
        "time": at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        "agent": agent,
        "centre": centre,
        "call_id": call_id,
    }


async def push_case(
    store: Any, adapters: Mapping[str, PushAdapter], centre: Centre, *, call_id: str, ticket_id: str | None,
    caller_number: str | None, address: str | None, situation: str | None, transcript: str | None,
    agent: str | None, at: datetime, handoff_id: int | None = None, situation_name: str | None = None,
    push_id: str | None = None, clock: Callable[[], datetime] | None = None, attempts_made: int = 0,
) -> PushResult:
    """Send the case to `centre` through its adapter and record the push. Never raises (except cancellation).
    A resumed push passes its `push_id` (the same Idempotency-Key) and the `attempts_made` before the restart."""
    push_id = push_id or new_push_id()
    clock = clock or (lambda: datetime.now(SHANGHAI))
    adapter_name = centre.push
    row_id: int | None = None
    state, attempts, error = "failed", attempts_made, None
    try:
        payload = case_payload(push_id=push_id, centre=centre.name, call_id=call_id, ticket_id=ticket_id,
                               caller_number=caller_number, address=address, situation=situation,
                               transcript=transcript, agent=agent, at=at, situation_name=situation_name)
        row_id = await _recorded(store.add_push(push_id=push_id, centre=centre.name, adapter=adapter_name, at=at,
                                                handoff_id=handoff_id, call_id=call_id), call_id, push_id)

        async def on_attempt(attempt: int, attempt_error: str | None) -> None:
            if row_id is not None and attempt_error is not None:
                await _recorded(store.update_push(row_id, attempts=attempt, last_error=attempt_error, at=clock()),
                                call_id, push_id)
            if attempt_error is not None:
                log.info("event=linkage_push_retry call_id=%s centre=%s push_id=%s attempt=%d error=%s",
                         call_id, centre.name, push_id, attempt, attempt_error)

        adapter = adapters.get(adapter_name)
        if adapter is None:
            raise PushFailed(f"no {adapter_name} adapter in this gateway", 0)
        state, attempts = await adapter.send(centre, payload, push_id=push_id, on_attempt=on_attempt,
                                             attempts_made=attempts_made)
    except PushFailed as exc:
        state, attempts, error = "failed", exc.attempts, exc.reason
    except asyncio.CancelledError:
        # The gateway is stopping (Pusher.close): the push stays pending, for the next start to take up again.
        log.info("event=linkage_push_interrupted call_id=%s centre=%s push_id=%s", call_id, centre.name, push_id)
        raise
    except Exception as exc:        # a bug or a store failure must not reach the call flow
        state, error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("event=linkage_push_error call_id=%s centre=%s push_id=%s", call_id, centre.name, push_id)
    if row_id is not None:
        await _recorded(store.update_push(row_id, state=state, attempts=attempts, last_error=error, at=clock()),
                        call_id, push_id)
    level = logging.WARNING if state == "failed" else logging.INFO
    log.log(level, "event=linkage_push_%s call_id=%s centre=%s adapter=%s push_id=%s attempts=%d caller=%s%s",
            state, call_id, centre.name, adapter_name, push_id, attempts, mask(caller_number),
            f" error={' '.join(error.split())}" if error else "")
    return PushResult(push_id, centre.name, adapter_name, state, attempts, error, row_id)


async def _recorded(write: Awaitable[Any], call_id: str, push_id: str) -> Any:
    """A store write whose failure is logged, not raised: the push goes on without its record."""
    try:
        return await write
    except Exception as exc:  # noqa: BLE001 - logged by log_write_failure (a failing disk once, in the health)
        log_write_failure(log, exc, "linkage_push_record_failed", call_id=call_id, push_id=push_id)
        return None


class Pusher:
    """The gateway's pushes: the adapters, and the background tasks that carry pushes beside voice transfers."""

    def __init__(self, store: Any, *, outbox: Any | None = None, http: HTTPPush | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._http = http or HTTPPush()
        self.adapters: dict[str, PushAdapter] = {"http": self._http, "none": NoPush()}
        if outbox is not None:
            self.adapters["mqtt"] = MQTTPush(outbox)
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()

    async def push(self, centre: Centre, **case: Any) -> PushResult:
        """`push_case` with this gateway's adapters; same keyword arguments."""
        return await push_case(self._store, self.adapters, centre, clock=self._clock, **case)

    def spawn(self, centre: Centre, **case: Any) -> asyncio.Task[PushResult]:
        """Start the push and return at once (the voice transfer goes ahead); the task is kept until done."""
        task = asyncio.create_task(self.push(centre, **case), name=f"linkage-push-{centre.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self, timeout: float = 5.0) -> None:
        """Let running pushes finish for up to `timeout` seconds, cancel the rest, close the HTTP session."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._http.close()
