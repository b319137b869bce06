"""The phone menu as data, and the pure transition function that walks a caller through it.

No I/O besides reading the menu file: `ivr.runner` performs the steps that `next_step` returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeAlias

from gateway.contract import REQUEST_TYPES, UNSPECIFIED_REQUEST
from gateway.basics.data_errors import DataFileError, read_toml
from ivr.menu_steps import (
    AnnounceTicket, CollectTicket, DigitEvent, Event, LookupTicket, Played, PlayAndWait, Queue, Reason, Step,
    TicketEntered, TicketLookedUp, Timeout,
)
from ivr.say import say_date
from ivr.survey import Survey

DEFAULT_MENU_PATH = Path(__file__).with_name("menu.toml")

DTMF_KEYS = "0123456789*#"
# What a queue node may file a call as: a request type of art. 7, or "unspecified" (the agent decides).
QUEUE_REQUEST_TYPES = frozenset({*REQUEST_TYPES, UNSPECIFIED_REQUEST})
EMERGENCIES = frozenset({"110", "119", "120", "122", "water", "power", "gas"})
PRIORITY_NORMAL = 0
PRIORITY_EMERGENCY = 10
_PROMPT_NAME = re.compile(r"[a-z0-9_]+")
_NODE_ID = re.compile(r"[a-z][a-z0-9_]*")


class MenuError(DataFileError):
    """A menu file that cannot be used; names the file, the field path and the reason."""


# --- menu data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueAction:
    request_type: str
    priority: int = PRIORITY_NORMAL
    emergency: str | None = None


@dataclass(frozen=True)
class SubmenuAction:
    node: str


@dataclass(frozen=True)
class TicketQueryAction:
    prompt: str
    max_digits: int
    timeout_ms: int
    not_found_prompt: str
    unknown_status_prompt: str
    status_prompts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    unit_prompt: str | None = None      # "the unit handling it is", before the unit's name
    due_prompt: str | None = None       # "to be handled by", before the due date


@dataclass(frozen=True)
class AgentAction:
    priority: int = PRIORITY_NORMAL


Action: TypeAlias = QueueAction | SubmenuAction | TicketQueryAction | AgentAction
FallbackAction: TypeAlias = QueueAction | AgentAction


@dataclass(frozen=True)
class Node:
    id: str
    prompt: str
    timeout_ms: int
    max_retries: int
    retry_prompt: str
    on_timeout: FallbackAction
    on_invalid: FallbackAction
    options: Mapping[str, Action]


@dataclass(frozen=True)
class Menu:
    start: str
    nodes: Mapping[str, Node]
    transfer_prompt: str | None
    source: str = "<menu>"
    survey: Survey | None = None     # the satisfaction survey after the call (ivr.survey); None: not asked

    def prompt_refs(self) -> list[tuple[str, str]]:
        """(field path, prompt name) for every prompt the menu can play."""
        refs: list[tuple[str, str]] = []
        if self.transfer_prompt is not None:
            refs.append(("transfer_prompt", self.transfer_prompt))
        for node in self.nodes.values():
            base = f"nodes.{node.id}"
            refs += [(f"{base}.prompt", node.prompt), (f"{base}.retry_prompt", node.retry_prompt)]
            for key, action in node.options.items():
                if isinstance(action, TicketQueryAction):
                    at = f"{base}.options.{key}"
                    refs += [(f"{at}.prompt", action.prompt), (f"{at}.not_found_prompt", action.not_found_prompt),
                             (f"{at}.unknown_status_prompt", action.unknown_status_prompt)]
                    refs += [(f"{at}.status_prompts.{s}", p) for s, p in action.status_prompts.items()]
                    refs += [(f"{at}.{name}", p) for name, p in (("unit_prompt", action.unit_prompt),
                                                                 ("due_prompt", action.due_prompt)) if p]
        if self.survey is not None:
            refs += [(f"survey.{name}", prompt) for name, prompt in self.survey.prompts()]
        return refs


# --- loading and validation --------------------------------------------------------------------------------


def load_menu(path: str | Path = DEFAULT_MENU_PATH) -> Menu:
    file = str(path)
    raw = read_toml(path, MenuError)
    return parse_menu(raw, source=file)


def parse_menu(raw: Mapping[str, object], *, source: str = "<menu>") -> Menu:
    p = _Parser(source)
    p.only_keys(raw, "", {"start", "transfer_prompt", "nodes", "survey"})
    nodes_raw = p.table(raw, "nodes", required=True)
    if not nodes_raw:
        raise MenuError(source, "nodes", "at least one node is required")
    nodes = {}
    for node_id, node_raw in nodes_raw.items():
        if not _NODE_ID.fullmatch(node_id):
            raise MenuError(source, f"nodes.{node_id}", "node id must match [a-z][a-z0-9_]*")
        nodes[node_id] = p.node(node_id, node_raw)
    start = p.string(raw, "", "start")
    if start not in nodes:
        raise MenuError(source, "start", f"unknown node {start!r}")
    transfer = p.prompt(raw, "", "transfer_prompt") if "transfer_prompt" in raw else None
    for node in nodes.values():
        for key, action in node.options.items():
            if isinstance(action, SubmenuAction) and action.node not in nodes:
                raise MenuError(source, f"nodes.{node.id}.options.{key}.node", f"unknown node {action.node!r}")
    survey = p.survey(p.table(raw, "survey")) if "survey" in raw else None
    return Menu(start=start, nodes=MappingProxyType(nodes), transfer_prompt=transfer, source=source, survey=survey)


def validate_prompts(menu: Menu, catalogue: Iterable[str]) -> None:
    """Raise MenuError for the first prompt the menu plays that the catalogue lacks."""
    known = set(catalogue)
    for field_path, name in menu.prompt_refs():
        if name not in known:
            raise MenuError(menu.source, field_path, f"prompt {name!r} is not in the prompt catalogue")


class _Parser:
    _NODE_FIELDS = {"prompt", "timeout_ms", "max_retries", "retry_prompt", "on_timeout", "on_invalid", "options"}
    _ACTION_FIELDS = {
        "queue": {"request_type", "priority", "emergency"},
        "submenu": {"node"},
        "ticket_query": {"prompt", "max_digits", "timeout_ms", "not_found_prompt", "unknown_status_prompt",
                         "status_prompts", "unit_prompt", "due_prompt"},
        "agent": {"priority"},
    }

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, at: str, name: str, reason: str) -> MenuError:
        return MenuError(self.source, f"{at}.{name}" if at else name, reason)

    def only_keys(self, raw: Mapping[str, object], at: str, allowed: set[str]) -> None:
        for name in raw:
            if name not in allowed:
                raise self.fail(at, name, f"unknown field (expected one of {', '.join(sorted(allowed))})")

    def table(self, raw: Mapping[str, object], name: str, *, at: str = "", required: bool = False) -> dict:
        if name not in raw:
            if required:
                raise self.fail(at, name, "missing")
            return {}
        value = raw[name]
        if not isinstance(value, dict):
            raise self.fail(at, name, "must be a table")
        return value

    def string(self, raw: Mapping[str, object], at: str, name: str) -> str:
        if name not in raw:
            raise self.fail(at, name, "missing")
        value = raw[name]
        if not isinstance(value, str) or not value:
            raise self.fail(at, name, "must be a non-empty string")
        return value

    def prompt(self, raw: Mapping[str, object], at: str, name: str) -> str:
        value = self.string(raw, at, name)
        if not _PROMPT_NAME.fullmatch(value):
            raise self.fail(at, name, f"prompt name {value!r} must match [a-z0-9_]+")
        return value

    def integer(self, raw: Mapping[str, object], at: str, name: str, *, low: int, high: int,
                default: int | None = None) -> int:
        if name not in raw and default is not None:
            return default
        if name not in raw:
            raise self.fail(at, name, "missing")
        value = raw[name]
        if type(value) is not int:  # bool is an int subclass; `true` is not a timeout
            raise self.fail(at, name, "must be an integer")
        if not low <= value <= high:
            raise self.fail(at, name, f"{value} is out of range {low}..{high}")
        return value

    def node(self, node_id: str, raw: object) -> Node:
        at = f"nodes.{node_id}"
        if not isinstance(raw, dict):
            raise MenuError(self.source, at, "must be a table")
        self.only_keys(raw, at, self._NODE_FIELDS)
        options = {}
        for key, action_raw in self.table(raw, "options", at=at, required=True).items():
            if len(key) != 1 or key not in DTMF_KEYS:
                raise self.fail(f"{at}.options", key, "key must be one of 0-9, * or #")
            options[key] = self.action(f"{at}.options.{key}", action_raw)
        if not options:
            raise self.fail(at, "options", "at least one option is required")
        return Node(
            id=node_id,
            prompt=self.prompt(raw, at, "prompt"),
            timeout_ms=self.integer(raw, at, "timeout_ms", low=1, high=60_000),
            max_retries=self.integer(raw, at, "max_retries", low=0, high=5),
            retry_prompt=self.prompt(raw, at, "retry_prompt"),
            on_timeout=self.fallback(f"{at}.on_timeout", raw.get("on_timeout"), at),
            on_invalid=self.fallback(f"{at}.on_invalid", raw.get("on_invalid"), at),
            options=MappingProxyType(options),
        )

    def survey(self, raw: Mapping[str, object]) -> Survey:
        at = "survey"
        self.only_keys(raw, at, {"enabled", "prompt", "retry_prompt", "thanks_prompt", "return_prompt", "timeout_ms",
                                 "max_invalid", "cap_hours", "keys", "callback_due_working_days"})
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail(at, "enabled", "must be true or false")
        keys = {}
        for key, level in self.table(raw, "keys", at=at, required=True).items():
            if len(key) != 1 or key not in DTMF_KEYS:
                raise self.fail(f"{at}.keys", key, "key must be one of 0-9, * or #")
            if type(level) is not int or not 1 <= level <= 5:
                raise self.fail(f"{at}.keys", key, "must be a rating 1..5")
            keys[key] = level
        if sorted(keys.values()) != [1, 2, 3, 4, 5]:
            raise self.fail(at, "keys", "must give each of the five ratings 1..5 one key")
        return Survey(
            enabled=enabled, prompt=self.prompt(raw, at, "prompt"), retry_prompt=self.prompt(raw, at, "retry_prompt"),
            thanks_prompt=self.prompt(raw, at, "thanks_prompt"),
            return_prompt=self.prompt(raw, at, "return_prompt") if "return_prompt" in raw else None,
            timeout_ms=self.integer(raw, at, "timeout_ms", low=1, high=60_000),
            keys=MappingProxyType(keys), max_invalid=self.integer(raw, at, "max_invalid", low=1, high=5, default=2),
            cap_hours=self.integer(raw, at, "cap_hours", low=0, high=24 * 365, default=24),
            callback_due_working_days=self.integer(raw, at, "callback_due_working_days", low=1, high=30, default=2))

    def fallback(self, at: str, raw: object, node_at: str) -> FallbackAction:
        if raw is None:
            raise MenuError(self.source, at, "missing")
        action = self.action(at, raw)
        # Article 2 (7x24 human service): when the caller gives up on the keypad, the next voice is an agent's.
        if not isinstance(action, QueueAction | AgentAction):
            raise MenuError(self.source, f"{at}.action", "must be 'queue' or 'agent' (every dead end ends at an agent)")
        return action

    def action(self, at: str, raw: object) -> Action:
        if not isinstance(raw, dict):
            raise MenuError(self.source, at, "must be a table with an 'action' field")
        kind = self.string(raw, at, "action")
        if kind not in self._ACTION_FIELDS:
            raise self.fail(at, "action", f"unknown action {kind!r} (expected one of "
                                          f"{', '.join(sorted(self._ACTION_FIELDS))})")
        self.only_keys(raw, at, self._ACTION_FIELDS[kind] | {"action"})
        priority = self.integer(raw, at, "priority", low=0, high=PRIORITY_EMERGENCY, default=PRIORITY_NORMAL) \
            if "priority" in self._ACTION_FIELDS[kind] else PRIORITY_NORMAL
        if kind == "queue":
            request_type = self.string(raw, at, "request_type")
            if request_type not in QUEUE_REQUEST_TYPES:
                raise self.fail(at, "request_type", f"unknown request type {request_type!r}")
            emergency = raw.get("emergency")
            if emergency is not None and emergency not in EMERGENCIES:
                raise self.fail(at, "emergency", f"unknown emergency {emergency!r}")
            return QueueAction(request_type, priority, emergency)
        if kind == "submenu":
            return SubmenuAction(self.string(raw, at, "node"))
        if kind == "agent":
            return AgentAction(priority)
        status_raw = self.table(raw, "status_prompts", at=at)
        statuses = {}
        for status in status_raw:
            statuses[status] = self.prompt(status_raw, f"{at}.status_prompts", status)
        return TicketQueryAction(
            prompt=self.prompt(raw, at, "prompt"),
            max_digits=self.integer(raw, at, "max_digits", low=1, high=32),
            timeout_ms=self.integer(raw, at, "timeout_ms", low=1, high=60_000),
            not_found_prompt=self.prompt(raw, at, "not_found_prompt"),
            unknown_status_prompt=self.prompt(raw, at, "unknown_status_prompt"),
            status_prompts=MappingProxyType(statuses),
            unit_prompt=self.prompt(raw, at, "unit_prompt") if "unit_prompt" in raw else None,
            due_prompt=self.prompt(raw, at, "due_prompt") if "due_prompt" in raw else None,
        )


Phase = Literal["menu", "ticket_entry", "ticket_lookup", "ticket_announce", "done"]


@dataclass(frozen=True)
class MenuState:
    node: str
    phase: Phase = "menu"
    invalid_count: int = 0
    path: tuple[str, ...] = ()
    ticket: str | None = None
    ticket_key: str | None = None  # the option at `node` that started the ticket query


# --- transitions -------------------------------------------------------------------------------------------


def start(menu: Menu) -> tuple[MenuState, Step]:
    node = menu.nodes[menu.start]
    return MenuState(node=node.id, path=(node.id,)), PlayAndWait(node.prompt, node.timeout_ms)


def next_step(menu: Menu, state: MenuState, event: Event) -> tuple[MenuState, Step]:
    expected = _EXPECTED[state.phase]
    if not isinstance(event, expected):
        raise ValueError(f"event {event!r} does not answer phase {state.phase!r}")
    if state.phase == "menu":
        return _in_menu(menu, state, event)
    if state.phase == "ticket_entry":
        return _ticket_entered(menu, state, event.digits)
    if state.phase == "ticket_lookup":
        return _ticket_looked_up(menu, state, event)
    return _queue(menu, state, AgentAction(), "agent")  # ticket announced: on to an agent (article 12)


_EXPECTED: dict[str, tuple[type, ...]] = {
    "menu": (DigitEvent, Timeout),
    "ticket_entry": (TicketEntered,),
    "ticket_lookup": (TicketLookedUp,),
    "ticket_announce": (Played,),
    "done": (),
}


def fault_priority(menu: Menu, state: MenuState) -> int:
    """The queue priority a caller at ``state`` is owed if the call fails there (gateway crash, stop, timeout):
    what the node gives a caller who stops keying (its ``on_timeout``), so a fault in the emergency sub-menu queues
    the caller at top priority, as that sub-menu's own fallback does (art. 14)."""
    return menu.nodes[state.node].on_timeout.priority


