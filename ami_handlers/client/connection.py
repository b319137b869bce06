"""A robust Asterisk Manager Interface (AMI) connection.

Why not panoramisk's ``Manager`` (1.4, read in ``panoramisk/manager.py`` and ``ami_protocol.py``):

* ``AMIProtocol.data_received`` decodes every TCP chunk on its own with ``errors='ignore'``: a CJK caller name
  (3 UTF-8 bytes a character) split across two reads silently loses characters.
* On ``connection_lost`` (Asterisk restart, Event: Shutdown) it calls ``connect`` again after a fixed
  ``int(reconnect_timeout)`` (0.5 would become 0: a busy loop), with no backoff or jitter. It keeps trying
  forever, but a refused Login (``Response: Error``) is never retried: the manager stays connected and
  unauthenticated with nothing to say so but ``authenticated == False``.
* Actions still unanswered when the connection drops are queued and re-sent after the next ``FullyBooted``,
  possibly minutes later: a ``Redirect`` or ``Originate`` would act twice or on a channel that no longer exists.
  Their futures have no timeout, so a caller can wait forever.
* Event callbacks run inside ``data_received``: a synchronous callback that raises makes asyncio close the
  transport (a reconnect per buggy event); coroutine callbacks become unreferenced tasks, run concurrently, so
  ``QueueCallerJoin`` and ``AgentConnect`` updates for the same call can land out of order.
* The keep-alive ``Ping`` ignores its answer: a half-open TCP connection is never noticed.

Fixing that means overriding nearly every method of ``Manager`` and ``AMIProtocol``, so this module is a thin
client on asyncio streams that keeps only panoramisk's ``Message`` (the header parser: a repeated key becomes a
list, lookups are case-insensitive) for the events handed to callbacks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from panoramisk.message import Message


from ami_handlers.client.delivery import EventCallback, ListCollector, Subscriber
from ami_handlers.client.errors import AMIError, AMITimeout
from gateway.basics.backoff import backoff_delays
from ami_handlers.client.protocol import (
    AMIFrameDecoder,
    encode_action,
)

log = logging.getLogger(__name__)

READ_SIZE = 65536


def parse_message(text: str) -> Message | None:
    """One AMI message text (without the blank line) -> Message, or None if it is neither event nor response."""
    return Message.from_line(text)


def _header(value: Any) -> str:
    """One header's text: panoramisk gives a header repeated in a message as a list; the first one counts."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


