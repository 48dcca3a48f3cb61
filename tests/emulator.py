#!/usr/bin/env python3
"""A local emulator of the Apify webhooks API (POST/GET /v2/webhooks, GET/DELETE /v2/webhooks/{id}).

The tests and `make demo` point apify-sqlite at this server instead of https://api.apify.com,
and so can you, to try the extension without an Apify account. It needs nothing but Python 3
(standard library only) and listens on the loopback interface only.

Run it:

    python3 tests/emulator.py                   # picks a free port, prints the URL
    python3 tests/emulator.py --port 8787 --token my-token --rate-limit 60 --latency-ms 50

It prints exactly one line, `listening on http://127.0.0.1:PORT`, once it accepts connections,
and stops on Ctrl-C or SIGTERM. With `--tls-cert cert.pem --tls-key key.pem` it speaks https
instead (each connection's TLS handshake runs on its own thread) and prints
`listening on https://127.0.0.1:PORT`; a self-signed pair for tests:

    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \\
      -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout key.pem -out cert.pem

Then, in another terminal:

    export APIFY_API_BASE_URL=http://127.0.0.1:PORT APIFY_TOKEN=test-token
    curl -s -H "Authorization: Bearer $APIFY_TOKEN" -H 'Content-Type: application/json' \\
         -d '{"requestUrl":"https://example.com/hook","eventTypes":["ACTOR.RUN.SUCCEEDED"],
              "condition":{"actorId":"HDSasDasz78YcAPEB"}}' "$APIFY_API_BASE_URL/v2/webhooks"

What it implements: token auth (Bearer header or ?token=; each accepted token is its own user
with a stable 17-character userId), the Content-Type check, Content-Encoding gzip, deflate,
identity, and br when the system's libbrotlidec can be loaded (libcurl depends on it), the
9,437,184-byte body limit, full validation of a WebhookCreate (fields, event types, condition,
Apify templates) with the API's error types, per-user idempotency keys, a per-user webhook
limit that ignores ad-hoc webhooks, 201 + Location + {"data": Webhook}, listing with
offset/limit/desc, get, delete, and X-RateLimit-Limit on every API response. Not implemented:
updating a webhook (PUT answers 405), dispatches, and every other Apify resource (404).

Faults it can inject into POST /v2/webhooks, like a real network (flags, or knobs at run time):

    --latency-ms N        sleep N ms before answering every API request
    --rate-limit N        N POSTs per second per user (sliding 1 s window); more get 429
    --rate-limit-header N the X-RateLimit-Limit value (default: the rate limit, else 60)
    --retry-after S       send Retry-After: S with every 429
    --fail-5xx F          fraction F of POSTs answered 500, nothing created
    --cut-after-create F  fraction F created, then the connection is closed without an answer
    --slow-ms N --slow F  fraction F created and answered N ms late
    --malformed F         fraction F created and answered 201 with a body that is not JSON
    --script A,B,...      actions for the next POSTs, one each, before any random fault:
                          ok, 500, 503, 429, cut, slow, malformed, huge (created, then
                          answered 201 with a valid 8 MiB body: tests a client's answer cap),
                          draw (this one takes the random draw: place a burst mid-run)
    --seed N              seed of the random fault draws (runs are repeatable)
    --draw-by-body        draw each POST's random fault from the seed, the SHA-256 of its body
                          and how many times that body came before, instead of from one shared
                          sequence: which request meets which fault, and on which attempt, then
                          does not depend on the order concurrent requests arrive in
    --max-webhooks N      webhooks a user may have, ad-hoc ones not counted (default 100)

A POST /v2/webhooks goes through, in this order: body size (413), latency, token (401), rate
limit (429, not counted), then takes the next action (scripted, else one random draw; 500, 503
and 429 are answered here), Content-Type (400), Content-Encoding (415), JSON and fields (400),
the idempotency key (a known key answers with its webhook), the webhook limit (403), creation,
and last the action decides how the 201 goes out (ok, cut, slow, malformed, huge).

Control endpoints (no auth, never in the request log):

    GET  /_emulator/log     every API request in arrival order, each {"method", "path",
                            "query" (token values "***"), "headers" (as received, Authorization
                            "Bearer ***"), "auth": "valid"|"invalid"|"none", "body" (decoded
                            text), "status" (a number, "cut", "client-gone" when the client
                            hung up before the whole answer was written, or null while in
                            flight), "time"
                            (Unix seconds), and for POSTs "action" and "webhookId"}
    GET  /_emulator/state   all webhooks of all users, with idempotencyKey and userId, and counts
    GET  /_emulator/counts  only the counts (cheap enough to poll while a client runs)
    GET  /_emulator/config  the current knobs
    POST /_emulator/config  {"rate_limit": 10, "script": ["503", "cut"], ...} changes knobs
    POST /_emulator/reset   forgets webhooks and the log, and restores the command-line knobs
"""