def _in_menu(menu: Menu, state: MenuState, event: DigitEvent | Timeout) -> tuple[MenuState, Step]:
    node = menu.nodes[state.node]
    if isinstance(event, Timeout):
        return _queue(menu, replace(state, path=state.path + ("timeout",)), node.on_timeout, "timeout")
    action = node.options.get(event.digit) if _is_dtmf_key(event.digit) else None
    if action is None:
        state = replace(state, invalid_count=state.invalid_count + 1, path=state.path + ("invalid",))
        if state.invalid_count > node.max_retries:
            return _queue(menu, state, node.on_invalid, "invalid")
        return state, PlayAndWait(node.retry_prompt, node.timeout_ms)
    state = replace(state, path=state.path + (event.digit,))
    if isinstance(action, SubmenuAction):
        sub = menu.nodes[action.node]
        state = replace(state, node=sub.id, invalid_count=0, path=state.path + (sub.id,))
        return state, PlayAndWait(sub.prompt, sub.timeout_ms)
    if isinstance(action, TicketQueryAction):
        state = replace(state, phase="ticket_entry", ticket_key=event.digit)
        return state, CollectTicket(action.prompt, action.max_digits, action.timeout_ms)
    return _queue(menu, state, action, "agent" if isinstance(action, AgentAction) else "selected")


