"""The contract between the gateway, the dialplan (`asterisk_conf/`) and the MQTT broker, written once.

Channel variables, their values, dialplan contexts, the UserEvent of the hand-off log, the request types of
Zhanjiang 12345 rules art. 7, MQTT topics and users, and the rule for an agent's or centre's name. Every module
of the gateway, the IVR, the AMI handlers and the linkage imports these names from here, and the rendering of
`asterisk_conf/` (``gateway/asterisk_render.py``) takes the AMI channel variables from here; a unit test checks
that the dialplan templates use no ``HOTLINE_*`` variable or ``hotline-*`` context this module does not name.

Imports nothing of the project: it sits on the ground floor beside ``gateway.basics``.
"""
from __future__ import annotations

import re
import uuid

__all__ = [
    "ACTION_HANGUP", "ACTION_LINKAGE", "ACTION_QUEUE", "ACTION_VAR", "AMI_CHANNEL_VARS", "CALLBACK_CONTEXT",
    "CALLBACK_EVENT", "CALLBACK_TASK_VAR", "CALL_ID_VAR", "OUTBOUND_DIAL_VAR", "OUTBOUND_ENDPOINT",
    "RETURN_CALL_CONTEXT", "RETURN_CALL_EVENT", "RETURN_CALL_VAR",
    "CAPTURE_AUDIOSOCKET", "CAPTURE_DONE", "CAPTURE_MODES", "CAPTURE_RECORD", "CAPTURE_VAR", "CENTRE_PREFIX",
    "CONF_USER_VAR", "CONF_VAR", "DIALPLAN_CONTEXTS", "DIALPLAN_VARS", "EMERGENCY_VAR", "GATEWAY_USER",
    "HANDOFF_ID_VAR", "LINKAGE_CONFIRM_CONTEXT", "LINKAGE_CONTEXT", "LINKAGE_EVENT", "LINKAGE_FAILED_VAR",
    "LINKAGE_TARGETS_VAR", "PREFILL_FIELDS", "PRIORITY_VAR", "QUEUE_CONTEXT", "RECORDING_DONE_CONTEXT", "RECORDING_EVENT",
    "RECORDING_VAR", "REQUEST_TYPES", "REQUEST_TYPE_VAR",
    "THREEWAY_CENTRE_CONTEXT", "THREEWAY_CONTEXT", "TICKET_ID_VAR", "TOPIC_ROOT", "UNSPECIFIED_REQUEST",
    "agent_topic", "centre_user", "check_name", "inherited", "is_call_id", "is_valid_name", "linkage_topic", "new_message_id",
    "screenpop_topic",
]

# -- channel variables ----------------------------------------------------------------------------------------

CALL_ID_VAR = "HOTLINE_CALL_ID"              # the gateway's call id (agi_uniqueid of the caller leg)
TICKET_ID_VAR = "HOTLINE_TICKET_ID"          # the ticket draft opened at queueing
REQUEST_TYPE_VAR = "HOTLINE_REQUEST_TYPE"    # one of REQUEST_TYPES, or UNSPECIFIED_REQUEST
PRIORITY_VAR = "HOTLINE_PRIORITY"            # the queue priority (10: emergency fallback)
EMERGENCY_VAR = "HOTLINE_EMERGENCY"          # the emergency situation chosen in the menu
ACTION_VAR = "HOTLINE_ACTION"                # what the dialplan does after the FastAGI entry
CAPTURE_VAR = "HOTLINE_CAPTURE"              # how the caller's description is captured while queued
HANDOFF_ID_VAR = "HOTLINE_HANDOFF_ID"        # the hand-off log row of a linkage transfer
LINKAGE_TARGETS_VAR = "HOTLINE_LINKAGE_TARGETS"  # "dial|timeout" per centre, joined by "^"
LINKAGE_FAILED_VAR = "HOTLINE_LINKAGE_FAILED"    # "1" once every centre was tried and none answered
CONF_VAR = "HOTLINE_CONF"                    # the ConfBridge of a three-way hand-off
CONF_USER_VAR = "HOTLINE_CONF_USER"          # the leg's ConfBridge user profile
RECORDING_VAR = "HOTLINE_RECORDING"          # set once the call's MixMonitor runs (the caller's uniqueid)
CALLBACK_TASK_VAR = "HOTLINE_CALLBACK_TASK"  # an agent's call-back: the task id
OUTBOUND_DIAL_VAR = "HOTLINE_OUTBOUND_DIAL"  # the citizen's leg of a call the hotline places (PJSIP/<digits>@...)
RETURN_CALL_VAR = "HOTLINE_RETURN_CALL"      # an automated return call: its row id
AGI_BACKUP_VAR = "HOTLINE_AGI_BACKUP"        # global: the second gateway's FastAGI "host:port" ([fastagi] backup)