def _format_value(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '="' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _log(level: int, event: str, exc_info: bool = False, **fields: Any) -> None:
    if log.isEnabledFor(level):
        parts = [f"event={event}"] + [f"{k}={_format_value(v)}" for k, v in fields.items()]
        log.log(level, " ".join(parts), exc_info=exc_info)


class AMIConnection:
    """One logical AMI connection, re-established forever: connect, read banner, Login, read events.

    Readiness (``ready``) means logged in. Actions are only sent while ready and are never re-sent after a
    reconnect: a pending action fails with ``AMIError`` when the connection drops.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        reconnect_min: float = 0.5,
        reconnect_max: float = 2.0,
        events: str = "on",
        ping_interval: float | None = 20.0,
        connect_timeout: float = 5.0,
    ) -> None:
        backoff_delays(reconnect_min, reconnect_max)  # validate now, not in the background task
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self._events = events
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.reconnects = 0
        self.banner: str | None = None
        self._logins = 0
        self._ready = asyncio.Event()
        self._subscribers: dict[EventCallback, Subscriber] = {}
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, ListCollector] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready_since: float | None = None
        self._started = False
        self._closing = False
        self._id_prefix = f"hg-{uuid.uuid4().hex[:8]}-"
        self._ids = itertools.count(1)

    # ---- public API -------------------------------------------------------------------------------------

    @property
    def event_backlog(self) -> int:
        """Events read but not yet handled, over all callbacks' queues (0 when the handlers keep up)."""
        return sum(s.queue.qsize() for s in self._subscribers.values())

    def on_event(self, name: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for events named ``name`` ("*" = all). Registering the same callback for
        several names gives it one ordered stream of all of them. Survives reconnects."""
        subscriber = self._subscribers.get(callback)
        if subscriber is None:
            subscriber = self._subscribers[callback] = Subscriber(callback)
        subscriber.names.add(name.lower())
        if self._started and not self._closing:
            subscriber.start()

    async def connect(self) -> None:
        """Start the connect/reconnect loop in the background and return at once."""
        if self._started:
            return
        self._started = True
        self._closing = False
        for subscriber in self._subscribers.values():
            subscriber.start()
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="ami-connection")

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def status(self) -> dict[str, Any]:
        return {"ready": self.ready, "reconnects": self.reconnects, "host": self.host, "port": self.port,
                "banner": self.banner}

    async def action(self, action: Mapping[str, Any], *, timeout: float = 5.0) -> Message:
        """Send one action and return its (single) response. List actions (``EventList: start``) return the
        first response; their list events reach ``on_event`` callbacks, with the action's ``ActionID``
        (``action_list`` collects them instead)."""
        if not self.ready:
            raise AMIError(f"not connected: cannot send {action.get('Action')!r}")
        return await self._send(action, timeout)

    async def actions(self, actions: Sequence[Mapping[str, Any]], *, timeout: float = 5.0) -> list[Message]:
        """Send several actions back to back, with no wait for a response in between, and return their responses
        in order. Asterisk runs a manager session's actions one at a time in the order they arrive, so each acts
        right after the one before it, without a round trip between them. Raises the first failure (AMIError)
        once every response is in."""
        if not self.ready:
            raise AMIError(f"not connected: cannot send {[a.get('Action') for a in actions]!r}")
        # Tasks start in creation order and each writes its action before it first waits: the wire order is
        # the list's order.
        sends = [asyncio.ensure_future(self._send(action, timeout)) for action in actions]
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    async def action_list(self, action: Mapping[str, Any], *, timeout: float = 5.0) -> tuple[Message, list[Message]]:
        """Send a list action (``QueueStatus``, ``CoreShowChannels`` ...) and return its response and the events
        of its list, in order, up to the one that ends it (``EventList: Complete``), which is not included.
        ``timeout`` bounds the whole exchange. The list's events do not reach ``on_event`` callbacks."""
        if not self.ready:
            raise AMIError(f"not connected: cannot send {action.get('Action')!r}")
        name = action.get("Action", "?")
        action_id = str(action.get("ActionID") or f"{self._id_prefix}{next(self._ids)}")
        collected = ListCollector(asyncio.get_running_loop().create_future())
        self._lists[action_id] = collected
        try:
            async with asyncio.timeout(timeout):
                response = await self._send({**action, "ActionID": action_id}, timeout)
                if str(response.get("EventList", "")).lower() != "start":
                    return response, []
                await collected.done
        except TimeoutError:
            raise AMITimeout(f"{name}: list not complete within {timeout} s "
                             f"({len(collected.events)} events so far)") from None
        finally:
            del self._lists[action_id]
            if not collected.done.done():
                collected.done.cancel()
            elif not collected.done.cancelled():
                collected.done.exception()      # retrieved: a dropped connection already raised from _send
        return response, collected.events

    async def close(self) -> None:
        if self._closing and self._runner is None:
            return
        was_ready = self.ready
        self._closing = True
        if was_ready:
            try:
                await self._send({"Action": "Logoff"}, 1.0)
            except (AMIError, OSError):
                pass
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
            self._runner = None
        self._drop_session("closed")
        for subscriber in self._subscribers.values():
            await subscriber.stop()
        self._started = False
        _log(logging.INFO, "ami_closed", host=self.host, port=self.port)

    # ---- connection loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delays = backoff_delays(self.reconnect_min, self.reconnect_max)
        while not self._closing:
            self._ready_since = None
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, EOFError, AMIError, asyncio.TimeoutError) as exc:
                _log(logging.WARNING, "ami_session_failed", host=self.host, port=self.port,
                     error=type(exc).__name__, reason=str(exc) or type(exc).__name__)
            except Exception:
                _log(logging.ERROR, "ami_session_crashed", exc_info=True, host=self.host, port=self.port)
            finally:
                self._drop_session("connection lost")
            if self._closing:
                break
            # A session that stayed up a while was a real outage (Asterisk restart): start again from the
            # shortest delay. One that dies right after login keeps growing the delay instead of looping fast.
            if self._ready_since is not None and loop.time() - self._ready_since >= self.reconnect_max:
                delays = backoff_delays(self.reconnect_min, self.reconnect_max)
            delay = next(delays)
            _log(logging.INFO, "ami_reconnect_scheduled", host=self.host, port=self.port, delay=f"{delay:.2f}")
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One TCP connection, from connect to EOF; raises why it ended if not by EOF."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout)
        self._writer = writer
        decoder = AMIFrameDecoder()
        async with asyncio.timeout(self.connect_timeout):
            while decoder.banner is None:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("connection closed before the AMI banner")
                self._handle_texts(decoder.feed(data))
        self.banner = decoder.banner
        _log(logging.INFO, "ami_connected", host=self.host, port=self.port, banner=decoder.banner)
        reading = asyncio.get_running_loop().create_task(self._read(reader, decoder))
        pinging: asyncio.Task[None] | None = None
        try:
            await self._login(reading)
            self._logins += 1
            if self._logins > 1:
                self.reconnects += 1
            self._ready_since = asyncio.get_running_loop().time()
            self._ready.set()
            _log(logging.INFO, "ami_ready", host=self.host, port=self.port, reconnects=self.reconnects)
            if self.ping_interval:
                pinging = asyncio.get_running_loop().create_task(self._ping(writer))
            await reading
        finally:
            for task in (reading, pinging):
                if task is not None and not task.done():
                    task.cancel()
                    try:
                        await task
                    except (asyncio.CancelledError, Exception):
                        pass

    async def _login(self, reading: asyncio.Task[None]) -> None:
        login = asyncio.ensure_future(self._send(
            {"Action": "Login", "Username": self._username, "Secret": self._secret, "Events": self._events},
            self.connect_timeout))
        await asyncio.wait({login, reading}, return_when=asyncio.FIRST_COMPLETED)
        if not login.done():
            # The reader ended first (EOF or protocol error): its exception says why.
            login.cancel()
            reading.result()
            raise EOFError("connection closed during login")
        try:
            login.result()
        except AMITimeout:
            raise
        except AMIError as exc:
            # A refused login is retried with backoff like an outage: credentials fixed in manager.conf and a
            # "manager reload" must bring the gateway back without a restart.
            _log(logging.ERROR, "ami_login_refused", host=self.host, port=self.port,
                 username=self._username, reason=(exc.response or {}).get("Message", str(exc)))
            raise

    async def _read(self, reader: asyncio.StreamReader, decoder: AMIFrameDecoder) -> None:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                _log(logging.WARNING, "ami_connection_closed_by_peer", host=self.host, port=self.port)
                return
            self._handle_texts(decoder.feed(data))

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        # Without an answered Ping a half-open TCP connection (Asterisk host gone without RST) looks healthy.
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._send({"Action": "Ping"}, self.connect_timeout)
            except AMIError as exc:
                _log(logging.WARNING, "ami_ping_failed", host=self.host, port=self.port, error=type(exc).__name__)
                writer.close()
                return

    def _drop_session(self, reason: str) -> None:
        was_ready = self.ready
        self._ready.clear()
        writer, self._writer = self._writer, None
        if writer is not None and not writer.is_closing():
            writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AMIError(reason))
        self._pending.clear()
        for collector in self._lists.values():
            if not collector.done.done():
                collector.done.set_exception(AMIError(reason))
        if was_ready:
            _log(logging.WARNING, "ami_not_ready", host=self.host, port=self.port, reason=reason)

    # ---- messages ---------------------------------------------------------------------------------------

    def _handle_texts(self, texts: list[str]) -> None:
        for text in texts:
            message = parse_message(text)
            if message is not None:
                self._handle_message(message)

    def _handle_message(self, message: Message) -> None:
        # Check Event before Response: OriginateResponse is an event that carries a "Response" header.
        if "Event" in message:
            name = _header(message["Event"])
            if name.lower() == "shutdown":
                # Asterisk is stopping; actions sent now would be lost. It closes the socket next; closing our
                # side too ends the session even if it does not.
                self._ready.clear()
                if self._writer is not None:
                    self._writer.close()
                _log(logging.WARNING, "ami_asterisk_shutdown", host=self.host, port=self.port,
                     restart=message.get("Restart"))
            collector = self._lists.get(message.get("ActionID", "")) if self._lists else None
            if collector is not None:
                collector.add(message)
                return
            for subscriber in self._subscribers.values():
                if subscriber.wants(name):
                    subscriber.offer(message)
        elif "Response" in message:
            future = self._pending.get(_header(message.get("ActionID", "")))
            if future is not None and not future.done():
                future.set_result(message)
            else:
                _log(logging.DEBUG, "ami_unmatched_response", response=_header(message.get("Response")))

    async def _send(self, action: Mapping[str, Any], timeout: float) -> Message:
        name = action.get("Action", "?")
        writer = self._writer
        if writer is None or writer.is_closing():
            raise AMIError(f"not connected: cannot send {name!r}")
        action_id = str(action.get("ActionID") or f"{self._id_prefix}{next(self._ids)}")
        if action_id in self._pending:
            raise AMIError(f"ActionID {action_id!r} is already pending")
        try:
            payload = encode_action(action, action_id)
        except ValueError as exc:
            raise AMIError(str(exc)) from None
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            async with asyncio.timeout(timeout):
                writer.write(payload)
                await writer.drain()
                response = await future
        except TimeoutError:
            raise AMITimeout(f"no response to {name!r} within {timeout} s") from None
        except ConnectionError as exc:
            raise AMIError(f"connection lost while sending {name!r}") from exc
        finally:
            if self._pending.get(action_id) is future:
                del self._pending[action_id]
        if not response.success:
            raise AMIError(f"{name} failed: {response.get('Message', '')}", response)
        return response