import argparse
import ctypes
import ctypes.util
import collections
import datetime
import hashlib
import http.server
import ipaddress
import json
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import zlib

MAX_BODY_BYTES = 9_437_184
DEFAULT_TOKEN = "test-token"
DEFAULT_RATE_LIMIT_HEADER = 60
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

EVENT_TYPES = frozenset([
    "ACTOR.BUILD.ABORTED", "ACTOR.BUILD.CREATED", "ACTOR.BUILD.FAILED", "ACTOR.BUILD.SUCCEEDED",
    "ACTOR.BUILD.TIMED_OUT", "ACTOR.RUN.ABORTED", "ACTOR.RUN.CREATED", "ACTOR.RUN.FAILED",
    "ACTOR.RUN.RESURRECTED", "ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.TIMED_OUT", "TEST",
])
CONDITION_KEYS = ("actorId", "actorTaskId", "actorRunId")
BOOLEAN_FIELDS = ("isAdHoc", "shouldInterpolateStrings", "ignoreSslErrors", "doNotRetry")
STRING_FIELDS = ("idempotencyKey", "payloadTemplate", "headersTemplate", "description")
REQUIRED_FIELDS = ("requestUrl", "eventTypes", "condition")
CREATE_FIELDS = frozenset(REQUIRED_FIELDS + BOOLEAN_FIELDS + STRING_FIELDS)
TEMPLATE_ROOTS = frozenset(["userId", "createdAt", "eventType", "eventData", "resource", "globals"])
SCRIPT_ACTIONS = ("ok", "500", "503", "429", "cut", "slow", "malformed", "huge", "draw")
HUGE_REPLY_BYTES = 8 * 1024 * 1024   # the "huge" action's answer: far over any sane client cap

# Knobs and their command-line defaults. None means "off" (or "derived" for rate_limit_header).
DEFAULT_KNOBS = {
    "latency_ms": 0, "rate_limit": None, "rate_limit_header": None, "retry_after": None,
    "fail_5xx": 0.0, "cut_after_create": 0.0, "slow_ms": 0, "slow": 0.0, "malformed": 0.0,
    "max_webhooks": 100, "seed": None, "script": [], "draw_by_body": False,
}
FRACTION_KNOBS = ("fail_5xx", "cut_after_create", "slow", "malformed")
WHOLE_KNOBS = ("rate_limit", "rate_limit_header", "max_webhooks")
NULLABLE_KNOBS = ("rate_limit", "rate_limit_header", "retry_after", "seed")


class ApiError(Exception):
    """An API error answered as {"error": {"type", "message"}} with an HTTP status."""

    def __init__(self, status, error_type, message, headers=()):
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, error_type, message, headers


def invalid(message):
    return ApiError(400, "invalid-input", message)


# ---------------------------------------------------------------------------------------------
# Validation of a WebhookCreate body

def validate_create(body):
    """Check a decoded POST body against the WebhookCreate rules; return the fields to store.

    The first broken rule raises ApiError(400, invalid-input). Fields are checked in a fixed
    order (unknown fields, required fields, then each field) so every message is repeatable.
    """
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    for name in body:
        if name not in CREATE_FIELDS:
            raise invalid(f'Field "{name}" is not allowed')
    for name in REQUIRED_FIELDS:
        if name not in body:
            raise invalid(f'Field "{name}" is required')

    check_request_url(body["requestUrl"])
    check_event_types(body["eventTypes"])
    check_condition(body["condition"])
    for name in BOOLEAN_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise invalid(f'Field "{name}" must be a boolean or null')
    for name in STRING_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise invalid(f'Field "{name}" must be a string or null')
    key = body.get("idempotencyKey")
    if key is not None and not 1 <= len(key) <= 256:
        raise invalid('Field "idempotencyKey" must be 1 to 256 characters long')

    interpolate = body.get("shouldInterpolateStrings") is True
    if body.get("payloadTemplate"):
        check_template(body["payloadTemplate"], "payload", interpolate)
    if body.get("headersTemplate"):
        headers = check_template(body["headersTemplate"], "headers", interpolate)
        check_headers_shape(headers)

    return {
        "requestUrl": body["requestUrl"],
        "eventTypes": list(body["eventTypes"]),
        "condition": dict(body["condition"]),
        # Booleans are stored as booleans: null and absent mean false.
        **{name: body.get(name) is True for name in BOOLEAN_FIELDS},
        **{name: body.get(name) for name in STRING_FIELDS},
    }