DIALPLAN_VARS = frozenset({
    CALL_ID_VAR, TICKET_ID_VAR, REQUEST_TYPE_VAR, PRIORITY_VAR, EMERGENCY_VAR, ACTION_VAR, CAPTURE_VAR,
    HANDOFF_ID_VAR, LINKAGE_TARGETS_VAR, LINKAGE_FAILED_VAR, CONF_VAR, CONF_USER_VAR, RECORDING_VAR,
    CALLBACK_TASK_VAR, OUTBOUND_DIAL_VAR, RETURN_CALL_VAR, AGI_BACKUP_VAR,
})
# Asterisk adds these to every AMI event (manager.conf channelvars): ChanVariable on the caller leg,
# DestChanVariable on the agent leg for the inherited ones.
AMI_CHANNEL_VARS = (CALL_ID_VAR, REQUEST_TYPE_VAR, TICKET_ID_VAR, CAPTURE_VAR, LINKAGE_FAILED_VAR)


def inherited(name: str) -> str:
    """The name that makes Asterisk copy a variable to the channels the caller's channel creates (``__NAME``)."""
    return "__" + name


# HOTLINE_ACTION values. Fail-open (Zhanjiang 12345 rules, art. 2: 7x24 human service): the dialplan queues a call
# for any other value, for none, and whenever the FastAGI session failed.
ACTION_HANGUP = "hangup"      # a restricted number (art. 9), after its announcement
ACTION_QUEUE = "queue"        # to the agent queue
ACTION_LINKAGE = "linkage"    # to the linked centres in HOTLINE_LINKAGE_TARGETS (art. 14)

# HOTLINE_CAPTURE values
CAPTURE_AUDIOSOCKET = "audiosocket"   # live: ChanSpy into the gateway's AudioSocket while queued
CAPTURE_RECORD = "record"             # fallback: Asterisk records the caller (MixMonitor r())
CAPTURE_DONE = "done"                 # back in the queue after a linkage offer: capture no more
CAPTURE_MODES = frozenset({CAPTURE_AUDIOSOCKET, CAPTURE_RECORD})

# -- dialplan contexts and events -----------------------------------------------------------------------------

