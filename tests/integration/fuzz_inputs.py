"""Seeded mutations of valid inputs for the gateway's four network doors: FastAGI (the header block and the
replies to its commands), AMI (events as Asterisk 22 sends them), AudioSocket (frames) and the agent console
(HTTP requests). Pure: each function takes a ``random.Random`` and returns bytes, so a seed replays a run.

Mostly valid, sometimes bent: a fuzzer that only sends garbage tests the first parser and nothing behind it.
"""
from __future__ import annotations

import json
import random
import struct
import uuid

# Odd text: CJK caller names, a character cut in half, emoji, combining marks, NUL and controls, the separators
# each protocol splits on, digits that look like phone numbers.
_ODD_PIECES = ["张三丰", "湛江市赤坎区", "🚒", "e\u0301", "\u202e", "\x00", "\x07", "\t", "=", ":", ": ", ";", ",",
               "(", ")", '"', "\\", "%00", "%zz", "../", "13800138000", "+8613800138000", "0086", "-1", "999999999999",
               "NaN", "null", "\ufeff", "\ud7ff", "\uffff", " ", ""]
_BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\x80", b"\xc0\xaf", b"\xe5\xbc", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]


def odd_text(rng: random.Random, *, longest: int = 200) -> str:
    pieces = [rng.choice(_ODD_PIECES) for _ in range(rng.randint(1, 6))]
    if rng.random() < 0.1:
        pieces.append(rng.choice("x9张=") * rng.randint(longest // 2, longest))
    return "".join(pieces)


def bend_text(rng: random.Random, valid: str, *, longest: int = 200) -> str:
    """``valid`` most of the time; else emptied, lengthened, spliced with odd text or replaced by it."""
    roll = rng.random()
    if roll < 0.6:
        return valid
    if roll < 0.7:
        return ""
    if roll < 0.8:
        return valid * rng.randint(2, max(2, longest // max(1, len(valid))))
    if roll < 0.92:
        at = rng.randint(0, len(valid))
        return valid[:at] + odd_text(rng, longest=longest) + valid[at:]
    return odd_text(rng, longest=longest)


def bend_bytes(rng: random.Random, data: bytes) -> bytes:
    """Byte-level damage: a flipped bit, invalid UTF-8 spliced in, a cut or a doubled stretch."""
    if not data:
        return rng.choice(_BAD_UTF8)
    roll, at = rng.random(), rng.randrange(len(data))
    if roll < 0.3:
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]
    if roll < 0.6:
        return data[:at] + rng.choice(_BAD_UTF8) + data[at:]
    if roll < 0.8:
        return data[:at]
    return data[:at] + data[at:at + rng.randint(1, 64)] * rng.randint(2, 8) + data[at:]


def bend_headers(rng: random.Random, headers: list[tuple[str, str]], *, longest: int) -> list[tuple[str, str]]:
    """Drop some (missing fields), double some, bend values and now and then a key."""
    out = []
    for key, value in headers:
        if rng.random() < 0.08:
            continue
        if rng.random() < 0.04:
            key = bend_text(rng, key, longest=40)
        out.append((key, bend_text(rng, value, longest=longest) if rng.random() < 0.5 else value))
        if rng.random() < 0.04:
            out.append((key, odd_text(rng)))
    if rng.random() < 0.05:
        out.insert(rng.randint(0, len(out)), (odd_text(rng, longest=40), odd_text(rng)))
    return out


# -- FastAGI --------------------------------------------------------------------------------------------------

def agi_environment(rng: random.Random, n: int) -> list[tuple[str, str]]:
    uniqueid = f"{1764500000 + n}.{n % 1000}"
    return [("agi_network", "yes"), ("agi_network_script", "entry"), ("agi_request", "agi://127.0.0.1/entry"),
            ("agi_channel", f"PJSIP/caller-{n:08x}"), ("agi_language", "zh"), ("agi_type", "PJSIP"),
            ("agi_uniqueid", uniqueid), ("agi_version", "22.10.1"),
            ("agi_callerid", rng.choice(["13800138000", "+8613912345678", "075912345678", "anonymous", "2345678"])),
            ("agi_calleridname", rng.choice(["张三", "unknown", ""])), ("agi_callingpres", "0"),
            ("agi_dnid", "12345"), ("agi_rdnis", "unknown"), ("agi_context", "hotline"),
            ("agi_extension", "12345"), ("agi_priority", "2"), ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""), ("agi_threadid", "140000000000000")]


def agi_header_block(rng: random.Random, n: int) -> tuple[bytes, bool]:
    """The header block of session ``n`` and whether it is complete (ends with the blank line)."""
    headers = bend_headers(rng, agi_environment(rng, n), longest=2000)
    data = "".join(f"{k}: {v}\n" if rng.random() > 0.02 else f"{k}{v}\n" for k, v in headers).encode()
    if rng.random() < 0.1:
        data = bend_bytes(rng, data)
    complete = rng.random() > 0.05
    return (data + b"\n" if complete else data[: rng.randint(0, len(data))]), complete


def _plausible_reply(rng: random.Random, command: str) -> str:
    verb = command.split(" ", 1)[0].upper()
    if verb == "GET" and command.upper().startswith("GET VARIABLE"):
        return rng.choice(["200 result=0", f"200 result=1 ({rng.choice(['SUCCESS', 'FAILURE', '1', ''])})"])
    if verb == "GET":   # GET DATA: the digits typed, or a timeout
        return rng.choice(["200 result=", "200 result= (timeout)", f"200 result={rng.randint(0, 99999)}",
                           "200 result=1#", "200 result=-1"])
    if verb in {"STREAM", "CONTROL"}:
        return rng.choice(["200 result=0 endpos=8000", f"200 result={rng.choice([49, 50, 51, 57, 35, 42])} endpos=1"])
    if verb == "WAIT":
        return rng.choice(["200 result=0", f"200 result={rng.choice([48, 49, 50, 51, 55, 57, 35])}"])
    return rng.choice(["200 result=0", "200 result=1"])


def agi_reply(rng: random.Random, command: str) -> tuple[bytes, bool]:
    """The reply to one command the gateway sent, and whether the session should go on after it."""
    roll = rng.random()
    if roll < 0.75:
        line = _plausible_reply(rng, command)
        return (line + "\n").encode(), True
    if roll < 0.8:
        return b"HANGUP\n" + (_plausible_reply(rng, command) + "\n").encode(), True
    if roll < 0.84:
        return b"511 Command Not Permitted on a dead channel or intercept routine\n", True
    if roll < 0.87:
        return b"510 Invalid or unknown command\n", True
    if roll < 0.89:
        return b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n520 End of proper usage.\n", True
    if roll < 0.91:
        return b"100 result=0 Trying...\n" + (_plausible_reply(rng, command) + "\n").encode(), True
    if roll < 0.95:
        return bend_bytes(rng, (_plausible_reply(rng, command) + "\n").encode()) + b"\n", True
    if roll < 0.97:
        return b"200 result=" + b"9" * rng.choice([70_000, 65_536, 1000]) + b"\n", True
    return (_plausible_reply(rng, command)[: rng.randint(0, 8)]).encode(), False   # cut, then the peer is gone


# -- AMI --------------------------------------------------------------------------------------------------------

def _channel_headers(n: int) -> list[tuple[str, str]]:
    return [("Privilege", "call,all"), ("Channel", f"PJSIP/caller-{n:08x}"), ("ChannelState", "6"),
            ("ChannelStateDesc", "Up"), ("CallerIDNum", "13800138000"), ("CallerIDName", "张三丰"),
            ("ConnectedLineNum", "<unknown>"), ("Context", "hotline"), ("Exten", "12345"), ("Priority", "1"),
            ("Uniqueid", f"1764500000.{n}"), ("Linkedid", f"1764500000.{n}")]


def queue_caller_join(n: int, call_id: str) -> list[tuple[str, str]]:
    """The event that makes the gateway start a live capture (it originates an AudioSocket spy)."""
    return [("Event", "QueueCallerJoin"), *_channel_headers(n), ("Queue", "hotline"), ("Position", "1"),
            ("Count", "1"), ("ChanVariable", f"HOTLINE_CALL_ID={call_id}"), ("ChanVariable", "HOTLINE_TICKET_ID=")]


def ami_event(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """A queue, channel or hand-off event of a call that is not live; never a QueueCallerJoin, whose spy the
    AudioSocket fuzzer answers for (a spy nobody answers turns live capture off for a minute)."""
    call_id = f"fuzz-{n}"
    chan_vars = [("ChanVariable", f"HOTLINE_CALL_ID={call_id}"), ("ChanVariable", "HOTLINE_TICKET_ID="),
                 ("ChanVariable", "HOTLINE_CAPTURE=record")]
    common = _channel_headers(n)
    queue = [("Queue", "hotline"), ("Position", "1"), ("Count", "1")]
    agent = [("Interface", "PJSIP/agent1"), ("MemberName", rng.choice(["agent1", "agent2", "张三"])),
             ("DestChannel", "PJSIP/agent1-00000001")]
    name = rng.choice(["Newchannel", "Hangup", "VarSet", "AgentCalled", "AgentConnect", "AgentComplete",
                       "QueueCallerAbandon", "QueueCallerLeave", "DTMFEnd", "UserEvent", "OriginateResponse",
                       "DialBegin", "BridgeEnter", "Newstate", "FullyBooted", "Response"])
    if name == "Response":
        return [("Response", rng.choice(["Success", "Error"])), ("ActionID", f"hg-{n}"), ("Message", "x")]
    extra = {
        "Hangup": [("Cause", "16"), ("Cause-txt", "Normal Clearing")],
        "VarSet": [("Variable", "HOTLINE_ACTION"), ("Value", "queue")],
        "AgentConnect": [*queue, *agent, ("HoldTime", str(rng.choice([0, 3, 10**9, -1]))), ("RingTime", "2"),
                         *chan_vars],
        "AgentComplete": [*queue, *agent, ("HoldTime", "3"), ("TalkTime", "20"), ("Reason", "caller"), *chan_vars],
        "QueueCallerAbandon": [*queue, ("OriginalPosition", "1"), ("HoldTime", "9"), *chan_vars],
        "QueueCallerLeave": [*queue, *chan_vars],
        "AgentCalled": [*queue, *agent, *chan_vars],
        "DTMFEnd": [("Digit", rng.choice(["#", "1", "*"])), ("DurationMs", "120"), ("Direction", "Received"),
                    *chan_vars],
        "UserEvent": [("UserEvent", "HotlineLinkage"), ("Call", call_id), ("Handoff", str(rng.randint(-1, 10**12))),
                      ("Target", "119"), ("Stage", rng.choice(["ring", "answered", "fallback", "NOANSWER"]))],
        "OriginateResponse": [("ActionID", f"hg-{n}"), ("Response", "Failure"), ("Reason", "0")],
        "FullyBooted": [("Status", "Fully Booted"), ("Uptime", "1"), ("LastReload", "1")],
    }.get(name, [])
    return [("Event", name), *common, *extra]


def ami_message(rng: random.Random, n: int, event: list[tuple[str, str]] | None = None) -> bytes:
    """One AMI message (ended by the blank line) with bent headers, odd UTF-8, now and then a huge header."""
    headers = bend_headers(rng, event or ami_event(rng, n), longest=3000)
    if rng.random() < 0.01:
        headers.append(("X-Huge", "张" * rng.randint(20_000, 120_000)))
    lines = [f"{k}: {v}" if rng.random() > 0.02 else f"{k}{v}" for k, v in headers]
    data = "\r\n".join(lines).encode()
    if rng.random() < 0.05:
        data = bend_bytes(rng, data)
    # A message must end with the blank line, or it swallows the next; a lone "\r\n\r\n" inside splits it.
    return data.replace(b"\r\n\r\n", b"\r\n") + b"\r\n\r\n"


# -- AudioSocket -----------------------------------------------------------------------------------------------

_FRAME = struct.Struct("!BH")


def audiosocket_frame(kind: int, payload: bytes) -> bytes:
    return _FRAME.pack(kind, len(payload)) + payload


def audiosocket_handshake(rng: random.Random) -> bytes:
    """A bent first frame: wrong kind, wrong length, unknown UUID, cut short."""
    good = audiosocket_frame(0x01, uuid.UUID(int=rng.getrandbits(128)).bytes)
    return rng.choice([
        good, good[: rng.randint(0, len(good) - 1)], audiosocket_frame(0x10, bytes(320)),
        audiosocket_frame(0x01, bytes(rng.choice([0, 15, 17, 36]))), audiosocket_frame(0xFF, b"\x01"),
        audiosocket_frame(0x00, b""), bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))),
        _FRAME.pack(0x01, 65535) + bytes(100),
    ])