def check_request_url(url):
    if not isinstance(url, str):
        raise invalid('Field "requestUrl" must be a string')
    message = f'Field "requestUrl" must be an absolute http or https URL (got "{url[:200]}")'
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise invalid(message)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        raise invalid(message) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid(message)


def check_event_types(event_types):
    if not isinstance(event_types, list) or not event_types:
        raise invalid('Field "eventTypes" must be a non-empty array')
    for event_type in event_types:
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            raise invalid(f'Field "eventTypes" contains an invalid event type: {json.dumps(event_type)}')


def check_condition(condition):
    if not isinstance(condition, dict):
        raise invalid('Field "condition" must be an object')
    for name, value in condition.items():
        if name not in CONDITION_KEYS:
            raise invalid(f'Field "condition.{name}" is not allowed')
        if not isinstance(value, str) or not value:
            raise invalid(f'Field "condition.{name}" must be a non-empty string')
    if not condition:
        raise invalid('Field "condition" must contain actorId, actorTaskId or actorRunId')


# ---------------------------------------------------------------------------------------------
# Apify templates: JSON text in which {{variable}} may stand where a JSON value may stand

class _Placeholder:
    """What a {{variable}} outside strings parses to (so headers can tell it from a literal)."""

    def __repr__(self):
        return "{{placeholder}}"


