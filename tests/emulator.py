#!/usr/bin/env python3
"""A local emulator of the Apify webhooks API: webhooks, their dispatches, and delivery.

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
limit that ignores ad-hoc webhooks, and X-RateLimit-Limit on every API response. Endpoints:

    POST   /v2/webhooks                  create: 201 + Location + {"data": Webhook}
    GET    /v2/webhooks                  the user's webhooks (WebhookShort items)
    GET    /v2/actors/{actorId}/webhooks the user's webhooks whose condition.actorId is actorId
                                         (WebhookShort items; /v2/acts/... is the same list;
                                         no actor needs to exist: an unknown one lists nothing)
    GET    /v2/actor-tasks/{actorTaskId}/webhooks   the same on condition.actorTaskId (full
                                         Webhook items)
    GET    /v2/webhooks/{id}             {"data": Webhook}; 404 record-not-found
    PUT    /v2/webhooks/{id}             partial update (WebhookUpdate): 200 {"data": Webhook}
    DELETE /v2/webhooks/{id}             204, no body; 404 when absent
    POST   /v2/webhooks/{id}/test        a TEST dispatch, delivered before the 201 {"data": dispatch}
    GET    /v2/webhooks/{id}/dispatches  that webhook's dispatches (404 for an unknown webhook)
    GET    /v2/webhook-dispatches        all the user's dispatches (of deleted webhooks too)
    GET    /v2/webhook-dispatches/{id}   {"data": WebhookDispatch}; 404 record-not-found

A webhook or dispatch of another user is 404, like an unknown one. Any other path is 404
page-not-found, another method on a known path 405 method-not-allowed (both before the token
is looked at). Lists take offset, limit (0 or absent: 1,000; at most 1,000) and desc (1 or
true: newest first), answer {"data": {total, offset, limit, desc, count, items}} in creation
order, and cost the size of the page, not of the list (per-user ordered indexes).

PUT: only the fields present change; the allowed fields are WebhookCreate's without
idempotencyKey (any other field is 400 'Field "X" is not allowed'). null clears
payloadTemplate, headersTemplate and description, makes a boolean false, and is refused for
requestUrl, eventTypes and condition (400, create's messages). Each field follows the create
rules, and so must the merged webhook (a headersTemplate with the merged
shouldInterpolateStrings); turning an ad-hoc webhook into a normal one at the webhook limit is
403 too-many-webhooks. modifiedAt is set on every successful PUT. Checks run in this order:
Content-Type, Content-Encoding, JSON, field names, the webhook (404), the merged webhook.

A deleted webhook's idempotencyKey (the API does not say what happens to it) follows the knob
deleted_keys (--deleted-keys), read when the POST with that key arrives:
    free    (default) the key is forgotten: the POST creates a new webhook
    keep    the POST answers 201 with the deleted webhook as it was (same id; GET of that id
            is 404 and it is in no list)
    refuse  the POST answers 409 idempotency-key-conflict "The idempotency key belongs to a
            deleted webhook"

Dispatches (WebhookDispatch: id, userId, webhookId, createdAt, status ACTIVE|SUCCEEDED|FAILED,
eventType, eventData, webhook {actionType, condition, requestUrl, isAdHoc}, calls [{startedAt,
finishedAt, errorMessage, responseStatus, responseBody}]) come from POST /v2/webhooks/{id}/test
and from simulated platform events (POST /_emulator/events below). Each is delivered at once,
on the thread that asked, as ONE HTTP POST: never retried (doNotRetry changes nothing), a 2xx
answer is SUCCEEDED, anything else FAILED. Only a requestUrl whose host is a loopback address
(127.0.0.0/8, ::1, localhost) is contacted; any other host is never contacted nor even looked up:
the dispatch is FAILED with one call whose errorMessage is "not delivered: the emulator delivers
only to loopback addresses" and responseStatus null. A call records startedAt, finishedAt,
responseStatus, the first 1,000 characters of the answer (at most 4,000 bytes are read), or
the connection error as errorMessage; each socket operation times out after
delivery_timeout_ms (--delivery-timeout-ms, default 5000). https URLs are verified unless
ignoreSslErrors. The webhook's lastDispatch becomes {status, finishedAt} and its
stats.totalDispatches counts every dispatch.

What is sent (byte for byte what the extension's apify_preview_dispatch() shows):
- the body: payloadTemplate rendered, or when it is null or "" this default, on one line:
    {"userId": {{userId}}, "createdAt": {{createdAt}}, "eventType": {{eventType}}, "eventData": {{eventData}}, "resource": {{resource}}}
- the variables: userId (the webhook's), createdAt (the dispatch's), eventType, eventData,
  resource, globals ({}). A TEST dispatch has eventData {actorId, actorTaskId, actorRunId} from
  the condition (only the keys it has; actorRunId defaults to "TestRunIdAbcdefgh") and this
  fixed dummy run as resource: {"id": "TestRunIdAbcdefgh", "actId": condition.actorId or
  "TestActorIdAbcdef", "userId": the webhook's userId, "status": "SUCCEEDED", "startedAt":
  "2026-01-01T12:00:00.000Z", "finishedAt": "2026-01-01T12:01:00.000Z", "defaultDatasetId":
  "TestDatasetIdAbcd", "defaultKeyValueStoreId": "TestKvStoreIdAbcd", "defaultRequestQueueId":
  "TestRqIdAbcdefghi"}.
- rendering is textual: the template is copied byte for byte, except that outside JSON strings
  each {{name}} or {{name.path}} (blanks inside the braces trimmed) becomes the compact JSON of
  its value (json.dumps(v, separators=(",", ":"), ensure_ascii=False)), and, with
  shouldInterpolateStrings, each {{name}} / {{name.path}} inside a JSON string (name of
  [A-Za-z0-9.]+) becomes a string value's text or another value's compact JSON, escaped for
  the inside of a JSON string. Paths walk object members only. A missing variable or member
  sends nothing: the dispatch is FAILED with one call whose errorMessage is, for example,
  'payloadTemplate: {{resource.nope}} has no value: resource has no member "nope"' or
  'headersTemplate: {{x}} has no value: no variable "x"'. A headers template whose rendered
  value is not a string fails the same way: 'headersTemplate: the value of header "X" is not
  a string'.
- the headers: the rendered headersTemplate's members in their order (a JSON object of strings),
  less those named (case-insensitively) like the four platform headers, then Content-Type:
  application/json, X-Apify-Webhook: <webhook id>, X-Apify-Webhook-Dispatch-Id: <dispatch id>,
  X-Apify-Request-Origin: APIFY. The transport adds Host (unless the template has one) and
  Content-Length; values go out as UTF-8.

Faults it can inject into every writing request (POST /v2/webhooks, PUT and DELETE
/v2/webhooks/{id}, POST /v2/webhooks/{id}/test), like a real network (flags, or knobs at run
time); reads (GET) only meet the latency and the rate limit:

    --latency-ms N        sleep N ms before answering every API request
    --rate-limit N        N API requests per second per user, of every method on every known
                          path (sliding 1 s window); more get 429
    --rate-limit-header N the X-RateLimit-Limit value (default: the rate limit, else 60)
    --retry-after S       send Retry-After: S with every 429
    --fail-5xx F          fraction F of writing requests answered 500, nothing done
    --cut-after-create F  fraction F done (created, updated, deleted, dispatched), then the
                          connection is closed without an answer
    --slow-ms N --slow F  fraction F done and answered N ms late
    --malformed F         fraction F done and answered with a body that is not JSON (the
                          success status; a DELETE's 204 becomes 200 with half of
                          {"data": null})
    --script A,B,...      actions for the next writing requests, one each, before any random
                          fault:
                          ok, 500, 503, 429, cut, slow, malformed, huge (done, then
                          answered with a valid 8 MiB body: tests a client's answer cap; a
                          DELETE then answers 200),
                          draw (this one takes the random draw: place a burst mid-run)
    --seed N              seed of the random fault draws (runs are repeatable)
    --draw-by-body        draw each writing request's random fault from the seed, the SHA-256
                          of its body (for PUT, DELETE and test also of its method and path)
                          and how many times that came before, instead of from one shared
                          sequence: which request meets which fault, and on which attempt, then
                          does not depend on the order concurrent requests arrive in
    --max-webhooks N      webhooks a user may have, ad-hoc ones not counted (default 100)
    --deleted-keys MODE   free, keep or refuse (see above)
    --delivery-timeout-ms N  the socket timeout of a delivery (default 5000)

Every API request goes through, in this order: body size (413), latency, path and method (404,
405), token (401), rate limit (429, not counted). A POST /v2/webhooks then takes the next
action (scripted, else one random draw; 500, 503 and 429 are answered here), Content-Type
(400), Content-Encoding (415), JSON and fields (400), the idempotency key (a known key answers
with its webhook; a deleted webhook's key as deleted_keys says), the webhook limit (403),
creation, and last the action decides how the 201 goes out (ok, cut, slow, malformed, huge).
PUT, DELETE and test take their action at the same point; it only shapes the answer of a
request that was carried out (an invalid or unknown one gets its 400 or 404 as usual).

Control endpoints (no auth, never in the request log):

    GET  /_emulator/log     every API request in arrival order, each {"method", "path",
                            "query" (token values "***"), "headers" (as received, Authorization
                            "Bearer ***"), "auth": "valid"|"invalid"|"none", "body" (decoded
                            text), "status" (a number, "cut", "client-gone" when the client
                            hung up before the whole answer was written, or null while in
                            flight), "time"
                            (Unix seconds), for writing requests "action" and "webhookId",
                            for a test also "dispatchId"}
    GET  /_emulator/state   all webhooks of all users, with idempotencyKey and userId, the
                            deleted ones still holding a key ("deletedWebhooks"), and counts
    GET  /_emulator/counts  only the counts (cheap enough to poll while a client runs)
    GET  /_emulator/config  the current knobs
    POST /_emulator/config  {"rate_limit": 10, "script": ["503", "cut"], ...} changes knobs
    POST /_emulator/reset   forgets webhooks, dispatches and the log, and restores the
                            command-line knobs
    GET  /_emulator/dispatches  every dispatch in creation order, each with, besides the API's
                            fields, "variables" (the template variables used), "payload" (the
                            rendered body text: exactly what was sent), "headers" (the header
                            list, [[name, value], ...] in the order sent; Host and
                            Content-Length aside) and "sent" (false when nothing was sent:
                            not loopback, or a template without a value; payload and headers
                            are null when rendering failed)
    POST /_emulator/seed    {"token": "test-token", "count": N, "webhook": {WebhookCreate
                            fields}, "suffix": false, "dispatches": M} stores N webhooks of that
                            token's user at once (no HTTP per item, no webhook limit; missing
                            required fields default to https://example.com/hook,
                            ACTOR.RUN.SUCCEEDED, actorId SeededActorIdAbcd); with "suffix": true
                            webhook i (from 0) gets i appended to its requestUrl, to each
                            condition value and to its idempotencyKey. Then M dispatches of the
                            first one, SUCCEEDED, not delivered (one call, responseStatus 200,
                            responseBody null). Answers {"webhookIds": [...], "dispatchIds": [...]}
    POST /_emulator/events  {"token": "test-token", "eventType": "ACTOR.RUN.SUCCEEDED",
                            "eventData": {"actorId": ..., "actorRunId": ... [, "actorTaskId"]},
                            "resource": {run object} (default null), "createdAt": optional}:
                            a platform event. Every webhook of that user whose eventTypes holds
                            eventType and whose condition's every key equals eventData's is
                            dispatched and delivered, in creation order, before the answer
                            {"dispatches": [WebhookDispatch, ...]}. An ad-hoc webhook fires
                            at most once (then it never matches again)
"""