QUEUE_CONTEXT = "hotline-queue"
LINKAGE_CONTEXT = "hotline-linkage"
LINKAGE_CONFIRM_CONTEXT = "hotline-linkage-confirm"
THREEWAY_CONTEXT = "hotline-threeway"
THREEWAY_CENTRE_CONTEXT = "hotline-threeway-centre"
RECORDING_DONE_CONTEXT = "hotline-recording-done"
CALLBACK_CONTEXT = "hotline-callback"          # an agent's call-back: the agent's leg, then Dial the citizen
RETURN_CALL_CONTEXT = "hotline-return-call"    # the automated return call: the citizen's leg runs the survey
DIALPLAN_CONTEXTS = frozenset({
    "hotline-in", "hotline-agents", QUEUE_CONTEXT, LINKAGE_CONTEXT, LINKAGE_CONFIRM_CONTEXT,
    "hotline-linkage-predial", "hotline-linkage-answered", THREEWAY_CONTEXT, THREEWAY_CENTRE_CONTEXT,
    RECORDING_DONE_CONTEXT, CALLBACK_CONTEXT, RETURN_CALL_CONTEXT,
})
OUTBOUND_ENDPOINT = "hotline-outbound"         # the PJSIP endpoint of the trunk the hotline's own calls leave by
# UserEvent(HotlineLinkage, Call: ..., Handoff: ..., Target: ..., Stage: ...): one per hand-off stage.
LINKAGE_EVENT = "HotlineLinkage"
# UserEvent(HotlineRecording, Call: <uniqueid>): a recorded call hung up; its file is being closed.
RECORDING_EVENT = "HotlineRecording"
# UserEvent(HotlineCallback, Task: <id>, Stage: agent_answered|<DIALSTATUS>|agent_unavailable): a call-back's steps.
CALLBACK_EVENT = "HotlineCallback"
# UserEvent(HotlineReturnCall, Id: <id>, Stage: answered|failed, Reason: <originate reason>): a return call's end.
RETURN_CALL_EVENT = "HotlineReturnCall"

# -- request types (Zhanjiang 12345 rules, art. 7) ------------------------------------------------------------

REQUEST_TYPES = ("consultation", "help", "complaint", "report", "suggestion")
UNSPECIFIED_REQUEST = "unspecified"   # "straight to an agent": the agent decides the type
# The ticket fields the speech pre-fill proposes to the agent (art. 10, 11); the office counts the ones agents change.
PREFILL_FIELDS = ("type", "category", "unit", "address", "callback_number", "emergency", "emergency_situation",
                  "due", "summary")

# -- MQTT topics and users (art. 20: each agent reads only its own callers) -----------------------------------

TOPIC_ROOT = "hotline"
GATEWAY_USER = "gateway"
CENTRE_PREFIX = "centre-"
# An agent's or centre's name becomes an MQTT user, a topic level, a password-file key and a PJSIP endpoint:
# no '/', '+', '#', ':' or spaces.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: object, what: str) -> str:
    """``name`` if it can be an MQTT user and topic level, else ValueError naming ``what`` it is."""
    if not is_valid_name(name):
        raise ValueError(f"{what} name {name!r} cannot be an MQTT user or topic level (letters, digits, _ . -)")
    return name


# A call id as Asterisk writes a uniqueid (``[systemname-]epoch.sequence``, at most 150 characters: AST_MAX_UNIQUEID):
# printable ASCII without spaces. Anything else in HOTLINE_CALL_ID came from outside, and PostgreSQL refuses text
# with a NUL in it, so it is not taken for a call of ours.
_CALL_ID = re.compile(r"[!-~]{1,150}")


def is_call_id(value: object) -> bool:
    """Whether ``value`` can be one of our call ids (see `_CALL_ID`)."""
    return isinstance(value, str) and _CALL_ID.fullmatch(value) is not None


def is_valid_name(name: object) -> bool:
    """Whether ``name`` passes ``check_name``."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def agent_topic(agent: str) -> str:
    """The topic filter an agent may read."""
    return f"{TOPIC_ROOT}/agents/{check_name(agent, 'agent')}/#"


def screenpop_topic(agent: str) -> str:
    """Where the gateway publishes an agent's screen-pops."""
    return f"{TOPIC_ROOT}/agents/{check_name(agent, 'agent')}/screenpop"


def linkage_topic(centre: str) -> str:
    """Where a linked centre reads the case data of its hand-offs."""
    return f"{TOPIC_ROOT}/linkage/{check_name(centre, 'centre')}"


def centre_user(centre: str) -> str:
    """A linked centre's MQTT user."""
    return CENTRE_PREFIX + check_name(centre, "centre")


def new_message_id() -> str:
    """The id every copy of one broker message carries (delivery is at least once: consumers drop repeats)."""
    return uuid.uuid4().hex