PLACEHOLDER = _Placeholder()
_TEMPLATE_TOKEN = re.compile(r'"|\{\{|[NI]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_IN_STRING_VARIABLE = re.compile(r"\{\{([A-Za-z0-9.]+)\}\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z0-9_$]+)*\Z")


def check_template(text, kind, interpolate_strings):
    """Check an Apify template; kind is "payload" or "headers". Return the parsed JSON value,
    with PLACEHOLDER where a {{variable}} stood outside strings. Raises ApiError(400).

    Each placeholder outside strings is replaced by `NaN` padded with spaces to its own length,
    so json reports error positions in the user's text, and parse_constant turns it back into
    PLACEHOLDER. NaN and Infinity are not JSON, so literal ones (an `N` or `I` outside strings)
    are refused before Python's lenient parser could accept them.
    """
    names, pieces, i = [], [], 0
    while True:
        match = _TEMPLATE_TOKEN.search(text, i)
        if match is None:
            pieces.append(text[i:])
            break
        start = match.start()
        pieces.append(text[i:start])
        token = match.group()
        if token == '"':
            rest = _STRING_REST.match(text, start + 1)
            end = rest.end() if rest else len(text)  # unterminated: json reports it below
            if interpolate_strings:
                names.extend(m.group(1) for m in _IN_STRING_VARIABLE.finditer(text, start, end))
            pieces.append(text[start:end])
            i = end
        elif token == "{{":
            close = text.find("}}", start + 2)
            if close < 0:
                raise template_syntax_error(kind, text, start)
            names.append(text[start + 2:close].strip())
            pieces.append("NaN".ljust(close + 2 - start))
            i = close + 2
        else:
            raise template_syntax_error(kind, text, start)

    for name in names:
        if not _VARIABLE_NAME.match(name) or name.split(".")[0] not in TEMPLATE_ROOTS:
            raise invalid(f"Invalid {kind} template variable: {name}")
    try:
        return json.loads("".join(pieces), parse_constant=lambda _: PLACEHOLDER)
    except json.JSONDecodeError as err:
        raise template_syntax_error(kind, text, err.pos) from None


def template_syntax_error(kind, text, pos):
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return invalid(f"Invalid {kind} template: not valid JSON at line {line} column {column}")


def check_headers_shape(headers):
    """A headers template must yield an object of strings (a placeholder value is fine)."""
    if not isinstance(headers, dict):
        raise invalid("Invalid headers template: it must be a JSON object")
    for name, value in headers.items():
        if not isinstance(value, str) and value is not PLACEHOLDER:
            raise invalid(f'Invalid headers template: the value of header "{name}" must be a string')


# ---------------------------------------------------------------------------------------------
# Request bodies: size limit and Content-Encoding

_brotli = None


def brotli_decoder():
    """The system's libbrotlidec through ctypes (libcurl depends on it), or None."""
    global _brotli
    if _brotli is None:
        _brotli = False
        for name in (ctypes.util.find_library("brotlidec"), "libbrotlidec.so.1", "libbrotlidec.dylib"):
            try:
                lib = ctypes.CDLL(name) if name else None
            except OSError:
                continue
            if lib is not None:
                lib.BrotliDecoderDecompress.restype = ctypes.c_int
                lib.BrotliDecoderDecompress.argtypes = [
                    ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p]
                _brotli = lib
                break
    return _brotli or None


def _unbrotli(data, limit):
    lib = brotli_decoder()
    out = ctypes.create_string_buffer(limit + 1)
    size = ctypes.c_size_t(limit + 1)
    result = lib.BrotliDecoderDecompress(len(data), data, ctypes.byref(size), out)
    if result == 3:  # BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: bigger than the limit
        return out.raw
    if result != 1:  # anything but BROTLI_DECODER_RESULT_SUCCESS
        raise zlib.error("invalid brotli data")
    return out.raw[:size.value]


def _inflate(data, wbits, limit):
    decoder = zlib.decompressobj(wbits)
    out = decoder.decompress(data, limit + 1)
    if len(out) <= limit and not decoder.eof:
        raise zlib.error("truncated stream")
    return out


def supported_encodings():
    encodings = ["identity", "gzip", "x-gzip", "deflate"]
    return encodings + (["br"] if brotli_decoder() else [])


def decode_body(raw, content_encoding):
    """Undo Content-Encoding (a list like "gzip" or "deflate, gzip"); return the body bytes.
    Raises ApiError 415 for an unknown coding, 400 for a corrupt one, 413 when the decoded body
    is over the limit (a small gzip can expand to gigabytes)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in codings:
        if coding not in supported_encodings():
            raise ApiError(415, "unsupported-content-encoding",
                           f'Content-Encoding "{coding}" is not supported.')
    data = raw
    for coding in reversed(codings):
        try:
            if coding in ("gzip", "x-gzip"):
                data = _inflate(data, 16 + zlib.MAX_WBITS, MAX_BODY_BYTES)
            elif coding == "deflate":
                try:
                    data = _inflate(data, zlib.MAX_WBITS, MAX_BODY_BYTES)
                except zlib.error:  # some clients send raw deflate without the zlib wrapper
                    data = _inflate(data, -zlib.MAX_WBITS, MAX_BODY_BYTES)
            elif coding == "br":
                data = _unbrotli(data, MAX_BODY_BYTES)
        except zlib.error:
            raise invalid(f'The request body is not valid "{coding}" data') from None
        if len(data) > MAX_BODY_BYTES:
            raise too_large(len(data))
    return data


def too_large(length):
    return ApiError(413, "request-too-large", f"The POST payload is too large "
                    f"(limit: {MAX_BODY_BYTES} bytes, actual length: {length} bytes).")


# ---------------------------------------------------------------------------------------------
# Identifiers and times

def user_id_for(token):
    """A stable 17-character user id derived from the token (same token, same user)."""
    number = int.from_bytes(hashlib.sha256(b"apify-emulator-user\0" + token.encode()).digest(), "big")
    chars = []
    for _ in range(17):
        number, digit = divmod(number, len(ID_ALPHABET))
        chars.append(ID_ALPHABET[digit])
    return "".join(chars)


_id_random = random.SystemRandom()


def new_webhook_id():
    return "".join(_id_random.choice(ID_ALPHABET) for _ in range(17))


def iso_now():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Shared state and fault injection

def check_knobs(changes):
    """Validate a dict of knob changes; return it normalised. Raises ValueError naming the knob."""
    out = {}
    for name, value in changes.items():
        if name not in DEFAULT_KNOBS:
            raise ValueError(f"unknown knob {name!r}; knobs: {', '.join(DEFAULT_KNOBS)}")
        out[name] = check_knob(name, value)
    return out


def check_knob(name, value):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "script":
        if value is None:
            return []
        if not isinstance(value, list) or any(a not in SCRIPT_ACTIONS for a in value):
            raise ValueError(f"script must be a list of: {', '.join(SCRIPT_ACTIONS)}")
        return list(value)
    if value is None and name in NULLABLE_KNOBS:
        return None
    if name == "draw_by_body":
        if not isinstance(value, bool):
            raise ValueError("draw_by_body must be true or false")
        return value
    if name == "seed":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("seed must be an integer or null")
        return value
    if name in FRACTION_KNOBS:
        if not number or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number from 0 to 1")
        return value
    if not number or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    if name in WHOLE_KNOBS:
        if value != int(value):
            raise ValueError(f"{name} must be a whole number")
        return int(value)
    return value


class EmulatorState:
    """Everything the handlers share: webhooks, request log, knobs, rate windows. One lock
    guards it all, held only for bookkeeping, never while sleeping or doing I/O."""

    def __init__(self, tokens, knobs, base_url):
        self.lock = threading.Lock()
        self.users = {token: user_id_for(token) for token in tokens}
        self.initial_knobs = dict(knobs)
        self.base_url = base_url
        self.reset()

    def reset(self):
        with self.lock:
            self.knobs = dict(self.initial_knobs, script=list(self.initial_knobs["script"]))
            self.random = random.Random(self.knobs["seed"])
            self.webhooks = {}        # id -> stored webhook (with idempotencyKey, userId)
            self.order = []           # ids in creation order
            self.by_key = {}          # (userId, idempotencyKey) -> id
            self.windows = collections.defaultdict(collections.deque)  # userId -> POST times
            self.seen = collections.Counter()   # body hash -> POSTs so far (draw_by_body)
            self.log = []

    def configure(self, changes):
        """Change knobs (validated first: a bad change changes nothing); return all knobs."""
        changes = check_knobs(changes)
        with self.lock:
            self.knobs.update(changes)
            if "seed" in changes:
                self.random = random.Random(changes["seed"])
        return self.knobs_copy()

    def knobs_copy(self):
        with self.lock:
            return dict(self.knobs, script=list(self.knobs["script"]))

    def knob(self, name):
        with self.lock:
            return self.knobs[name]

    def rate_limit_header(self):
        """The X-RateLimit-Limit value: the header knob, else the rate limit, else 60."""
        with self.lock:
            knobs = self.knobs
            return knobs["rate_limit_header"] or knobs["rate_limit"] or DEFAULT_RATE_LIMIT_HEADER

    def admit(self, user_id):
        """Count one POST against the user's sliding one-second window. False means 429;
        a refused request is not counted, so a client that backs off gets through."""
        with self.lock:
            limit = self.knobs["rate_limit"]
            if not limit:
                return True
            now = time.monotonic()
            window = self.windows[user_id]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def next_action(self, raw=b""):
        """The fault for the next POST (raw: its body): a scripted one first, else one random
        draw, from the shared sequence or, with draw_by_body, from the body and its count."""
        with self.lock:
            k = self.knobs
            if k["script"]:
                action = k["script"].pop(0)
                if action != "draw":
                    return action
            if not (k["fail_5xx"] or k["cut_after_create"] or k["slow"] or k["malformed"]):
                return "ok"
            if k["draw_by_body"]:
                digest = hashlib.sha256(raw).hexdigest()
                self.seen[digest] += 1
                draw = random.Random(f"{k['seed']}:{digest}:{self.seen[digest]}").random()
            else:
                draw = self.random.random()
            edge = 0.0
            for name, action in (("fail_5xx", "500"), ("cut_after_create", "cut"),
                                 ("slow", "slow"), ("malformed", "malformed")):
                edge += k[name]
                if draw < edge:
                    return action
            return "ok"

    def create(self, user_id, fields):
        """Store a webhook, or return the one already created with the same idempotency key.
        Returns (stored webhook, created?). Raises ApiError 403 at the webhook limit."""
        with self.lock:
            key = fields["idempotencyKey"]
            if key is not None and (user_id, key) in self.by_key:
                return self.webhooks[self.by_key[(user_id, key)]], False
            if not fields["isAdHoc"]:
                limit = self.knobs["max_webhooks"]
                owned = sum(1 for w in self.webhooks.values()
                            if w["userId"] == user_id and not w["isAdHoc"])
                if owned >= limit:
                    raise ApiError(403, "too-many-webhooks",
                                   f"You have reached the maximum number of webhooks ({limit})")
            webhook_id = new_webhook_id()
            while webhook_id in self.webhooks:
                webhook_id = new_webhook_id()
            now = iso_now()
            stored = {"id": webhook_id, "createdAt": now, "modifiedAt": now, "userId": user_id,
                      **fields, "lastDispatch": None, "stats": {"totalDispatches": 0}}
            self.webhooks[webhook_id] = stored
            self.order.append(webhook_id)
            if key is not None:
                self.by_key[(user_id, key)] = webhook_id
            return stored, True

    def delete(self, user_id, webhook_id):
        """Delete a user's webhook; its idempotency key becomes free again. False if absent."""
        with self.lock:
            stored = self.webhooks.get(webhook_id)
            if stored is None or stored["userId"] != user_id:
                return False
            del self.webhooks[webhook_id]
            self.order.remove(webhook_id)
            if stored["idempotencyKey"] is not None:
                self.by_key.pop((user_id, stored["idempotencyKey"]), None)
            return True

    def snapshot(self):
        with self.lock:
            webhooks = [dict(self.webhooks[i]) for i in self.order]
            return {"webhooks": webhooks, "counts": self._counts()}

    def counts(self):
        with self.lock:
            return self._counts()

    def _counts(self):
        webhooks = self.webhooks.values()
        return {
            "webhooks": len(webhooks),
            "adHocWebhooks": sum(1 for w in webhooks if w["isAdHoc"]),
            "byUser": dict(collections.Counter(w["userId"] for w in webhooks)),
            "requests": len(self.log),
            "posts": sum(1 for e in self.log if e["method"] == "POST"),
            "byStatus": dict(collections.Counter(str(e["status"]) for e in self.log)),
        }


WEBHOOK_FIELDS = ("id", "createdAt", "modifiedAt", "userId", "isAdHoc", "shouldInterpolateStrings",
                  "eventTypes", "condition", "ignoreSslErrors", "doNotRetry", "requestUrl",
                  "payloadTemplate", "headersTemplate", "description", "lastDispatch", "stats")
SHORT_FIELDS = ("id", "createdAt", "modifiedAt", "userId", "isAdHoc", "shouldInterpolateStrings",
                "eventTypes", "condition", "ignoreSslErrors", "doNotRetry", "requestUrl",
                "lastDispatch", "stats")


def webhook_view(stored):
    """The Webhook object of the API (Webhook.yaml): no idempotencyKey."""
    return {name: stored[name] for name in WEBHOOK_FIELDS}


def webhook_short_view(stored):
    """A list item (WebhookShort.yaml)."""
    return {**{name: stored[name] for name in SHORT_FIELDS},
            "isApifyIntegration": False, "isEnabled": True, "actionType": "HTTP_REQUEST"}


# ---------------------------------------------------------------------------------------------
# HTTP handlers

class ConnectionCut(Exception):
    """The connection was closed on purpose: without an answer (a cut) or right after one."""

    def __init__(self, status="cut"):
        super().__init__(status)
        self.status = status


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, so clients reuse connections
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body back until the client's delayed ACK, 40 ms on every reused connection.
    disable_nagle_algorithm = True
    server_version = "apify-emulator/1"
    timeout = 300                   # an idle keep-alive connection is closed after this

    @property
    def state(self):
        return self.server.state

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def log_request(self, code="-", size="-"):
        """Quiet by default; --verbose prints method, path and status, never the query string
        (the request line can hold ?token=)."""
        if self.server.verbose:
            path = urllib.parse.urlsplit(getattr(self, "path", "")).path
            sys.stderr.write(f"{self.command or '-'} {path or '-'} {getattr(code, 'value', code)}\n")

    def log_message(self, fmt, *args):
        """Silent: http.server's own messages quote the request line, which may hold a token."""

    def handle_expect_100(self):
        # Refuse an oversized body before the client sends it: answer 413 instead of 100.
        if self.content_length() > MAX_BODY_BYTES:
            return True
        return super().handle_expect_100()

    def content_length(self):
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    # -- plumbing ---------------------------------------------------------------------------

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_emulator/"):
            return self.control(method, url)
        entry = {"method": method, "path": url.path, "query": redact_query(url.query),
                 "headers": redact_headers(self.headers), "auth": "none", "body": None,
                 "status": None, "time": time.time()}
        with self.state.lock:
            self.state.log.append(entry)
        try:
            try:
                status = self.api(method, url, entry)
            except ConnectionCut as cut:
                status = cut.status
            except ApiError as err:
                status = self.send_json(err.status, error_body(err), err.headers)
            except (ConnectionError, TimeoutError):
                raise
            except Exception:  # a bug in the emulator: say so, like the real API's rare 500
                sys.stderr.write("emulator bug:\n" + traceback.format_exc())
                self.close_connection = True
                status = self.send_json(500, {"error": {
                    "type": "internal-server-error", "message": "Emulator bug (see its stderr)"}})
        except (ConnectionError, TimeoutError):
            # The client hung up before the whole answer was written: it timed out on a slow
            # answer, or refused an oversized one. Normal, not an emulator bug.
            self.close_connection = True
            status = "client-gone"
        self.note(entry, status=status)

    def note(self, entry, **fields):
        """Update a request-log entry (other threads may be reading the log)."""
        with self.state.lock:
            entry.update(fields)

    def send_json(self, status, payload, headers=(), raw=None):
        """Answer with a JSON body (or raw bytes) and the API's headers; returns the status."""
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        self.send_header("X-RateLimit-Limit", str(self.state.rate_limit_header()))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if status != 204:
            self.wfile.write(body)
        self.wfile.flush()
        return status

    def read_body(self):
        """The raw request body (Content-Length or chunked), at most MAX_BODY_BYTES."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise invalid("The chunked request body is malformed") from None
                if size == 0:
                    while self.rfile.readline(8192).strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise too_large(total)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = self.content_length()
        if length < 0:
            self.close_connection = True
            raise invalid("The Content-Length header is not a number")
        if length > MAX_BODY_BYTES:
            # The body stays unread: answer, stop writing, and drain what the client still sends
            # so closing does not reset the connection before it has read the 413.
            self.close_connection = True
            self.send_json(413, error_body(too_large(length)))
            self.drain_and_close()
            raise ConnectionCut(413)
        return self.rfile.read(length) if length else b""

    def drain_and_close(self):
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            received = 0
            while received < 4 * MAX_BODY_BYTES:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
        except OSError:
            pass

    def cut(self):
        """Close the connection without a single response byte (the response is 'lost')."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionCut()

    def authenticate(self, url, entry):
        """Return the user id for the request's token, or raise 401. Records entry["auth"]."""
        token = None
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
        else:
            for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                if name == "token" and value:
                    token = value
        if token is None:
            raise ApiError(401, "token-not-provided", "Authentication token was not provided")
        user_id = self.state.users.get(token)
        self.note(entry, auth="valid" if user_id else "invalid")
        if user_id is None:
            raise ApiError(401, "user-or-token-not-found",
                           "User was not found or authentication token is not valid")
        return user_id

    # -- the API ----------------------------------------------------------------------------

    def api(self, method, url, entry):
        """Answer one API request; returns the status sent. Errors are raised as ApiError."""
        raw = self.read_body()  # read even when unused, so the connection stays usable
        self.note(entry, body=loggable_body(raw, self.headers.get("Content-Encoding")))
        latency = self.state.knob("latency_ms")
        if latency:
            time.sleep(latency / 1000)

        parts = url.path.rstrip("/").split("/")
        if parts[:3] != ["", "v2", "webhooks"] or len(parts) > 4:
            raise ApiError(404, "page-not-found", f"The requested path {url.path} was not found")
        webhook_id = parts[3] if len(parts) == 4 else None
        allowed = ("GET", "DELETE") if webhook_id else ("GET", "POST")
        if method not in allowed:
            raise ApiError(405, "method-not-allowed", f"Method {method} is not allowed here")
        user_id = self.authenticate(url, entry)

        if method == "POST":
            return self.create_webhook(user_id, raw, entry)
        if webhook_id is None:
            return self.send_json(200, {"data": self.list_webhooks(user_id, url.query)})
        with self.state.lock:
            stored = self.state.webhooks.get(webhook_id)
            found = stored is not None and stored["userId"] == user_id
            view = webhook_view(stored) if found else None
        if not found or (method == "DELETE" and not self.state.delete(user_id, webhook_id)):
            raise ApiError(404, "record-not-found", "Webhook was not found")
        if method == "DELETE":
            return self.send_json(204, None)
        return self.send_json(200, {"data": view})

    def create_webhook(self, user_id, raw, entry):
        """POST /v2/webhooks: rate limit, injected faults, checks, create, then the answer."""
        state = self.state
        if not state.admit(user_id):
            raise self.rate_limited()
        action = state.next_action(raw)
        self.note(entry, action=action)
        if action in ("500", "503"):
            raise ApiError(int(action), "internal-server-error",
                           "Internal server error (injected by the emulator)")
        if action == "429":
            raise self.rate_limited()

        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(400, "invalid-content-type-header",
                           "The Content-Type header must be application/json")
        data = decode_body(raw, self.headers.get("Content-Encoding"))
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise invalid("The request body is not valid JSON") from None
        fields = validate_create(body)
        stored, _ = state.create(user_id, fields)
        self.note(entry, webhookId=stored["id"])

        headers = [("Location", f"{state.base_url}/v2/webhooks/{stored['id']}")]
        if action == "cut":
            self.cut()
        if action == "slow":
            time.sleep(state.knob("slow_ms") / 1000)
        if action == "malformed":
            good = json.dumps({"data": webhook_view(stored)}).encode()
            return self.send_json(201, None, headers, raw=good[: len(good) // 2])
        if action == "huge":
            view = dict(webhook_view(stored), padding="")
            size = len(json.dumps({"data": view}).encode())
            view["padding"] = "x" * max(0, HUGE_REPLY_BYTES - size)
            return self.send_json(201, {"data": view}, headers)
        return self.send_json(201, {"data": webhook_view(stored)}, headers)

    def rate_limited(self):
        limit = self.state.knob("rate_limit") or self.state.rate_limit_header()
        retry_after = self.state.knob("retry_after")
        headers = [] if retry_after is None else [("Retry-After", format_number(retry_after))]
        return ApiError(429, "rate-limit-exceeded",
                        f"You have exceeded the rate limit of {limit} requests per second", headers)

    def list_webhooks(self, user_id, query):
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        offset = query_int(params, "offset", 0)
        limit = query_int(params, "limit", 1000) or 1000  # the API treats limit=0 as absent
        limit = min(limit, 1000)
        desc = params.get("desc", "").lower() in ("1", "true")
        with self.state.lock:
            mine = [self.state.webhooks[i] for i in self.state.order
                    if self.state.webhooks[i]["userId"] == user_id]
            if desc:
                mine.reverse()
            items = [webhook_short_view(w) for w in mine[offset:offset + limit]]
        return {"total": len(mine), "offset": offset, "limit": limit, "desc": desc,
                "count": len(items), "items": items}

    # -- control endpoints ------------------------------------------------------------------

    def control(self, method, url):
        """The emulator's own endpoints: no auth, not logged, no injected faults."""
        state = self.state
        try:
            raw = self.read_body()
        except (ApiError, ConnectionCut):
            return
        route = (method, url.path.rstrip("/"))
        try:
            if route == ("GET", "/_emulator/log"):
                with state.lock:
                    payload = [dict(e) for e in state.log]
            elif route == ("GET", "/_emulator/state"):
                payload = state.snapshot()
            elif route == ("GET", "/_emulator/counts"):
                payload = state.counts()
            elif route == ("GET", "/_emulator/config"):
                payload = state.knobs_copy()
            elif route == ("POST", "/_emulator/config"):
                changes = json.loads(raw.decode("utf-8") or "{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of knobs")
                payload = state.configure(changes)
            elif route == ("POST", "/_emulator/reset"):
                state.reset()
                payload = {"ok": True}
            else:
                payload = {"error": {"type": "page-not-found", "message": f"no {method} {url.path}"}}
                return self.send_control(404, payload)
        except ValueError as err:
            return self.send_control(400, {"error": {"type": "invalid-config", "message": str(err)}})
        self.send_control(200, payload)

    def send_control(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def error_body(err):
    return {"error": {"type": err.type, "message": err.message}}


def format_number(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def query_int(params, name, default):
    value = params.get(name, "")
    if value == "":
        return default
    try:
        number = int(float(value))
    except ValueError:
        raise invalid(f'Parameter "{name}" must be a number') from None
    if number < 0:
        raise invalid(f'Parameter "{name}" must not be negative')
    return number


def redact_query(query):
    """The query string as a dict, with the value of any token parameter replaced by ***."""
    out = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        out[name] = "***" if name.lower() == "token" else value
    return out


def redact_headers(headers):
    out = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme = value.strip().partition(" ")[0]
            value = f"{scheme} ***" if scheme.lower() == "bearer" else "***"
        out[name] = value
    return out


def loggable_body(raw, content_encoding):
    """The body as text for the log, decoded from its Content-Encoding when possible."""
    try:
        data = decode_body(raw, content_encoding)
    except ApiError:
        return None
    return data.decode("utf-8", errors="replace")


class EmulatorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    ssl_context = None   # set for https: each accepted connection is wrapped on its own thread

    def finish_request(self, request, client_address):
        if self.ssl_context is not None:
            try:
                request.settimeout(Handler.timeout)
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ValueError):
                # A client that refuses our certificate hangs up mid-handshake: normal in tests.
                try:
                    request.close()
                except OSError:
                    pass
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer is normal here (timeouts, cut tests): stay quiet.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# Command line

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Local emulator of the Apify webhooks API.",
                                     epilog="See the module docstring for the control endpoints.")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--token", action="append", dest="tokens", metavar="TOKEN",
                        help=f"an accepted API token, repeatable (default {DEFAULT_TOKEN})")
    parser.add_argument("--max-webhooks", type=int, default=DEFAULT_KNOBS["max_webhooks"])
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--rate-limit-header", type=int, default=None)
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--fail-5xx", type=float, default=0.0)
    parser.add_argument("--cut-after-create", type=float, default=0.0)
    parser.add_argument("--slow-ms", type=float, default=0)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument("--script", default="", help="comma-separated actions: " + ",".join(SCRIPT_ACTIONS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--draw-by-body", nargs="?", const=True, default=False,
                        type=lambda v: v.lower() in ("1", "true", "yes", "on"),
                        help="draw faults per request body (see the module docstring)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve https with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests (redacted) to stderr")
    args = parser.parse_args(argv)

    host = "127.0.0.1" if args.host == "localhost" else args.host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error(f"--host {args.host!r} is not a loopback address: the emulator only listens locally")
    args.host = host
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    knobs = {name: getattr(args, name) for name in DEFAULT_KNOBS if name != "script"}
    knobs["script"] = [a.strip() for a in args.script.split(",") if a.strip()]
    try:
        args.knobs = check_knobs(knobs)
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv=None):
    args = parse_args(argv)
    server_class = EmulatorServer
    if ":" in args.host:
        server_class = type("EmulatorServer6", (EmulatorServer,), {"address_family": socket.AF_INET6})
    server = server_class((args.host, args.port), Handler)
    host = f"[{args.host}]" if ":" in args.host else args.host
    scheme = "http"
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.ssl_context = context
        scheme = "https"
    base_url = f"{scheme}://{host}:{server.server_address[1]}"
    server.state = EmulatorState(args.tokens or [DEFAULT_TOKEN], args.knobs, base_url)
    server.verbose = args.verbose

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