import argparse
import bisect
import copy
import ctypes
import ctypes.util
import collections
import datetime
import hashlib
import http.client
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
    "deleted_keys": "free", "delivery_timeout_ms": 5000,
}
DELETED_KEY_MODES = ("free", "keep", "refuse")
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


UPDATE_FIELDS = CREATE_FIELDS - {"idempotencyKey"}


def check_update_fields(body):
    """A PUT body is an object of WebhookCreate fields without idempotencyKey. Raises 400."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    for name in body:
        if name not in UPDATE_FIELDS:
            raise invalid(f'Field "{name}" is not allowed')


def validate_update(body, stored):
    """Check a PUT body (a partial WebhookUpdate) against the stored webhook; return the whole
    set of fields to store. Only the fields present change; null clears a string field, makes a
    boolean false, and is refused for requestUrl, eventTypes and condition (create's messages).
    The merged webhook must pass the create rules (a template with the merged
    shouldInterpolateStrings, say). Raises ApiError(400)."""
    check_update_fields(body)
    merged = {name: stored[name] for name in UPDATE_FIELDS}
    merged.update(body)
    fields = validate_create(merged)
    del fields["idempotencyKey"]
    return fields


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
# Dispatches: rendering the templates (byte for byte what apify_preview_dispatch() shows) and
# delivering to a loopback receiver

DEFAULT_PAYLOAD_TEMPLATE = ('{"userId": {{userId}}, "createdAt": {{createdAt}}, "eventType": '
                            '{{eventType}}, "eventData": {{eventData}}, "resource": {{resource}}}')
PLATFORM_HEADER_NAMES = ("Content-Type", "X-Apify-Webhook", "X-Apify-Webhook-Dispatch-Id",
                         "X-Apify-Request-Origin")
NOT_LOOPBACK = "not delivered: the emulator delivers only to loopback addresses"
RESPONSE_BODY_CHARS = 1000
# The fixed dummy run of a TEST dispatch (POST /v2/webhooks/{id}/test); ids are 17 characters.
TEST_RUN_ID = "TestRunIdAbcdefgh"
TEST_ACTOR_ID = "TestActorIdAbcdef"
TEST_RUN = {"id": TEST_RUN_ID, "actId": None, "userId": None, "status": "SUCCEEDED",
            "startedAt": "2026-01-01T12:00:00.000Z", "finishedAt": "2026-01-01T12:01:00.000Z",
            "defaultDatasetId": "TestDatasetIdAbcd", "defaultKeyValueStoreId": "TestKvStoreIdAbcd",
            "defaultRequestQueueId": "TestRqIdAbcdefghi"}
_RENDER_TOKEN = re.compile(r'"|\{\{')


class _Members(list):
    """A JSON object as its (name, value) pairs, in order, duplicates kept."""


class RenderError(Exception):
    """A template names a variable or member that has no value: the dispatch is not sent."""


def compact_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def template_value(field, name, variables):
    """The value of {{name}} (a dotted path that walks object members only)."""
    segments = name.split(".")
    if segments[0] not in variables:
        raise RenderError(f'{field}: {{{{{name}}}}} has no value: no variable "{segments[0]}"')
    value = variables[segments[0]]
    for i, segment in enumerate(segments[1:], 1):
        if not isinstance(value, dict) or segment not in value:
            raise RenderError(f'{field}: {{{{{name}}}}} has no value: '
                              f'{".".join(segments[:i])} has no member "{segment}"')
        value = value[segment]
    return value


def render_template(text, field, variables, interpolate_strings):
    """Render a checked Apify template textually: the text is copied byte for byte except the
    placeholders outside strings (replaced by compact JSON) and, with interpolate_strings, the
    {{name}}s inside strings (replaced by escaped text). Raises RenderError."""
    def in_string(match):
        value = template_value(field, match.group(1), variables)
        text = value if isinstance(value, str) else compact_json(value)
        return json.dumps(text, ensure_ascii=False)[1:-1]

    out, i = [], 0
    while True:
        match = _RENDER_TOKEN.search(text, i)
        if match is None:
            out.append(text[i:])
            break
        start = match.start()
        out.append(text[i:start])
        if match.group() == '"':
            rest = _STRING_REST.match(text, start + 1)
            end = rest.end() if rest else len(text)
            piece = text[start:end]
            if interpolate_strings:
                piece = _IN_STRING_VARIABLE.sub(in_string, piece)
            out.append(piece)
            i = end
        else:
            close = text.find("}}", start + 2)
            if close < 0:   # a checked template has none; copy such text as it is
                out.append(text[start:])
                break
            out.append(compact_json(template_value(field, text[start + 2:close].strip(), variables)))
            i = close + 2
    return "".join(out)


def render_dispatch(webhook, dispatch_id, variables):
    """(payload text, [[name, value], ...]) the platform sends for a dispatch. Raises RenderError."""
    interpolate = webhook["shouldInterpolateStrings"] is True
    payload = render_template(webhook["payloadTemplate"] or DEFAULT_PAYLOAD_TEMPLATE,
                              "payloadTemplate", variables, interpolate)
    pairs = []
    if webhook["headersTemplate"]:
        text = render_template(webhook["headersTemplate"], "headersTemplate", variables, interpolate)
        parsed = json.loads(text, object_pairs_hook=_Members)
        if not isinstance(parsed, _Members):
            raise RenderError("headersTemplate: it must yield a JSON object")
        for name, value in parsed:
            if not isinstance(value, str):
                raise RenderError(f'headersTemplate: the value of header "{name}" is not a string')
            pairs.append([name, value])
    platform = [["Content-Type", "application/json"], ["X-Apify-Webhook", webhook["id"]],
                ["X-Apify-Webhook-Dispatch-Id", dispatch_id], ["X-Apify-Request-Origin", "APIFY"]]
    overridden = {name.lower() for name in PLATFORM_HEADER_NAMES}
    return payload, [p for p in pairs if p[0].lower() not in overridden] + platform


def dummy_test_event(webhook):
    """eventData and resource of a TEST dispatch: from the condition, and the fixed dummy run."""
    condition = webhook["condition"]
    event_data = {k: condition[k] for k in ("actorId", "actorTaskId") if k in condition}
    event_data["actorRunId"] = condition.get("actorRunId", TEST_RUN_ID)
    resource = dict(TEST_RUN, actId=condition.get("actorId", TEST_ACTOR_ID),
                    userId=webhook["userId"])
    return event_data, resource


def is_loopback_host(host):
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def failed_call(message):
    now = iso_now()
    return {"startedAt": now, "finishedAt": now, "errorMessage": message,
            "responseStatus": None, "responseBody": None}


def deliver(url, payload, headers, ignore_ssl_errors, timeout):
    """One HTTP POST of payload with headers to url, never retried; returns the call record.
    Only loopback hosts are contacted (no DNS lookup for any other name). Each socket operation
    times out after timeout seconds; at most 4,000 bytes of the answer are read."""
    parts = urllib.parse.urlsplit(url)
    if not is_loopback_host(parts.hostname):
        return failed_call(NOT_LOOPBACK)
    call = {"startedAt": iso_now(), "finishedAt": None, "errorMessage": None,
            "responseStatus": None, "responseBody": None}
    conn = None
    try:
        if parts.scheme.lower() == "https":
            context = (ssl._create_unverified_context() if ignore_ssl_errors
                       else ssl.create_default_context())
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                               context=context)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        if not any(name.lower() == "host" for name, _ in headers):
            conn.putheader("Host", parts.netloc.rpartition("@")[2])
        for name, value in headers:
            conn.putheader(name, value.encode("utf-8"))
        body = payload.encode("utf-8")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        call["responseStatus"] = response.status
        call["responseBody"] = response.read(4 * RESPONSE_BODY_CHARS).decode(
            "utf-8", errors="replace")[:RESPONSE_BODY_CHARS]
    except (OSError, http.client.HTTPException, ValueError) as err:
        call["errorMessage"] = str(err) or type(err).__name__
    finally:
        if conn is not None:
            conn.close()
    call["finishedAt"] = iso_now()
    return call


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
    if name == "deleted_keys":
        if value not in DELETED_KEY_MODES:
            raise ValueError(f"deleted_keys must be one of: {', '.join(DELETED_KEY_MODES)}")
        return value
    if name == "delivery_timeout_ms":
        if not number or value <= 0:
            raise ValueError("delivery_timeout_ms must be a number > 0")
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
            self.webhooks = {}        # id -> stored webhook (with idempotencyKey, userId), in
                                      # creation order
            self.deleted = {}         # id -> a deleted webhook that had an idempotency key
            self.by_key = {}          # (userId, idempotencyKey) -> id (live or deleted)
            self.dispatches = {}      # id -> dispatch record (with variables, payload, headers)
            self.next_seq = 0         # creation sequence of webhooks and dispatches
            self.seq = {}             # webhook or dispatch id -> its sequence number
            # ("user", userId), ("actor", userId, actorId), ("task", userId, actorTaskId),
            # ("dispatches", userId), ("webhook-dispatches", webhookId) -> OrderedIndex
            self.indexes = collections.defaultdict(OrderedIndex)
            self.owned = collections.Counter()   # userId -> webhooks that are not ad hoc
            self.ad_hoc = 0
            self.fired = set()        # ad-hoc webhooks an event has dispatched
            self.windows = collections.defaultdict(collections.deque)  # userId -> request times
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
        """Store a webhook, or answer with the one its idempotency key names (a deleted one's
        key is handled as the deleted_keys knob says when this POST arrives). Returns (stored
        webhook, created?). Raises ApiError 403 at the webhook limit, 409 for a refused key."""
        with self.lock:
            key = fields["idempotencyKey"]
            known = self.by_key.get((user_id, key)) if key is not None else None
            if known in self.webhooks:
                return self.webhooks[known], False
            if known is not None:   # the key of a deleted webhook
                mode = self.knobs["deleted_keys"]
                if mode == "keep":
                    return self.deleted[known], False
                if mode == "refuse":
                    raise ApiError(409, "idempotency-key-conflict",
                                   "The idempotency key belongs to a deleted webhook")
                del self.by_key[(user_id, key)]
                self.deleted.pop(known, None)
            if not fields["isAdHoc"]:
                self._check_limit(user_id)
            stored = self._store(user_id, fields, iso_now())
            return stored, True

    def _check_limit(self, user_id):
        limit = self.knobs["max_webhooks"]
        if self.owned[user_id] >= limit:
            raise ApiError(403, "too-many-webhooks",
                           f"You have reached the maximum number of webhooks ({limit})")

    def _store(self, user_id, fields, now):
        """Add a new webhook with a fresh id to every index (lock held). Returns it."""
        webhook_id = new_webhook_id()
        while webhook_id in self.webhooks or webhook_id in self.deleted:
            webhook_id = new_webhook_id()
        stored = {"id": webhook_id, "createdAt": now, "modifiedAt": now, "userId": user_id,
                  **fields, "lastDispatch": None, "stats": {"totalDispatches": 0}}
        self.webhooks[webhook_id] = stored
        self.next_seq += 1
        self.seq[webhook_id] = self.next_seq
        self._index(stored, True)
        if fields["idempotencyKey"] is not None:
            self.by_key[(user_id, fields["idempotencyKey"])] = webhook_id
        return stored

    def _index(self, stored, add):
        """Add a webhook to (or remove it from) the user's list, its actor's and its task's
        lists, and the counts (lock held)."""
        user_id, condition, seq = stored["userId"], stored["condition"], self.seq[stored["id"]]
        keys = [("user", user_id)]
        if "actorId" in condition:
            keys.append(("actor", user_id, condition["actorId"]))
        if "actorTaskId" in condition:
            keys.append(("task", user_id, condition["actorTaskId"]))
        for key in keys:
            if add:
                self.indexes[key].add(seq, stored["id"])
            else:
                self.indexes[key].remove(seq)
        step = 1 if add else -1
        if stored["isAdHoc"]:
            self.ad_hoc += step
        else:
            self.owned[user_id] += step

    def get(self, user_id, webhook_id):
        """A copy of the user's webhook, or raise 404."""
        with self.lock:
            return webhook_view(self._mine(user_id, webhook_id))

    def _mine(self, user_id, webhook_id):
        stored = self.webhooks.get(webhook_id)
        if stored is None or stored["userId"] != user_id:
            raise ApiError(404, "record-not-found", "Webhook was not found")
        return stored

    def update(self, user_id, webhook_id, body):
        """PUT: apply a partial update (validate_update). Returns the updated webhook's view.
        Raises 404, 400, and 403 when it would turn an ad-hoc webhook into one over the limit."""
        with self.lock:
            stored = self._mine(user_id, webhook_id)
            fields = validate_update(body, stored)
            if stored["isAdHoc"] and not fields["isAdHoc"]:
                self._check_limit(user_id)
            self._index(stored, False)
            stored.update(fields)
            stored["modifiedAt"] = iso_now()
            self._index(stored, True)
            return webhook_view(stored)

    def delete(self, user_id, webhook_id):
        """Delete a user's webhook; False if absent. A deleted webhook with an idempotency key
        is remembered (deletedWebhooks in the state), for the deleted_keys modes."""
        with self.lock:
            stored = self.webhooks.get(webhook_id)
            if stored is None or stored["userId"] != user_id:
                return False
            self._index(stored, False)
            del self.webhooks[webhook_id]
            if stored["idempotencyKey"] is not None:
                self.deleted[webhook_id] = stored
            return True

    def page(self, key, view, offset, limit, desc):
        """One page of an index as the API's list object; view turns an id into an item."""
        with self.lock:
            index = self.indexes.get(key) or OrderedIndex()
            items = [view(i) for i in index.page(offset, limit, desc)]
            return {"total": len(index), "offset": offset, "limit": limit, "desc": desc,
                    "count": len(items), "items": items}

    def seed(self, user_id, count, fields, suffix, dispatches):
        """POST /_emulator/seed: count webhooks (no limit applies) and dispatches of the first.
        Returns {"webhookIds", "dispatchIds"}."""
        ids, dispatch_ids, batch = [], [], []
        for i in range(count):
            each = copy.deepcopy(fields)
            if suffix:
                each["requestUrl"] += str(i)
                each["condition"] = {k: v + str(i) for k, v in each["condition"].items()}
                if each["idempotencyKey"] is not None:
                    each["idempotencyKey"] += str(i)
            batch.append(each)
        with self.lock:
            for each in batch:   # all or nothing: check every key before storing any webhook
                key = each["idempotencyKey"]
                if key is not None and (user_id, key) in self.by_key:
                    raise ValueError(f"idempotency key {key!r} is taken")
            now = iso_now()
            for each in batch:
                ids.append(self._store(user_id, each, now)["id"])
            if ids and dispatches:
                webhook = self.webhooks[ids[0]]
                event_data, _ = dummy_test_event(webhook)
                for _ in range(dispatches):
                    record = self._new_dispatch(webhook, webhook["eventTypes"][0], event_data, now)
                    record["status"] = "SUCCEEDED"
                    record["calls"] = [{"startedAt": now, "finishedAt": now, "errorMessage": None,
                                        "responseStatus": 200, "responseBody": None}]
                    webhook["lastDispatch"] = {"status": "SUCCEEDED", "finishedAt": now}
                    dispatch_ids.append(record["id"])
        return {"webhookIds": ids, "dispatchIds": dispatch_ids}

    # -- dispatches -------------------------------------------------------------------------

    def _new_dispatch(self, webhook, event_type, event_data, created_at):
        """Store an ACTIVE dispatch of webhook (lock held); counts it in the webhook's stats."""
        dispatch_id = new_webhook_id()
        while dispatch_id in self.dispatches:
            dispatch_id = new_webhook_id()
        record = {"id": dispatch_id, "userId": webhook["userId"], "webhookId": webhook["id"],
                  "createdAt": created_at, "status": "ACTIVE", "eventType": event_type,
                  "eventData": copy.deepcopy(event_data),
                  "webhook": {"actionType": "HTTP_REQUEST",
                              "condition": dict(webhook["condition"]),
                              "requestUrl": webhook["requestUrl"], "isAdHoc": webhook["isAdHoc"]},
                  "calls": [], "variables": None, "payload": None, "headers": None,
                  "sent": False}
        self.dispatches[dispatch_id] = record
        self.next_seq += 1
        self.seq[dispatch_id] = self.next_seq
        self.indexes[("dispatches", webhook["userId"])].add(self.next_seq, dispatch_id)
        self.indexes[("webhook-dispatches", webhook["id"])].add(self.next_seq, dispatch_id)
        webhook["stats"]["totalDispatches"] += 1
        return record

    def matching_webhooks(self, user_id, event_type, event_data):
        """Copies of the user's webhooks an event fires, in creation order: eventTypes holds
        event_type and every key of the condition equals eventData's. Ad-hoc ones are marked
        fired here, so that they never match again."""
        with self.lock:
            index = self.indexes.get(("user", user_id)) or OrderedIndex()
            out = []
            for webhook_id in index.ids:
                webhook = self.webhooks[webhook_id]
                if event_type not in webhook["eventTypes"] or webhook_id in self.fired:
                    continue
                if all(event_data.get(k) == v for k, v in webhook["condition"].items()):
                    if webhook["isAdHoc"]:
                        self.fired.add(webhook_id)
                    out.append(copy.deepcopy(webhook))
            return out

    def dispatch(self, webhook, event_type, event_data, resource, created_at):
        """Create a dispatch of webhook (a copy), render it, deliver it synchronously (the lock
        is not held meanwhile), record the outcome. Returns the dispatch's API view."""
        with self.lock:
            live = self.webhooks.get(webhook["id"], webhook)
            record = self._new_dispatch(live, event_type, event_data, created_at)
            timeout = self.knobs["delivery_timeout_ms"] / 1000
        variables = {"userId": webhook["userId"], "createdAt": created_at,
                     "eventType": event_type, "eventData": copy.deepcopy(event_data),
                     "resource": copy.deepcopy(resource), "globals": {}}
        payload = headers = None
        try:
            payload, headers = render_dispatch(webhook, record["id"], variables)
        except RenderError as err:
            call = failed_call(str(err))
        else:
            call = deliver(webhook["requestUrl"], payload, headers, webhook["ignoreSslErrors"],
                           timeout)
        status = "SUCCEEDED" if call["responseStatus"] and 200 <= call["responseStatus"] < 300 \
            else "FAILED"
        with self.lock:
            record.update(status=status, calls=[call], variables=variables, payload=payload,
                          headers=headers, sent=call["errorMessage"] not in (NOT_LOOPBACK,)
                          and payload is not None)
            live = self.webhooks.get(webhook["id"])
            if live is not None:
                live["lastDispatch"] = {"status": status, "finishedAt": call["finishedAt"]}
            return dispatch_view(record)

    def get_dispatch(self, user_id, dispatch_id):
        with self.lock:
            record = self.dispatches.get(dispatch_id)
            if record is None or record["userId"] != user_id:
                raise ApiError(404, "record-not-found", "Webhook dispatch was not found")
            return dispatch_view(record)

    def dispatch_records(self):
        """Every dispatch in creation order, with variables, payload and headers (a copy)."""
        with self.lock:
            return [copy.deepcopy(r) for r in self.dispatches.values()]

    # -- views of the whole state ---------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            webhooks = [dict(w) for w in self.webhooks.values()]
            deleted = [dict(w) for w in self.deleted.values()]
            return {"webhooks": webhooks, "deletedWebhooks": deleted, "counts": self._counts()}

    def counts(self):
        with self.lock:
            return self._counts()

    def _counts(self):
        by_user = {key[1]: len(index) for key, index in self.indexes.items()
                   if key[0] == "user" and len(index)}
        return {
            "webhooks": len(self.webhooks),
            "adHocWebhooks": self.ad_hoc,
            "byUser": by_user,
            "dispatches": len(self.dispatches),
            "requests": len(self.log),
            "posts": sum(1 for e in self.log if e["method"] == "POST"),
            "byStatus": dict(collections.Counter(str(e["status"]) for e in self.log)),
        }


class OrderedIndex:
    """Ids kept in creation order by their sequence numbers: insert and remove cost a binary
    search (and a memmove), a page costs its own length, the total is len()."""

    __slots__ = ("seqs", "ids")

    def __init__(self):
        self.seqs, self.ids = [], []

    def __len__(self):
        return len(self.ids)

    def add(self, seq, item_id):
        i = bisect.bisect_left(self.seqs, seq)
        self.seqs.insert(i, seq)
        self.ids.insert(i, item_id)

    def remove(self, seq):
        i = bisect.bisect_left(self.seqs, seq)
        if i < len(self.seqs) and self.seqs[i] == seq:
            del self.seqs[i]
            del self.ids[i]

    def page(self, offset, limit, desc):
        if not desc:
            return self.ids[offset:offset + limit]
        end = len(self.ids) - offset
        return self.ids[max(0, end - limit):end][::-1] if end > 0 else []


WEBHOOK_FIELDS = ("id", "createdAt", "modifiedAt", "userId", "isAdHoc", "shouldInterpolateStrings",
                  "eventTypes", "condition", "ignoreSslErrors", "doNotRetry", "requestUrl",
                  "payloadTemplate", "headersTemplate", "description", "lastDispatch", "stats")
SHORT_FIELDS = ("id", "createdAt", "modifiedAt", "userId", "isAdHoc", "shouldInterpolateStrings",
                "eventTypes", "condition", "ignoreSslErrors", "doNotRetry", "requestUrl",
                "lastDispatch", "stats")


def webhook_view(stored):
    """The Webhook object of the API (Webhook.yaml): no idempotencyKey. Called with the lock
    held; stats is the one member changed in place, so it is copied."""
    return {name: stored[name] for name in WEBHOOK_FIELDS} | {"stats": dict(stored["stats"])}


def webhook_short_view(stored):
    """A list item (WebhookShort.yaml)."""
    return {**{name: stored[name] for name in SHORT_FIELDS}, "stats": dict(stored["stats"]),
            "isApifyIntegration": False, "isEnabled": True, "actionType": "HTTP_REQUEST"}


DISPATCH_FIELDS = ("id", "userId", "webhookId", "createdAt", "status", "eventType", "eventData",
                   "webhook", "calls")


def dispatch_view(record):
    """The WebhookDispatch object of the API (a copy, without the emulator's own fields)."""
    return copy.deepcopy({name: record[name] for name in DISPATCH_FIELDS})


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

        handler, args = self.route(method, url.path)
        user_id = self.authenticate(url, entry)
        if not self.state.admit(user_id):
            raise self.rate_limited()
        return handler(user_id, raw, entry, url, *args)

    def route(self, method, path):
        """(bound handler, path arguments) for a request, or raise 404 / 405."""
        for pattern, methods in ROUTES:
            match = pattern.match(path.rstrip("/"))
            if match:
                if method not in methods:
                    raise ApiError(405, "method-not-allowed", f"Method {method} is not allowed here")
                args = [urllib.parse.unquote(g) for g in match.groups()]
                return getattr(self, methods[method]), args
        raise ApiError(404, "page-not-found", f"The requested path {path} was not found")

    def take_action(self, method, url, raw, entry):
        """The fault for a writing request: 500, 503 and 429 are raised here, before anything
        is done; the others (ok, cut, slow, malformed, huge) are returned for answer()."""
        # POST /v2/webhooks draws from its body alone (as it always has); the other writing
        # requests also from their method and path, so that their bodies (often empty) differ.
        key = raw if url.path.rstrip("/") == "/v2/webhooks" else \
            f"{method} {url.path}\n".encode() + raw
        action = self.state.next_action(key)
        self.note(entry, action=action)
        if action in ("500", "503"):
            raise ApiError(int(action), "internal-server-error",
                           "Internal server error (injected by the emulator)")
        if action == "429":
            raise self.rate_limited()
        return action

    def answer(self, action, status, payload, headers=()):
        """Send the answer of a writing request that was carried out, as its action says: ok,
        cut (no answer at all), slow, malformed (half of the body; a 204 becomes a 200 with
        half of {"data": null}), huge (a valid 8 MiB body; a 204 becomes a 200)."""
        if action == "cut":
            self.cut()
        if action == "slow":
            time.sleep(self.state.knob("slow_ms") / 1000)
        if action in ("malformed", "huge") and status == 204:
            status, payload = 200, {"data": None}
        if action == "malformed":
            good = json.dumps(payload).encode()
            return self.send_json(status, None, headers, raw=good[: len(good) // 2])
        if action == "huge":
            data = payload["data"]
            padded = dict(data, padding="") if isinstance(data, dict) else {"data": data, "padding": ""}
            whole = {"data": padded} if isinstance(data, dict) else padded
            size = len(json.dumps(whole).encode())
            padded["padding"] = "x" * max(0, HUGE_REPLY_BYTES - size)
            return self.send_json(status, whole, headers)
        return self.send_json(status, payload, headers)

    def json_body(self, raw):
        """The decoded JSON body of a POST or PUT: Content-Type, Content-Encoding, JSON."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(400, "invalid-content-type-header",
                           "The Content-Type header must be application/json")
        data = decode_body(raw, self.headers.get("Content-Encoding"))
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise invalid("The request body is not valid JSON") from None

    def create_webhook(self, user_id, raw, entry, url):
        """POST /v2/webhooks: injected faults, checks, create, then the answer."""
        action = self.take_action("POST", url, raw, entry)
        fields = validate_create(self.json_body(raw))
        stored, _ = self.state.create(user_id, fields)
        self.note(entry, webhookId=stored["id"])
        headers = [("Location", f"{self.state.base_url}/v2/webhooks/{stored['id']}")]
        with self.state.lock:
            view = webhook_view(stored)
        return self.answer(action, 201, {"data": view}, headers)

    def get_webhook(self, user_id, raw, entry, url, webhook_id):
        return self.send_json(200, {"data": self.state.get(user_id, webhook_id)})

    def update_webhook(self, user_id, raw, entry, url, webhook_id):
        """PUT /v2/webhooks/{id}: faults, Content-Type, JSON, field names, 404, merged checks."""
        action = self.take_action("PUT", url, raw, entry)
        body = self.json_body(raw)
        check_update_fields(body)
        self.note(entry, webhookId=webhook_id)
        view = self.state.update(user_id, webhook_id, body)
        return self.answer(action, 200, {"data": view})

    def delete_webhook(self, user_id, raw, entry, url, webhook_id):
        action = self.take_action("DELETE", url, raw, entry)
        self.note(entry, webhookId=webhook_id)
        if not self.state.delete(user_id, webhook_id):
            raise ApiError(404, "record-not-found", "Webhook was not found")
        return self.answer(action, 204, None)

    def test_webhook(self, user_id, raw, entry, url, webhook_id):
        """POST /v2/webhooks/{id}/test: a TEST dispatch, delivered before the answer."""
        action = self.take_action("POST", url, raw, entry)
        self.note(entry, webhookId=webhook_id)
        with self.state.lock:
            webhook = copy.deepcopy(self.state._mine(user_id, webhook_id))
        event_data, resource = dummy_test_event(webhook)
        view = self.state.dispatch(webhook, "TEST", event_data, resource, iso_now())
        self.note(entry, dispatchId=view["id"])
        return self.answer(action, 201, {"data": view})

    def rate_limited(self):
        limit = self.state.knob("rate_limit") or self.state.rate_limit_header()
        retry_after = self.state.knob("retry_after")
        headers = [] if retry_after is None else [("Retry-After", format_number(retry_after))]
        return ApiError(429, "rate-limit-exceeded",
                        f"You have exceeded the rate limit of {limit} requests per second", headers)

    def list_page(self, url, key, view):
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        offset = query_int(params, "offset", 0)
        limit = query_int(params, "limit", 1000) or 1000  # the API treats limit=0 as absent
        limit = min(limit, 1000)
        desc = params.get("desc", "").lower() in ("1", "true")
        data = self.state.page(key, view, offset, limit, desc)
        return self.send_json(200, {"data": data})

    def short_item(self, webhook_id):
        return webhook_short_view(self.state.webhooks[webhook_id])

    def full_item(self, webhook_id):
        return webhook_view(self.state.webhooks[webhook_id])

    def dispatch_item(self, dispatch_id):
        return dispatch_view(self.state.dispatches[dispatch_id])

    def list_webhooks(self, user_id, raw, entry, url):
        return self.list_page(url, ("user", user_id), self.short_item)

    def list_actor_webhooks(self, user_id, raw, entry, url, actor_id):
        return self.list_page(url, ("actor", user_id, actor_id), self.short_item)

    def list_task_webhooks(self, user_id, raw, entry, url, task_id):
        return self.list_page(url, ("task", user_id, task_id), self.full_item)

    def list_webhook_dispatches(self, user_id, raw, entry, url, webhook_id):
        self.state.get(user_id, webhook_id)   # 404 for an unknown webhook
        return self.list_page(url, ("webhook-dispatches", webhook_id), self.dispatch_item)

    def list_dispatches(self, user_id, raw, entry, url):
        return self.list_page(url, ("dispatches", user_id), self.dispatch_item)

    def get_dispatch(self, user_id, raw, entry, url, dispatch_id):
        return self.send_json(200, {"data": self.state.get_dispatch(user_id, dispatch_id)})

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
            elif route == ("GET", "/_emulator/dispatches"):
                payload = state.dispatch_records()
            elif route == ("POST", "/_emulator/config"):
                payload = state.configure(control_body(raw))
            elif route == ("POST", "/_emulator/reset"):
                state.reset()
                payload = {"ok": True}
            elif route == ("POST", "/_emulator/seed"):
                payload = self.control_seed(control_body(raw))
            elif route == ("POST", "/_emulator/events"):
                payload = self.control_event(control_body(raw))
            else:
                payload = {"error": {"type": "page-not-found", "message": f"no {method} {url.path}"}}
                return self.send_control(404, payload)
        except ValueError as err:
            return self.send_control(400, {"error": {"type": "invalid-config", "message": str(err)}})
        except ApiError as err:
            return self.send_control(400, {"error": {"type": err.type, "message": err.message}})
        self.send_control(200, payload)

    def control_user(self, body):
        user_id = self.state.users.get(body.get("token"))
        if user_id is None:
            raise ValueError("token must be one of the emulator's tokens")
        return user_id

    def control_seed(self, body):
        """POST /_emulator/seed {"token", "count", "webhook", "suffix", "dispatches"}."""
        user_id = self.control_user(body)
        count, dispatches = body.get("count", 1), body.get("dispatches", 0)
        for name, value in (("count", count), ("dispatches", dispatches)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1_000_000:
                raise ValueError(f"{name} must be a whole number from 0 to 1000000")
        given = body.get("webhook") or {}
        if not isinstance(given, dict):
            raise ValueError("webhook must be an object of WebhookCreate fields")
        suffix = body.get("suffix", False) is True
        fields = validate_create({**SEED_DEFAULTS, **given})
        if fields["idempotencyKey"] is not None and count > 1 and not suffix:
            raise ValueError("an idempotencyKey needs suffix: true when count > 1")
        return self.state.seed(user_id, count, fields, suffix, dispatches)

    def control_event(self, body):
        """POST /_emulator/events: dispatch every matching webhook of the token's user."""
        user_id = self.control_user(body)
        event_type, event_data = body.get("eventType"), body.get("eventData")
        if event_type not in EVENT_TYPES:
            raise ValueError(f"eventType must be one of the event types (got {event_type!r})")
        if not isinstance(event_data, dict):
            raise ValueError("eventData must be an object")
        created_at = body.get("createdAt") or iso_now()
        if not isinstance(created_at, str):
            raise ValueError("createdAt must be a string")
        resource = body.get("resource")
        dispatches = [self.state.dispatch(webhook, event_type, event_data, resource, created_at)
                      for webhook in self.state.matching_webhooks(user_id, event_type, event_data)]
        return {"dispatches": dispatches}

    def send_control(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# Path patterns of the API (trailing slashes stripped) -> {method: Handler method name}.
ROUTES = [
    (re.compile(r"/v2/webhooks\Z"), {"GET": "list_webhooks", "POST": "create_webhook"}),
    (re.compile(r"/v2/webhooks/([^/]+)\Z"),
     {"GET": "get_webhook", "PUT": "update_webhook", "DELETE": "delete_webhook"}),
    (re.compile(r"/v2/webhooks/([^/]+)/test\Z"), {"POST": "test_webhook"}),
    (re.compile(r"/v2/webhooks/([^/]+)/dispatches\Z"), {"GET": "list_webhook_dispatches"}),
    (re.compile(r"/v2/webhook-dispatches\Z"), {"GET": "list_dispatches"}),
    (re.compile(r"/v2/webhook-dispatches/([^/]+)\Z"), {"GET": "get_dispatch"}),
    (re.compile(r"/v2/(?:actors|acts)/([^/]+)/webhooks\Z"), {"GET": "list_actor_webhooks"}),
    (re.compile(r"/v2/actor-tasks/([^/]+)/webhooks\Z"), {"GET": "list_task_webhooks"}),
]
# What POST /_emulator/seed fills in when its "webhook" leaves a required field out.
SEED_DEFAULTS = {"requestUrl": "https://example.com/hook", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
                 "condition": {"actorId": "SeededActorIdAbcd"}}


def control_body(raw):
    body = json.loads(raw.decode("utf-8") or "{}")
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


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
    parser.add_argument("--deleted-keys", choices=DELETED_KEY_MODES, default="free",
                        help="what a deleted webhook's idempotencyKey does (see the docstring)")
    parser.add_argument("--delivery-timeout-ms", type=float,
                        default=DEFAULT_KNOBS["delivery_timeout_ms"])
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