def _ticket_action(menu: Menu, state: MenuState) -> TicketQueryAction:
    action = menu.nodes[state.node].options[state.ticket_key]
    assert isinstance(action, TicketQueryAction)
    return action


def _ticket_entered(menu: Menu, state: MenuState, digits: str) -> tuple[MenuState, Step]:
    if not digits:
        return _queue(menu, replace(state, path=state.path + ("timeout",)), AgentAction(), "timeout")
    state = replace(state, path=state.path + ("ticket",), ticket=digits)
    if not digits.isascii() or not digits.isdigit():
        return _announce(state, (_ticket_action(menu, state).not_found_prompt,))
    return replace(state, phase="ticket_lookup"), LookupTicket(digits)


def _ticket_looked_up(menu: Menu, state: MenuState, event: TicketLookedUp) -> tuple[MenuState, Step]:
    action = _ticket_action(menu, state)
    if event.failed:  # the store is down: an agent can still help, a "not found" would mislead
        return _queue(menu, state, AgentAction(), "agent")
    if event.status is None:
        return _announce(state, (action.not_found_prompt,))
    prompts = [action.status_prompts.get(event.status, action.unknown_status_prompt)]
    if action.unit_prompt and event.unit_prompt:
        prompts += [action.unit_prompt, event.unit_prompt]
    if action.due_prompt and event.due:
        prompts += [action.due_prompt, *say_date(event.due)]
    return _announce(state, tuple(prompts))


def _announce(state: MenuState, prompts: tuple[str, ...]) -> tuple[MenuState, Step]:
    return replace(state, phase="ticket_announce"), AnnounceTicket(state.ticket, prompts)


def _queue(menu: Menu, state: MenuState, action: FallbackAction, reason: Reason) -> tuple[MenuState, Queue]:
    if isinstance(action, AgentAction):
        request_type, emergency = "unspecified", None
    else:
        request_type, emergency = action.request_type, action.emergency
    # An emergency choice goes on at once (to its centre, or the agent queue at top priority): no "transferring
    # you to an agent" prompt costing the caller seconds, which would also be untrue when a centre takes the call.
    step = Queue(request_type=request_type, priority=action.priority, emergency=emergency, reason=reason,
                 ticket_query=state.ticket, announce=None if emergency else menu.transfer_prompt)
    return replace(state, phase="done"), step


def _is_dtmf_key(digit: object) -> bool:
    return isinstance(digit, str) and len(digit) == 1 and digit in DTMF_KEYS