def audiosocket_call_frame(rng: random.Random) -> tuple[bytes, bool]:
    """A frame after a good handshake, and whether the stream goes on after it."""
    roll = rng.random()
    if roll < 0.7:
        samples = rng.choice([bytes(320), rng.randbytes(320),
                              b"".join(struct.pack("<h", int(8000 * ((i % 40) / 20 - 1))) for i in range(160))])
        return audiosocket_frame(0x10, samples), True
    if roll < 0.78:
        return audiosocket_frame(0x10, rng.randbytes(rng.choice([0, 1, 2, 319, 321, 640, 4000, 65535]))), True
    if roll < 0.84:
        return audiosocket_frame(0x03, rng.choice([b"#", b"1", b"", b"12", b"\xff", "张".encode()])), True
    if roll < 0.88:
        return audiosocket_frame(rng.choice([0x12, 0x16, 0x18]), rng.randbytes(640)), True
    if roll < 0.91:
        return audiosocket_frame(rng.choice([0x02, 0x04, 0x11, 0x7F, 0x01]), rng.randbytes(16)), True
    if roll < 0.93:
        return audiosocket_frame(0xFF, rng.randbytes(rng.randint(0, 4))), False
    if roll < 0.95:
        return audiosocket_frame(0x00, b""), False
    if roll < 0.97:
        frame = audiosocket_frame(0x10, rng.randbytes(320))
        return frame[: rng.randint(1, len(frame) - 1)], False
    return _FRAME.pack(0x10, rng.randint(1, 65535)), False   # a length it never sends


# -- the agent console (HTTP) -----------------------------------------------------------------------------------

def _json_body(rng: random.Random, valid: dict) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        body = {k: (bend_text(rng, v, longest=5000) if isinstance(v, str) else v) for k, v in valid.items()}
        if rng.random() < 0.3:
            key = rng.choice(list(body) or ["x"])
            body[key] = rng.choice([None, 0, -1, 1e308, True, [], {}, ["a"], {"a": 1}, "x" * 70_000])
        return json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()
    if roll < 0.6:
        depth = rng.choice([10, 999, 5000, 30_000])
        return b"[" * depth + b"]" * depth
    if roll < 0.7:
        return rng.choice([b"", b"null", b"[]", b"1", b'"x"', b"{", b'{"a":}', b"NaN", b"\xef\xbb\xbf{}",
                           b'{"reason": "\xff\xfe"}', b'{"reason": "\\ud800"}'])
    if roll < 0.8:
        return json.dumps(valid).encode("utf-16")
    return bend_bytes(rng, json.dumps(valid, ensure_ascii=False).encode())


def console_request(rng: random.Random, *, host: str, cookie: str | None, ticket_ids: list[str]) -> bytes:
    """One HTTP/1.1 request to the console, sent on its own connection (``Connection: close``); ``cookie`` is
    the signed-in session's ``name=value`` (never sent with a sign-out, which would end it)."""
    ticket = rng.choice(ticket_ids + ["0", "-1", "99999999999999999999", "张", "%2e%2e", "..%2f..%2fetc", "a" * 5000,
                                      "%00", "1;drop", "T-1"])
    if rng.random() < 0.3:
        ticket = bend_text(rng, ticket, longest=300)
    method, path, body = rng.choice([
        ("GET", "/", None), ("GET", "/static/app.js", None), ("GET", "/static/../../etc/passwd", None),
        ("POST", "/api/login", {"agent": "agent1", "password": "wrong"}), ("POST", "/api/logout", {}),
        ("GET", f"/api/tickets/{ticket}", None),
        ("PUT", f"/api/tickets/{ticket}", {"address": "赤坎区", "summary": "噪音", "due": "2026-03-20",
                                           "callback_number": "13800138000", "type": "complaint"}),
        ("POST", f"/api/tickets/{ticket}/abusive", {"reason": "insult"}),
        # never a real ticket's: that would hand a real call to a centre (and wait on it)
        ("POST", f"/api/tickets/{bend_text(rng, 'no-such-ticket')}/transfer",
         {"centre": "119", "mode": rng.choice(["blind", "three_way"])}),
        ("GET", "/api/centres", None), ("GET", "/api/" + odd_text(rng, longest=50), None),
    ])
    if rng.random() < 0.05:
        method = rng.choice(["DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "G\xe9T", "BREW"])
    payload = _json_body(rng, body) if body is not None else (b"" if rng.random() < 0.9 else rng.randbytes(64))
    path = path.replace(" ", "%20")
    if rng.random() < 0.1:
        path += "?" + rng.choice(["a=1", "a=%zz", "x=" + "y" * 8000, "&&&", "张=三"])
    headers = [("Host", host), ("Content-Type", "application/json"), ("Connection", "close")]
    if cookie is not None and rng.random() < 0.8:
        name, _, value = cookie.partition("=")
        headers.append(("Cookie", f"{name}={value if path != '/api/logout' else odd_text(rng, longest=60)}"))
    headers = bend_headers(rng, headers, longest=300)
    if rng.random() < 0.1:
        headers.append(("Origin", rng.choice(["http://evil.example", "null", "http://" + host, odd_text(rng)])))
    if rng.random() < 0.1:
        headers.append(("Content-Type", rng.choice(["text/plain", "application/json; charset=latin-1",
                                                    "multipart/form-data; boundary=x", odd_text(rng)])))
    if not any(k.lower() == "connection" for k, _ in headers):
        headers.append(("Connection", "close"))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head_bytes = head.encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.03:
        head_bytes = bend_bytes(rng, head_bytes)
    # a length that lies short: the rest reads as the next request (a longer one only keeps aiohttp waiting,
    # with no time limit, for bytes that never come)
    length = len(payload) if rng.random() > 0.03 else 0
    return head_bytes + f"Content-Length: {length}\r\n\r\n".encode() + payload


def encode_ami(headers: list[tuple[str, str]]) -> bytes:
    """An AMI message as Asterisk writes it, unbent."""
    return "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n"
