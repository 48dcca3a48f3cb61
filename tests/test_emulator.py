"""Tests of the local Apify emulator (tests/emulator.py) and of tests/harness.py.

They prove the emulator follows the API rules the extension is tested against: auth, request
format, every validation rule with its exact error, 201 + Location + the Webhook shape,
idempotency, limits, list/get/delete, rate limiting, injected faults and the request log; then
the rest of a webhook's life: PUT, DELETE, what a deleted webhook's idempotency key does, the
scoped lists and paging over seeded data, faults on every writing request, test dispatches and
events delivered to a receiver on 127.0.0.1, and the rendering of templates. The last class runs
the official JavaScript client (npm apify-client) against it.

    /usr/bin/python3 -m unittest tests.test_emulator -v        (from the repository root)
"""

import concurrent.futures
import ctypes
import ctypes.util
import gzip
import http.client
import http.server
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib

from tests.emulator import brotli_decoder
from tests import harness
from tests.harness import ROOT, TOKEN, Emulator, Response, header

HTTP_TIMEOUT = 10
ID_RE = re.compile(r"[A-Za-z0-9]{17}\Z")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
VALID = {"requestUrl": "https://example.com/hook", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
         "condition": {"actorId": "HDSasDasz78YcAPEB"}}
WEBHOOK_FIELDS = {"id", "createdAt", "modifiedAt", "userId", "isAdHoc", "shouldInterpolateStrings",
                  "eventTypes", "condition", "ignoreSslErrors", "doNotRetry", "requestUrl",
                  "payloadTemplate", "headersTemplate", "description", "lastDispatch", "stats"}
EVENT_TYPES = ["ACTOR.BUILD.ABORTED", "ACTOR.BUILD.CREATED", "ACTOR.BUILD.FAILED",
               "ACTOR.BUILD.SUCCEEDED", "ACTOR.BUILD.TIMED_OUT", "ACTOR.RUN.ABORTED",
               "ACTOR.RUN.CREATED", "ACTOR.RUN.FAILED", "ACTOR.RUN.RESURRECTED",
               "ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.TIMED_OUT", "TEST"]


def webhook(**changes):
    """A valid WebhookCreate body with some fields changed (a value of ... removes the field)."""
    body = json.loads(json.dumps(VALID))
    for name, value in changes.items():
        if value is ...:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def send(conn, method, path, body=None, headers=None, token=TOKEN):
    """One request on an open http.client connection. body: dict/list (JSON) or bytes.
    A header set to None is not sent. Returns a harness Response."""
    hdrs = {}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    hdrs = {k: v for k, v in hdrs.items() if v is not None}
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)


def call(emu, method, path, body=None, headers=None, token=TOKEN, timeout=HTTP_TIMEOUT):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    try:
        return send(conn, method, path, body, headers, token)
    finally:
        conn.close()


def brotli_compress(data):
    """Compress with the system's libbrotlienc, or return None when it is not there."""
    name = ctypes.util.find_library("brotlienc") or "libbrotlienc.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    size = ctypes.c_size_t(len(data) + 1024)
    out = ctypes.create_string_buffer(size.value)
    lib.BrotliEncoderCompress.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_size_t,
                                          ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                                          ctypes.c_char_p]
    if not lib.BrotliEncoderCompress(6, 22, 0, len(data), data, ctypes.byref(size), out):
        return None
    return out.raw[:size.value]


class EmulatorCase(harness.EmulatorCase):
    """One emulator per class; every test starts from a reset emulator."""

    def post(self, body, **kwargs):
        return call(self.emu, "POST", "/v2/webhooks", body, **kwargs)

    def assertError(self, reply, status, error_type, message=None):
        self.assertEqual(reply.status, status, reply)
        self.assertTrue(reply.headers["content-type"].startswith("application/json"), reply.headers)
        error = reply.json()["error"]
        self.assertEqual(error["type"], error_type, reply)
        if message is not None:
            self.assertEqual(error["message"], message)
        return error

    def assertCreated(self, reply):
        self.assertEqual(reply.status, 201, reply)
        return reply.json()["data"]

    def assertNothingCreated(self):
        self.assertEqual(self.emu.webhooks(), [])


class Auth(EmulatorCase):
    tokens = [TOKEN, "second-token"]

    def test_bearer_token(self):
        data = self.assertCreated(self.post(VALID))
        self.assertEqual(self.emu.posts()[0]["auth"], "valid")
        self.assertEqual([w["id"] for w in self.emu.webhooks()], [data["id"]])

    def test_query_token(self):
        reply = call(self.emu, "POST", f"/v2/webhooks?token={TOKEN}", VALID, token=None)
        self.assertCreated(reply)
        self.assertEqual(self.emu.posts()[0]["auth"], "valid")

    def test_missing_token(self):
        self.assertError(self.post(VALID, token=None), 401, "token-not-provided",
                         "Authentication token was not provided")
        self.assertEqual(self.emu.posts()[0]["auth"], "none")
        self.assertNothingCreated()

    def test_non_bearer_scheme_is_no_token(self):
        reply = self.post(VALID, headers={"Authorization": f"Basic {TOKEN}"})
        self.assertError(reply, 401, "token-not-provided")

    def test_unknown_token(self):
        for reply in (self.post(VALID, token="wrong-token"),
                      call(self.emu, "POST", "/v2/webhooks?token=wrong", VALID, token=None)):
            self.assertError(reply, 401, "user-or-token-not-found",
                             "User was not found or authentication token is not valid")
        self.assertEqual([e["auth"] for e in self.emu.posts()], ["invalid", "invalid"])
        self.assertNothingCreated()

    def test_each_token_is_its_own_user(self):
        mine = self.assertCreated(self.post(VALID))
        theirs = self.assertCreated(self.post(VALID, token="second-token"))
        again = self.assertCreated(self.post(VALID))
        self.assertRegex(mine["userId"], ID_RE)
        self.assertEqual(mine["userId"], again["userId"])
        self.assertNotEqual(mine["userId"], theirs["userId"])
        listed = call(self.emu, "GET", "/v2/webhooks").json()["data"]
        self.assertEqual({w["id"] for w in listed["items"]}, {mine["id"], again["id"]})
        self.assertError(call(self.emu, "GET", f"/v2/webhooks/{theirs['id']}"), 404,
                         "record-not-found")
        self.assertError(call(self.emu, "DELETE", f"/v2/webhooks/{theirs['id']}"), 404,
                         "record-not-found")
        self.assertEqual(len(self.emu.webhooks()), 3)

    def test_reads_need_auth(self):
        created = self.assertCreated(self.post(VALID))
        for method, path in (("GET", "/v2/webhooks"), ("GET", f"/v2/webhooks/{created['id']}"),
                             ("DELETE", f"/v2/webhooks/{created['id']}")):
            self.assertError(call(self.emu, method, path, token=None), 401, "token-not-provided")
        self.assertEqual(len(self.emu.webhooks()), 1)


class RequestFormat(EmulatorCase):

    def test_content_type_required(self):
        body = json.dumps(VALID).encode()
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
            reply = self.post(body, headers={"Content-Type": content_type})
            self.assertError(reply, 400, "invalid-content-type-header",
                             "The Content-Type header must be application/json")
        self.assertNothingCreated()

    def test_content_type_with_charset(self):
        reply = self.post(json.dumps(VALID).encode(),
                          headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertCreated(reply)

    def test_body_not_json(self):
        reply = self.post(b"{not json", headers={"Content-Type": "application/json"})
        self.assertError(reply, 400, "invalid-input", "The request body is not valid JSON")
        reply = self.post(b"", headers={"Content-Type": "application/json"})
        self.assertError(reply, 400, "invalid-input", "The request body is not valid JSON")

    def test_body_not_an_object(self):
        for body in ([VALID], "text", 42, None):
            reply = self.post(json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            self.assertError(reply, 400, "invalid-input", "The request body must be a JSON object")
        self.assertNothingCreated()

    def test_gzip_body(self):
        reply = self.post(gzip.compress(json.dumps(VALID).encode()),
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertCreated(reply)
        self.assertEqual(json.loads(self.emu.posts()[0]["body"]), VALID)

    def test_deflate_body(self):
        reply = self.post(zlib.compress(json.dumps(VALID).encode()),
                          headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})
        self.assertCreated(reply)

    def test_brotli_body(self):
        compressed = brotli_compress(json.dumps(VALID).encode())
        if compressed is None or not brotli_decoder():
            self.skipTest("libbrotlienc/libbrotlidec not installed (Debian: libbrotli1)")
        reply = self.post(compressed, headers={"Content-Type": "application/json",
                                               "Content-Encoding": "br"})
        self.assertCreated(reply)

    def test_corrupt_gzip(self):
        reply = self.post(b"\x1f\x8b not gzip", headers={"Content-Type": "application/json",
                                                         "Content-Encoding": "gzip"})
        self.assertError(reply, 400, "invalid-input", 'The request body is not valid "gzip" data')

    def test_unsupported_encoding(self):
        reply = self.post(json.dumps(VALID).encode(),
                          headers={"Content-Type": "application/json", "Content-Encoding": "bla"})
        self.assertError(reply, 415, "unsupported-content-encoding",
                         'Content-Encoding "bla" is not supported.')
        self.assertNothingCreated()

    def test_chunked_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request("POST", "/v2/webhooks", body=iter([json.dumps(VALID).encode()]),
                         headers={"Authorization": f"Bearer {TOKEN}",
                                  "Content-Type": "application/json"}, encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 201, resp.read())
        finally:
            conn.close()

    def test_too_large_by_content_length(self):
        # Only the headers are sent: the emulator must answer from Content-Length alone.
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=HTTP_TIMEOUT)
        try:
            conn.putrequest("POST", "/v2/webhooks")
            for name, value in (("Authorization", f"Bearer {TOKEN}"),
                                ("Content-Type", "application/json"),
                                ("Content-Length", "10485760")):
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            reply = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
        self.assertError(reply, 413, "request-too-large", "The POST payload is too large "
                         "(limit: 9437184 bytes, actual length: 10485760 bytes).")
        self.assertEqual(self.emu.posts()[0]["status"], 413)
        self.assertNothingCreated()

    def test_too_large_refused_before_100_continue(self):
        # A client that asks first (curl does for big bodies) gets the 413, never a 100.
        with socket.create_connection(("127.0.0.1", self.emu.port), timeout=HTTP_TIMEOUT) as sock:
            sock.sendall(b"POST /v2/webhooks HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 9437185\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        self.assertIn(b"Connection: close", answer)

    def test_too_large_body_sent(self):
        body = json.dumps(webhook(description="x" * 9_500_000)).encode()
        reply = self.post(body, headers={"Content-Type": "application/json"})
        self.assertError(reply, 413, "request-too-large")
        self.assertNothingCreated()

    def test_just_under_the_limit(self):
        body = webhook(description="")
        padding = 9_437_184 - len(json.dumps(body).encode())
        body["description"] = "y" * padding
        self.assertCreated(self.post(json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}))

    def test_too_large_after_decompression(self):
        bomb = gzip.compress(json.dumps(webhook(description=" " * 10_000_000)).encode())
        self.assertLess(len(bomb), 100_000)
        reply = self.post(bomb, headers={"Content-Type": "application/json",
                                         "Content-Encoding": "gzip"})
        self.assertError(reply, 413, "request-too-large")
        self.assertNothingCreated()

    def test_unknown_path_and_method(self):
        self.assertError(call(self.emu, "GET", "/v2/actors"), 404, "page-not-found")
        self.assertError(call(self.emu, "PUT", "/v2/webhooks", VALID), 405, "method-not-allowed")
        self.assertError(call(self.emu, "POST", "/v2/webhooks/abc", VALID), 405,
                         "method-not-allowed")


class Validation(EmulatorCase):
    """Every rule of a WebhookCreate, with its exact message; nothing is ever created."""

    def assertInvalid(self, body, message):
        self.assertError(self.post(body), 400, "invalid-input", message)

    def tearDown(self):
        self.assertNothingCreated()

    def test_required_fields(self):
        for name in ("requestUrl", "eventTypes", "condition"):
            with self.subTest(name):
                self.assertInvalid(webhook(**{name: ...}), f'Field "{name}" is required')

    def test_unknown_field(self):
        self.assertInvalid(webhook(actorId="x"), 'Field "actorId" is not allowed')
        self.assertInvalid(webhook(isEnabled=True), 'Field "isEnabled" is not allowed')

    def test_request_url(self):
        self.assertInvalid(webhook(requestUrl=42), 'Field "requestUrl" must be a string')
        self.assertInvalid(webhook(requestUrl=None), 'Field "requestUrl" must be a string')
        for url in ("", "example.com/hook", "/hook", "ftp://example.com/", "https://",
                    "http:///path", "https://exa mple.com/", "https://example.com:99999/",
                    "mailto:me@example.com"):
            with self.subTest(url):
                self.assertInvalid(webhook(requestUrl=url), 'Field "requestUrl" must be an '
                                   f'absolute http or https URL (got "{url}")')

    def test_event_types(self):
        for value in ([], None, "ACTOR.RUN.SUCCEEDED", {"a": 1}):
            with self.subTest(value):
                self.assertInvalid(webhook(eventTypes=value),
                                   'Field "eventTypes" must be a non-empty array')
        self.assertInvalid(webhook(eventTypes=["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.EXPLODED"]),
                           'Field "eventTypes" contains an invalid event type: "ACTOR.RUN.EXPLODED"')
        self.assertInvalid(webhook(eventTypes=[1]),
                           'Field "eventTypes" contains an invalid event type: 1')
        self.assertInvalid(webhook(eventTypes=["actor.run.succeeded"]),
                           'Field "eventTypes" contains an invalid event type: "actor.run.succeeded"')

    def test_condition(self):
        for value in (None, [], "HDSasDasz78YcAPEB"):
            with self.subTest(value):
                self.assertInvalid(webhook(condition=value), 'Field "condition" must be an object')
        self.assertInvalid(webhook(condition={}),
                           'Field "condition" must contain actorId, actorTaskId or actorRunId')
        for value in ("", None, 5):
            with self.subTest(value):
                self.assertInvalid(webhook(condition={"actorTaskId": value}),
                                   'Field "condition.actorTaskId" must be a non-empty string')
        self.assertInvalid(webhook(condition={"actorId": "a", "userId": "b"}),
                           'Field "condition.userId" is not allowed')

    def test_booleans(self):
        for name in ("isAdHoc", "shouldInterpolateStrings", "ignoreSslErrors", "doNotRetry"):
            for value in ("true", 1, 0, [], {}):
                with self.subTest(name=name, value=value):
                    self.assertInvalid(webhook(**{name: value}),
                                       f'Field "{name}" must be a boolean or null')

    def test_strings(self):
        for name in ("idempotencyKey", "payloadTemplate", "headersTemplate", "description"):
            for value in (1, True, ["x"], {"a": "b"}):
                with self.subTest(name=name, value=value):
                    self.assertInvalid(webhook(**{name: value}),
                                       f'Field "{name}" must be a string or null')

    def test_idempotency_key_length(self):
        for key in ("", "k" * 257):
            with self.subTest(len(key)):
                self.assertInvalid(webhook(idempotencyKey=key),
                                   'Field "idempotencyKey" must be 1 to 256 characters long')

    def test_template_syntax(self):
        cases = [
            ('{"a": }', "line 1 column 7"),
            ('{"a": 1,}', "line 1 column 9"),
            ('{"a": {{userId}', "line 1 column 7"),        # placeholder never closed
            ('{"a": NaN}', "line 1 column 7"),              # not JSON, though Python accepts it
            ('{"a": -Infinity}', "line 1 column 8"),
            ('{"a": 1{{userId}}}', "line 1 column 8"),      # a placeholder is a whole value
            ('{ {{userId}}: 1 }', "line 1 column 3"),       # not a key either
            ('{\n  "a": 1,\n  "b": "raw newline\n"}', "line 3 column 20"),
            ('{\n  "a": 1,\n  "b": "unterminated}', "line 3 column 8"),
            ('{"a": 1} {{userId}}', "line 1 column 10"),
            (" ", "line 1 column 2"),
        ]
        for template, where in cases:
            for kind, field in (("payload", "payloadTemplate"), ("headers", "headersTemplate")):
                with self.subTest(template=template, kind=kind):
                    self.assertInvalid(webhook(**{field: template}),
                                       f"Invalid {kind} template: not valid JSON at {where}")

    def test_template_variable_outside_strings(self):
        for name in ("user", "userid", "resources.id", "env.TOKEN", "", "userId..x", "9lives"):
            with self.subTest(name):
                self.assertInvalid(webhook(payloadTemplate='{"a": {{%s}}}' % name),
                                   f"Invalid payload template variable: {name}")
                self.assertInvalid(webhook(headersTemplate='{"A": {{%s}}}' % name),
                                   f"Invalid headers template variable: {name}")

    def test_template_variable_inside_strings(self):
        for name in ("foo", "foo.bar", "resources", "1x"):
            with self.subTest(name):
                self.assertInvalid(webhook(shouldInterpolateStrings=True,
                                           payloadTemplate='{"a": "run {{%s}} done"}' % name),
                                   f"Invalid payload template variable: {name}")
                self.assertInvalid(webhook(shouldInterpolateStrings=True,
                                           headersTemplate='{"A": "Bearer {{%s}}"}' % name),
                                   f"Invalid headers template variable: {name}")

    def test_headers_template_shape(self):
        for template in ("[]", '"x"', "1", "{{resource}}"):
            with self.subTest(template):
                self.assertInvalid(webhook(headersTemplate=template),
                                   "Invalid headers template: it must be a JSON object")
        for value in ("1", "null", "true", '{"b": "c"}', '["x"]'):
            with self.subTest(value):
                self.assertInvalid(webhook(headersTemplate='{"X-Ok": "y", "X-Bad": %s}' % value),
                                   'Invalid headers template: the value of header "X-Bad" must be a string')


class Templates(EmulatorCase):
    """Templates the API accepts."""

    def test_valid_templates(self):
        accepted = [
            {"payloadTemplate": ""},
            {"headersTemplate": ""},
            {"payloadTemplate": None, "headersTemplate": None},
            {"payloadTemplate": '{"userId": {{userId}}, "createdAt": {{createdAt}}, '
                                '"eventType": {{eventType}}, "eventData": {{eventData}}, '
                                '"resource": {{resource}}, "g": {{globals.x}}}'},
            {"payloadTemplate": '{"id": {{ resource.defaultDatasetId }}, "n": [1, {{eventData.actorId}}]}'},
            {"payloadTemplate": '{{resource}}'},
            {"payloadTemplate": '{"literal": "{{notAVariable}} stays text", "n": null}'},
            {"payloadTemplate": '{"s": "quote \\" and {{x}}", "t": {{userId}}}'},
            {"shouldInterpolateStrings": True,
             "payloadTemplate": '{"msg": "run {{resource.id}} of {{userId}} at {{createdAt}}"}'},
            {"headersTemplate": '{"X-Run": {{resource.id}}, "X-Static": "v"}'},
            {"shouldInterpolateStrings": True, "headersTemplate": '{"Authorization": "Bearer {{globals.key}}"}'},
            {"headersTemplate": '{"X-Literal": "{{anything}}"}'},
        ]
        for fields in accepted:
            with self.subTest(fields):
                reply = self.post(webhook(**fields))
                data = self.assertCreated(reply)
                for name, value in fields.items():
                    self.assertEqual(data[name], value, name)
        self.assertEqual(len(self.emu.webhooks()), len(accepted))


class Create(EmulatorCase):

    def test_created_webhook_shape(self):
        reply = self.post(VALID)
        data = self.assertCreated(reply)
        self.assertTrue(reply.headers["content-type"].startswith("application/json"))
        self.assertEqual(set(data), WEBHOOK_FIELDS)
        self.assertRegex(data["id"], ID_RE)
        self.assertRegex(data["userId"], ID_RE)
        self.assertRegex(data["createdAt"], TIME_RE)
        self.assertEqual(data["modifiedAt"], data["createdAt"])
        self.assertEqual(reply.headers["location"], f"{self.emu.base_url}/v2/webhooks/{data['id']}")
        self.assertEqual(data["requestUrl"], VALID["requestUrl"])
        self.assertEqual(data["eventTypes"], VALID["eventTypes"])
        self.assertEqual(data["condition"], VALID["condition"])
        for name in ("isAdHoc", "shouldInterpolateStrings", "ignoreSslErrors", "doNotRetry"):
            self.assertIs(data[name], False, name)
        for name in ("payloadTemplate", "headersTemplate", "description", "lastDispatch"):
            self.assertIsNone(data[name], name)
        self.assertEqual(data["stats"], {"totalDispatches": 0})
        stored = self.emu.webhooks()
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored[0]["id"], data["id"])
        self.assertIsNone(stored[0]["idempotencyKey"])

    def test_every_field_echoed(self):
        body = webhook(eventTypes=EVENT_TYPES, isAdHoc=True, shouldInterpolateStrings=True,
                       ignoreSslErrors=True, doNotRetry=True, idempotencyKey="k" * 256,
                       payloadTemplate='{"r": {{resource}}}', headersTemplate='{"X-A": "b"}',
                       description="a webhook ✓",
                       condition={"actorId": "a1", "actorTaskId": "t1", "actorRunId": "r1"})
        data = self.assertCreated(self.post(body))
        for name, value in body.items():
            if name != "idempotencyKey":
                self.assertEqual(data[name], value, name)
        self.assertNotIn("idempotencyKey", data)
        self.assertEqual(self.emu.webhooks()[0]["idempotencyKey"], "k" * 256)

    def test_null_booleans_are_false(self):
        data = self.assertCreated(self.post(webhook(isAdHoc=None, ignoreSslErrors=None,
                                                    doNotRetry=None, shouldInterpolateStrings=None)))
        for name in ("isAdHoc", "shouldInterpolateStrings", "ignoreSslErrors", "doNotRetry"):
            self.assertIs(data[name], False, name)

    def test_ids_are_distinct(self):
        ids = {self.assertCreated(self.post(VALID))["id"] for _ in range(20)}
        self.assertEqual(len(ids), 20)

    def test_idempotency_key(self):
        first = self.assertCreated(self.post(webhook(idempotencyKey="key-1")))
        again = self.post(webhook(idempotencyKey="key-1", description="changed"))
        self.assertEqual(self.assertCreated(again), first)
        self.assertEqual(again.headers["location"], f"{self.emu.base_url}/v2/webhooks/{first['id']}")
        other = self.assertCreated(self.post(webhook(idempotencyKey="key-2")))
        self.assertNotEqual(other["id"], first["id"])
        stored = self.emu.webhooks()
        self.assertEqual(sorted(w["idempotencyKey"] for w in stored), ["key-1", "key-2"])

    def test_idempotency_key_is_per_user(self):
        with Emulator(tokens=[TOKEN, "other"]) as emu:
            a = call(emu, "POST", "/v2/webhooks", webhook(idempotencyKey="same")).json()["data"]
            b = call(emu, "POST", "/v2/webhooks", webhook(idempotencyKey="same"),
                     token="other").json()["data"]
            self.assertNotEqual(a["id"], b["id"])
            self.assertEqual(len(emu.webhooks()), 2)

    def test_idempotency_key_under_concurrency(self):
        def create(_):
            return call(self.emu, "POST", "/v2/webhooks", webhook(idempotencyKey="race"))
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(create, range(32)))
        self.assertEqual({r.status for r in replies}, {201})
        self.assertEqual(len({r.json()["data"]["id"] for r in replies}), 1)
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_key_free_again_after_delete(self):
        first = self.assertCreated(self.post(webhook(idempotencyKey="k")))
        self.assertEqual(call(self.emu, "DELETE", f"/v2/webhooks/{first['id']}").status, 204)
        second = self.assertCreated(self.post(webhook(idempotencyKey="k")))
        self.assertNotEqual(first["id"], second["id"])

    def test_too_many_webhooks(self):
        self.emu.configure(max_webhooks=2)
        kept = [self.assertCreated(self.post(webhook(idempotencyKey=f"k{i}"))) for i in range(2)]
        self.assertError(self.post(VALID), 403, "too-many-webhooks",
                         "You have reached the maximum number of webhooks (2)")
        # Ad-hoc webhooks do not count, and a repeated key still answers with its webhook.
        self.assertCreated(self.post(webhook(isAdHoc=True, condition={"actorRunId": "run1"})))
        self.assertEqual(self.assertCreated(self.post(webhook(idempotencyKey="k1")))["id"],
                         kept[1]["id"])
        self.assertEqual(len(self.emu.webhooks()), 3)
        call(self.emu, "DELETE", f"/v2/webhooks/{kept[0]['id']}")
        self.assertCreated(self.post(VALID))

    def test_keep_alive_and_concurrency(self):
        def worker(n):
            conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=HTTP_TIMEOUT)
            try:
                statuses, sockets = [], set()
                for i in range(5):
                    reply = send(conn, "POST", "/v2/webhooks", webhook(idempotencyKey=f"{n}-{i}"))
                    statuses.append(reply.status)
                    sockets.add(id(conn.sock))
                return statuses, len(sockets)
            finally:
                conn.close()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(worker, range(20)))
        for statuses, sockets in results:
            self.assertEqual(statuses, [201] * 5)
            self.assertEqual(sockets, 1, "the connection was not kept alive")
        self.assertEqual(len({w["id"] for w in self.emu.webhooks()}), 100)


class ReadAndDelete(EmulatorCase):

    def create(self, n):
        return [self.assertCreated(self.post(webhook(description=f"w{i}"))) for i in range(n)]

    def page(self, query=""):
        reply = call(self.emu, "GET", f"/v2/webhooks{query}")
        self.assertEqual(reply.status, 200, reply)
        return reply.json()["data"]

    def test_list_paging(self):
        ids = [w["id"] for w in self.create(5)]
        page = self.page()
        self.assertEqual({k: page[k] for k in ("total", "offset", "limit", "desc", "count")},
                         {"total": 5, "offset": 0, "limit": 1000, "desc": False, "count": 5})
        self.assertEqual([w["id"] for w in page["items"]], ids)
        page = self.page("?offset=1&limit=2")
        self.assertEqual((page["offset"], page["limit"], page["count"], page["total"]), (1, 2, 2, 5))
        self.assertEqual([w["id"] for w in page["items"]], ids[1:3])
        self.assertEqual([w["id"] for w in self.page("?offset=4&limit=10")["items"]], ids[4:])
        self.assertEqual(self.page("?offset=9")["items"], [])
        self.assertEqual(self.page("?limit=0")["limit"], 1000)
        self.assertEqual(self.page("?limit=5000")["limit"], 1000)

    def test_list_desc(self):
        ids = [w["id"] for w in self.create(4)]
        for flag in ("1", "true"):
            page = self.page(f"?desc={flag}&limit=3")
            self.assertIs(page["desc"], True)
            self.assertEqual([w["id"] for w in page["items"]], ids[::-1][:3])
        self.assertEqual([w["id"] for w in self.page("?desc=0")["items"]], ids)

    def test_list_items_are_webhook_short(self):
        self.create(1)
        item = self.page()["items"][0]
        for name in ("id", "createdAt", "modifiedAt", "userId", "eventTypes", "condition",
                     "ignoreSslErrors", "doNotRetry", "requestUrl"):
            self.assertIn(name, item)
        self.assertIs(item["doNotRetry"], False)

    def test_bad_paging_parameters(self):
        self.assertError(call(self.emu, "GET", "/v2/webhooks?limit=abc"), 400, "invalid-input",
                         'Parameter "limit" must be a number')
        self.assertError(call(self.emu, "GET", "/v2/webhooks?offset=-1"), 400, "invalid-input",
                         'Parameter "offset" must not be negative')

    def test_get_one(self):
        created = self.create(2)[1]
        reply = call(self.emu, "GET", f"/v2/webhooks/{created['id']}")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json()["data"], created)

    def test_get_missing(self):
        self.assertError(call(self.emu, "GET", "/v2/webhooks/AAAAAAAAAAAAAAAAA"), 404,
                         "record-not-found", "Webhook was not found")

    def test_delete(self):
        created = self.create(2)
        reply = call(self.emu, "DELETE", f"/v2/webhooks/{created[0]['id']}")
        self.assertEqual((reply.status, reply.body), (204, b""))
        self.assertEqual(reply.headers["x-ratelimit-limit"], "60")
        self.assertError(call(self.emu, "GET", f"/v2/webhooks/{created[0]['id']}"), 404,
                         "record-not-found")
        self.assertError(call(self.emu, "DELETE", f"/v2/webhooks/{created[0]['id']}"), 404,
                         "record-not-found")
        self.assertEqual([w["id"] for w in self.emu.webhooks()], [created[1]["id"]])
        self.assertEqual(self.page()["total"], 1)


class RateLimit(EmulatorCase):

    def test_header_on_every_response(self):
        created = self.assertCreated(self.post(VALID))
        replies = [self.post(VALID, token=None), self.post(webhook(condition={})),
                   call(self.emu, "GET", "/v2/webhooks"),
                   call(self.emu, "GET", f"/v2/webhooks/{created['id']}"),
                   call(self.emu, "GET", "/v2/webhooks/nope"), call(self.emu, "GET", "/v2/x")]
        for reply in replies:
            self.assertEqual(reply.headers.get("x-ratelimit-limit"), "60", reply)

    def test_header_knob(self):
        self.emu.configure(rate_limit_header=250)
        self.assertEqual(self.post(VALID).headers["x-ratelimit-limit"], "250")
        self.emu.configure(rate_limit=7, rate_limit_header=None)
        self.assertEqual(self.post(VALID).headers["x-ratelimit-limit"], "7")

    def burst(self, n):
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=HTTP_TIMEOUT)
        try:
            return [send(conn, "POST", "/v2/webhooks", webhook(idempotencyKey=f"b{i}"))
                    for i in range(n)]
        finally:
            conn.close()

    def test_429_over_the_limit(self):
        self.emu.configure(rate_limit=3)
        replies = self.burst(6)
        self.assertEqual([r.status for r in replies], [201, 201, 201, 429, 429, 429])
        self.assertError(replies[3], 429, "rate-limit-exceeded",
                         "You have exceeded the rate limit of 3 requests per second")
        self.assertEqual(replies[3].headers["x-ratelimit-limit"], "3")
        self.assertNotIn("retry-after", replies[3].headers)
        self.assertEqual(len(self.emu.webhooks()), 3)
        time.sleep(1.05)   # the sliding window has moved on
        self.assertCreated(self.post(VALID))

    def test_429_with_retry_after(self):
        self.emu.configure(rate_limit=1, retry_after=2)
        replies = self.burst(2)
        self.assertEqual([r.status for r in replies], [201, 429])
        self.assertEqual(replies[1].headers["retry-after"], "2")
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_limit_is_per_user(self):
        with Emulator(tokens=[TOKEN, "other"], rate_limit=1) as emu:
            self.assertEqual(call(emu, "POST", "/v2/webhooks", VALID).status, 201)
            self.assertEqual(call(emu, "POST", "/v2/webhooks", VALID, token="other").status, 201)
            self.assertEqual(call(emu, "POST", "/v2/webhooks", VALID).status, 429)


class Faults(EmulatorCase):

    def test_script_500(self):
        self.emu.configure(script=["500"])
        self.assertError(self.post(VALID), 500, "internal-server-error")
        self.assertNothingCreated()
        self.assertCreated(self.post(VALID))

    def test_script_503_twice(self):
        self.emu.configure(script=["503", "503"])
        statuses = [self.post(webhook(idempotencyKey="k")).status for _ in range(3)]
        self.assertEqual(statuses, [503, 503, 201])
        self.assertEqual(len(self.emu.webhooks()), 1)
        self.assertEqual([e["action"] for e in self.emu.posts()], ["503", "503", "ok"])

    def test_script_429(self):
        self.emu.configure(script=["429"], retry_after=1)
        reply = self.post(VALID)
        self.assertError(reply, 429, "rate-limit-exceeded",
                         "You have exceeded the rate limit of 60 requests per second")
        self.assertEqual(reply.headers["retry-after"], "1")
        self.assertNothingCreated()

    def test_script_cut(self):
        self.emu.configure(script=["cut"])
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.post(webhook(idempotencyKey="cut-key"))
        stored = self.emu.webhooks()
        self.assertEqual([w["idempotencyKey"] for w in stored], ["cut-key"])
        self.assertEqual(self.emu.posts()[0]["status"], "cut")
        # The retry a careful client makes finds the webhook the lost answer was about.
        self.assertEqual(self.assertCreated(self.post(webhook(idempotencyKey="cut-key")))["id"],
                         stored[0]["id"])
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_script_slow(self):
        self.emu.configure(script=["slow"], slow_ms=300)
        started = time.monotonic()
        self.assertCreated(self.post(VALID))
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_script_malformed(self):
        self.emu.configure(script=["malformed"])
        reply = self.post(VALID)
        self.assertEqual(reply.status, 201)
        self.assertEqual(int(reply.headers["content-length"]), len(reply.body))
        with self.assertRaises(ValueError):
            reply.json()
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_invalid_request_in_a_scripted_slot(self):
        # A scripted 5xx comes before validation; a "cut" only applies to a created webhook.
        self.emu.configure(script=["503", "cut"])
        self.assertEqual(self.post(webhook(condition={})).status, 503)
        self.assertError(self.post(webhook(condition={})), 400, "invalid-input")
        self.assertCreated(self.post(VALID))

    def test_random_faults_follow_the_seed(self):
        def run():
            self.emu.configure(seed=7, fail_5xx=0.3, malformed=0.2)
            return [self.post(webhook(idempotencyKey=f"s{i}")).status for i in range(30)]
        first = run()
        self.emu.reset()
        self.assertEqual(run(), first)
        self.assertIn(500, first)
        self.assertIn(201, first)
        self.assertEqual(len(self.emu.webhooks()), first.count(201))

    def test_every_post_fails(self):
        self.emu.configure(fail_5xx=1.0)
        self.assertEqual({self.post(VALID).status for _ in range(5)}, {500})
        self.emu.configure(fail_5xx=0.0, cut_after_create=1.0)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.post(VALID)
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_latency(self):
        self.emu.configure(latency_ms=250)
        started = time.monotonic()
        self.assertEqual(call(self.emu, "GET", "/v2/webhooks").status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)

    def test_bad_knobs_refused(self):
        for knobs in ({"nope": 1}, {"script": ["boom"]}, {"fail_5xx": 2}, {"rate_limit": -1},
                      {"max_webhooks": "5"}, {"seed": 1.5}):
            with self.subTest(knobs), self.assertRaises(RuntimeError) as caught:
                self.emu.configure(**knobs)
            self.assertIn("400", str(caught.exception))

    def test_reset_restores_command_line_knobs(self):
        with Emulator(rate_limit_header=77, script=["503"]) as emu:
            self.assertEqual(call(emu, "POST", "/v2/webhooks", VALID).status, 503)
            emu.configure(rate_limit_header=5, script=["500"])
            self.assertEqual(call(emu, "GET", "/v2/webhooks").headers["x-ratelimit-limit"], "5")
            emu.reset()
            reply = call(emu, "POST", "/v2/webhooks", VALID)
            self.assertEqual((reply.status, reply.headers["x-ratelimit-limit"]), (503, "77"))
            self.assertEqual(emu.config()["script"], [])

    def test_reset_restarts_the_random_draws(self):
        with Emulator(seed=11, fail_5xx=0.5) as emu:
            first = [call(emu, "POST", "/v2/webhooks", VALID).status for _ in range(12)]
            emu.reset()
            self.assertEqual([call(emu, "POST", "/v2/webhooks", VALID).status
                              for _ in range(12)], first)
            self.assertEqual(set(first), {201, 500})


class RequestLog(EmulatorCase):

    def test_log_entries(self):
        created = self.assertCreated(self.post(webhook(idempotencyKey="log")))
        call(self.emu, "GET", f"/v2/webhooks?token={TOKEN}&limit=1", token=None)
        self.post(VALID, token="bad-secret-token")
        self.post(VALID, token=None)
        self.emu.state()   # control endpoints are not logged
        log = self.emu.log()
        self.assertEqual([(e["method"], e["path"], e["status"], e["auth"]) for e in log], [
            ("POST", "/v2/webhooks", 201, "valid"), ("GET", "/v2/webhooks", 200, "valid"),
            ("POST", "/v2/webhooks", 401, "invalid"), ("POST", "/v2/webhooks", 401, "none")])
        self.assertEqual(json.loads(log[0]["body"]), webhook(idempotencyKey="log"))
        self.assertEqual(log[0]["webhookId"], created["id"])
        self.assertEqual(header(log[0], "authorization"), "Bearer ***")
        self.assertEqual(log[1]["query"], {"token": "***", "limit": "1"})
        self.assertEqual(header(log[3], "Authorization"), None)
        times = [e["time"] for e in log]
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(self.emu.posts()), 3)

    def test_token_never_logged(self):
        self.post(VALID)
        call(self.emu, "GET", f"/v2/webhooks?token={TOKEN}", token=None)
        call(self.emu, "GET", "/v2/webhooks?token=bad-secret-token", token=None)
        self.post(VALID, token="bad-secret-token")
        self.post(VALID, headers={"Authorization": f"Token {TOKEN}"})
        text = json.dumps(self.emu.log())
        self.assertEqual(len(self.emu.log()), 5)
        self.assertNotIn(TOKEN, text)
        self.assertNotIn("bad-secret-token", text)

    def test_state_counts(self):
        self.assertCreated(self.post(VALID))
        self.assertCreated(self.post(webhook(isAdHoc=True, condition={"actorRunId": "r"})))
        self.post(VALID, token=None)
        counts = self.emu.state()["counts"]
        self.assertEqual((counts["webhooks"], counts["adHocWebhooks"], counts["requests"],
                          counts["posts"]), (2, 1, 3, 3))
        self.assertEqual(counts["byStatus"], {"201": 2, "401": 1})


# -- the rest of a webhook's life: update, delete, lists, dispatches, delivery -------------------

class Receiver:
    """A tiny HTTP server on 127.0.0.1 standing for a webhook's requestUrl: it records every
    request (path, headers in order as received, body) and answers status and body, after
    delay seconds."""

    def __init__(self, status=200, body=b"thanks", delay=0.0):
        self.status, self.body, self.delay = status, body, delay
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": list(self.headers.items()),
                                          "body": data})
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass   # the emulator hangs up on a slow answer: expected in the timeout test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class LifeCase(EmulatorCase):
    """Helpers for the tests of PUT, DELETE, lists and dispatches."""
    tokens = [TOKEN, "second-token"]

    def create(self, token=TOKEN, **changes):
        return self.assertCreated(self.post(webhook(**changes), token=token))

    def put(self, webhook_id, body, **kwargs):
        return call(self.emu, "PUT", f"/v2/webhooks/{webhook_id}", body, **kwargs)

    def stored(self, webhook_id):
        return {w["id"]: w for w in self.emu.webhooks()}[webhook_id]

    def page(self, path, query=""):
        reply = call(self.emu, "GET", path + query)
        self.assertEqual(reply.status, 200, reply)
        return reply.json()["data"]


class Update(LifeCase):

    def test_partial_update(self):
        created = self.create(description="old", payloadTemplate='{"a": {{userId}}}',
                              idempotencyKey="u1")
        time.sleep(0.003)   # modifiedAt has millisecond resolution
        reply = self.put(created["id"], {"requestUrl": "https://example.org/new",
                                         "eventTypes": ["ACTOR.RUN.FAILED", "TEST"]})
        self.assertEqual(reply.status, 200, reply)
        data = reply.json()["data"]
        self.assertEqual(set(data), WEBHOOK_FIELDS)
        expected = dict(created, requestUrl="https://example.org/new",
                        eventTypes=["ACTOR.RUN.FAILED", "TEST"], modifiedAt=data["modifiedAt"])
        self.assertEqual(data, expected)
        self.assertRegex(data["modifiedAt"], TIME_RE)
        self.assertGreater(data["modifiedAt"], created["modifiedAt"])
        stored = self.stored(created["id"])
        self.assertEqual((stored["requestUrl"], stored["description"], stored["idempotencyKey"],
                          stored["payloadTemplate"]),
                         ("https://example.org/new", "old", "u1", '{"a": {{userId}}}'))
        self.assertEqual(call(self.emu, "GET", f"/v2/webhooks/{created['id']}").json()["data"], data)
        self.assertEqual(self.emu.log()[-2]["webhookId"], created["id"])

    def test_empty_body_changes_only_modified_at(self):
        created = self.create()
        time.sleep(0.003)
        data = self.put(created["id"], {}).json()["data"]
        self.assertEqual(dict(data, modifiedAt=None), dict(created, modifiedAt=None))
        self.assertNotEqual(data["modifiedAt"], created["modifiedAt"])

    def test_null_clears_strings_and_falsifies_booleans(self):
        created = self.create(payloadTemplate='{"a": 1}', headersTemplate='{"X-A": "b"}',
                              description="d", isAdHoc=True, doNotRetry=True,
                              ignoreSslErrors=True, shouldInterpolateStrings=True,
                              condition={"actorRunId": "r1"})
        body = {name: None for name in ("payloadTemplate", "headersTemplate", "description",
                                        "isAdHoc", "doNotRetry", "ignoreSslErrors",
                                        "shouldInterpolateStrings")}
        data = self.put(created["id"], body).json()["data"]
        for name in ("payloadTemplate", "headersTemplate", "description"):
            self.assertIsNone(data[name], name)
        for name in ("isAdHoc", "doNotRetry", "ignoreSslErrors", "shouldInterpolateStrings"):
            self.assertIs(data[name], False, name)
        stored = self.stored(created["id"])
        self.assertIsNone(stored["description"])
        self.assertIs(stored["isAdHoc"], False)
        self.assertEqual(self.emu.counts()["adHocWebhooks"], 0)

    def test_required_fields_cannot_be_cleared(self):
        created = self.create()
        for name, message in (("requestUrl", 'Field "requestUrl" must be a string'),
                              ("eventTypes", 'Field "eventTypes" must be a non-empty array'),
                              ("condition", 'Field "condition" must be an object')):
            with self.subTest(name):
                self.assertError(self.put(created["id"], {name: None}), 400, "invalid-input",
                                 message)
        self.assertEqual(self.stored(created["id"])["modifiedAt"], created["modifiedAt"])

    def test_fields_follow_the_create_rules(self):
        created = self.create(idempotencyKey="v1")
        cases = [
            ({"idempotencyKey": "other"}, 'Field "idempotencyKey" is not allowed'),
            ({"isEnabled": True}, 'Field "isEnabled" is not allowed'),
            ({"requestUrl": "ftp://x/"}, 'Field "requestUrl" must be an absolute http or https '
                                         'URL (got "ftp://x/")'),
            ({"eventTypes": []}, 'Field "eventTypes" must be a non-empty array'),
            ({"condition": {}}, 'Field "condition" must contain actorId, actorTaskId or actorRunId'),
            ({"condition": {"actorId": "a", "x": "y"}}, 'Field "condition.x" is not allowed'),
            ({"doNotRetry": "yes"}, 'Field "doNotRetry" must be a boolean or null'),
            ({"description": 5}, 'Field "description" must be a string or null'),
            ({"payloadTemplate": '{"a": {{nope}}}'}, "Invalid payload template variable: nope"),
            ({"headersTemplate": '{"A": 1}'},
             'Invalid headers template: the value of header "A" must be a string'),
            ([1], "The request body must be a JSON object"),
        ]
        for body, message in cases:
            with self.subTest(body):
                self.assertError(self.put(created["id"], body), 400, "invalid-input", message)
        self.assertError(self.put(created["id"], b"{no", headers={"Content-Type": "application/json"}),
                         400, "invalid-input", "The request body is not valid JSON")
        stored = self.stored(created["id"])
        self.assertEqual({k: stored[k] for k in created}, created)
        self.assertEqual(stored["idempotencyKey"], "v1")

    def test_merged_webhook_must_be_valid(self):
        # Each part alone is fine; together an in-string variable of the stored template is
        # checked, and refused.
        created = self.create(headersTemplate='{"X-A": "{{nope}}"}')
        self.assertError(self.put(created["id"], {"shouldInterpolateStrings": True}), 400,
                         "invalid-input", "Invalid headers template variable: nope")
        other = self.create(shouldInterpolateStrings=True)
        self.assertError(self.put(other["id"], {"payloadTemplate": '{"a": "{{foo}}"}'}), 400,
                         "invalid-input", "Invalid payload template variable: foo")
        self.assertIs(self.stored(created["id"])["shouldInterpolateStrings"], False)
        self.assertIsNone(self.stored(other["id"])["payloadTemplate"])
        # Both at once: the new template with interpolation off is fine.
        data = self.put(other["id"], {"payloadTemplate": '{"a": "{{foo}}"}',
                                      "shouldInterpolateStrings": False}).json()["data"]
        self.assertEqual(data["payloadTemplate"], '{"a": "{{foo}}"}')

    def test_content_type_required(self):
        created = self.create()
        reply = self.put(created["id"], json.dumps({"description": "x"}).encode(),
                         headers={"Content-Type": "text/plain"})
        self.assertError(reply, 400, "invalid-content-type-header",
                         "The Content-Type header must be application/json")
        self.assertIsNone(self.stored(created["id"])["description"])

    def test_unknown_or_other_users_webhook(self):
        theirs = self.create(token="second-token")
        for webhook_id in ("AAAAAAAAAAAAAAAAA", theirs["id"]):
            self.assertError(self.put(webhook_id, {"description": "x"}), 404,
                             "record-not-found", "Webhook was not found")
        self.assertIsNone(self.stored(theirs["id"])["description"])
        self.assertError(self.put(theirs["id"], {"description": "x"}, token=None), 401,
                         "token-not-provided")

    def test_ad_hoc_to_normal_counts_against_the_limit(self):
        self.emu.configure(max_webhooks=1)
        self.create()
        ad_hoc = self.create(isAdHoc=True, condition={"actorRunId": "r"})
        self.assertError(self.put(ad_hoc["id"], {"isAdHoc": False}), 403, "too-many-webhooks",
                         "You have reached the maximum number of webhooks (1)")
        self.assertIs(self.stored(ad_hoc["id"])["isAdHoc"], True)

    def test_update_moves_the_webhook_between_scoped_lists(self):
        created = self.create(condition={"actorId": "ActorOne"})
        self.put(created["id"], {"condition": {"actorId": "ActorTwo", "actorTaskId": "TaskOne"}})
        self.assertEqual(self.page("/v2/actors/ActorOne/webhooks")["total"], 0)
        self.assertEqual([w["id"] for w in self.page("/v2/actors/ActorTwo/webhooks")["items"]],
                         [created["id"]])
        self.assertEqual(self.page("/v2/actor-tasks/TaskOne/webhooks")["total"], 1)


class Delete(LifeCase):

    def test_delete_then_gone_everywhere(self):
        kept = self.create(condition={"actorId": "A1"})
        gone = self.create(condition={"actorId": "A1", "actorTaskId": "T1"})
        reply = call(self.emu, "DELETE", f"/v2/webhooks/{gone['id']}")
        self.assertEqual((reply.status, reply.body), (204, b""))
        self.assertNotIn("content-type", reply.headers)
        self.assertEqual([w["id"] for w in self.emu.webhooks()], [kept["id"]])
        self.assertEqual([w["id"] for w in self.page("/v2/actors/A1/webhooks")["items"]],
                         [kept["id"]])
        self.assertEqual(self.page("/v2/actor-tasks/T1/webhooks")["total"], 0)
        self.assertError(call(self.emu, "DELETE", f"/v2/webhooks/{gone['id']}"), 404,
                         "record-not-found", "Webhook was not found")
        self.assertEqual(self.emu.log()[1]["webhookId"], gone["id"])


class DeletedKeys(LifeCase):
    """The three answers a POST may get with the key of a deleted webhook."""

    def delete_keyed(self):
        first = self.create(idempotencyKey="dk", description="first")
        self.assertEqual(call(self.emu, "DELETE", f"/v2/webhooks/{first['id']}").status, 204)
        return first

    def test_free_is_the_default(self):
        self.assertEqual(self.emu.config()["deleted_keys"], "free")
        first = self.delete_keyed()
        second = self.create(idempotencyKey="dk", description="second")
        self.assertNotEqual(second["id"], first["id"])
        self.assertEqual([(w["id"], w["idempotencyKey"]) for w in self.emu.webhooks()],
                         [(second["id"], "dk")])
        # The key now belongs to the new webhook.
        self.assertEqual(self.create(idempotencyKey="dk")["id"], second["id"])
        self.assertEqual(self.emu.state()["deletedWebhooks"], [])

    def test_keep_answers_with_the_deleted_webhook(self):
        self.emu.configure(deleted_keys="keep")
        first = self.delete_keyed()
        reply = self.post(webhook(idempotencyKey="dk", description="second"))
        self.assertEqual(self.assertCreated(reply), first)
        self.assertEqual(reply.headers["location"], f"{self.emu.base_url}/v2/webhooks/{first['id']}")
        self.assertEqual(self.emu.webhooks(), [])
        self.assertEqual([w["id"] for w in self.emu.state()["deletedWebhooks"]], [first["id"]])
        self.assertError(call(self.emu, "GET", f"/v2/webhooks/{first['id']}"), 404,
                         "record-not-found")
        self.assertEqual(self.page("/v2/webhooks")["items"], [])
        # Another user's same key is unrelated.
        other = self.create(token="second-token", idempotencyKey="dk")
        self.assertNotEqual(other["id"], first["id"])

    def test_refuse_answers_409(self):
        self.emu.configure(deleted_keys="refuse")
        self.delete_keyed()
        self.assertError(self.post(webhook(idempotencyKey="dk")), 409, "idempotency-key-conflict",
                         "The idempotency key belongs to a deleted webhook")
        self.assertEqual(self.emu.webhooks(), [])
        self.assertCreated(self.post(webhook(idempotencyKey="dk2")))   # other keys still work

    def test_flag_and_bad_value(self):
        with Emulator(deleted_keys="refuse") as emu:
            first = call(emu, "POST", "/v2/webhooks", webhook(idempotencyKey="k")).json()["data"]
            call(emu, "DELETE", f"/v2/webhooks/{first['id']}")
            self.assertEqual(call(emu, "POST", "/v2/webhooks", webhook(idempotencyKey="k")).status,
                             409)
        with self.assertRaises(RuntimeError):
            self.emu.configure(deleted_keys="forget")


class ScopedLists(LifeCase):

    def test_actor_and_task_lists(self):
        a1 = self.create(condition={"actorId": "ActorOne"})
        a2 = self.create(condition={"actorId": "ActorTwo"})
        t1 = self.create(condition={"actorId": "ActorOne", "actorTaskId": "TaskOne"},
                         description="with a task", payloadTemplate='{"r": {{resource}}}')
        r1 = self.create(condition={"actorRunId": "RunOne"}, isAdHoc=True)
        self.create(token="second-token", condition={"actorId": "ActorOne", "actorTaskId": "TaskOne"})
        for prefix in ("actors", "acts"):
            with self.subTest(prefix):
                data = self.page(f"/v2/{prefix}/ActorOne/webhooks")
                self.assertEqual({k: data[k] for k in ("total", "offset", "limit", "desc", "count")},
                                 {"total": 2, "offset": 0, "limit": 1000, "desc": False, "count": 2})
                self.assertEqual([w["id"] for w in data["items"]], [a1["id"], t1["id"]])
                self.assertNotIn("payloadTemplate", data["items"][1])   # WebhookShort
                self.assertEqual(data["items"][1]["actionType"], "HTTP_REQUEST")
                desc = self.page(f"/v2/{prefix}/ActorOne/webhooks", "?desc=1&limit=1")
                self.assertEqual([w["id"] for w in desc["items"]], [t1["id"]])
        self.assertEqual([w["id"] for w in self.page("/v2/actors/ActorTwo/webhooks")["items"]],
                         [a2["id"]])
        tasks = self.page("/v2/actor-tasks/TaskOne/webhooks")
        self.assertEqual(tasks["items"], [t1])   # full Webhook items
        self.assertEqual(self.page("/v2/actors/NoSuchActor/webhooks")["total"], 0)
        self.assertEqual([w["id"] for w in self.page("/v2/webhooks")["items"]],
                         [a1["id"], a2["id"], t1["id"], r1["id"]])

    def test_scoped_lists_need_auth_and_get(self):
        self.assertError(call(self.emu, "GET", "/v2/actors/A/webhooks", token=None), 401,
                         "token-not-provided")
        self.assertError(call(self.emu, "POST", "/v2/actors/A/webhooks", VALID), 405,
                         "method-not-allowed")
        self.assertError(call(self.emu, "GET", "/v2/actor-tasks/T/webhooks?offset=x"), 400,
                         "invalid-input", 'Parameter "offset" must be a number')


class Seeding(LifeCase):
    """POST /_emulator/seed, and paging over what it made."""

    def walk(self, path, n, page_size, desc):
        """Every item of a list, page by page; checks each page's numbers."""
        ids, offset = [], 0
        while True:
            data = self.page(path, f"?offset={offset}&limit={page_size}&desc={int(desc)}")
            self.assertEqual((data["total"], data["offset"], data["limit"], data["desc"]),
                             (n, offset, page_size, desc))
            self.assertEqual(data["count"], len(data["items"]))
            self.assertEqual(data["count"], max(0, min(page_size, n - offset)))
            if not data["items"]:
                return ids
            ids += [item["id"] for item in data["items"]]
            offset += page_size

    def test_paging_over_2500_webhooks_and_dispatches(self):
        seeded = self.emu.seed(2500, {"condition": {"actorId": "PagedActor"}}, dispatches=2500)
        ids, dispatch_ids = seeded["webhookIds"], seeded["dispatchIds"]
        self.assertEqual((len(set(ids)), len(set(dispatch_ids))), (2500, 2500))
        for desc in (False, True):
            expected = ids[::-1] if desc else ids
            self.assertEqual(self.walk("/v2/webhooks", 2500, 1000, desc), expected)
            self.assertEqual(self.walk("/v2/actors/PagedActor/webhooks", 2500, 333, desc), expected)
            expected = dispatch_ids[::-1] if desc else dispatch_ids
            self.assertEqual(self.walk("/v2/webhook-dispatches", 2500, 1000, desc), expected)
            self.assertEqual(self.walk(f"/v2/webhooks/{ids[0]}/dispatches", 2500, 700, desc),
                             expected)
        self.assertEqual(self.page(f"/v2/webhooks/{ids[1]}/dispatches")["total"], 0)
        first = call(self.emu, "GET", f"/v2/webhooks/{ids[0]}").json()["data"]
        self.assertEqual(first["stats"], {"totalDispatches": 2500})
        self.assertEqual(first["lastDispatch"]["status"], "SUCCEEDED")
        one = call(self.emu, "GET", f"/v2/webhook-dispatches/{dispatch_ids[7]}").json()["data"]
        self.assertEqual((one["webhookId"], one["status"], one["eventType"]),
                         (ids[0], "SUCCEEDED", "ACTOR.RUN.SUCCEEDED"))
        counts = self.emu.counts()
        self.assertEqual((counts["webhooks"], counts["dispatches"], counts["requests"]),
                         (2500, 2500, len(self.emu.log())))

    def test_seed_fields_and_suffix(self):
        seeded = self.emu.seed(3, {"requestUrl": "https://example.com/h", "idempotencyKey": "s",
                                   "condition": {"actorId": "A", "actorTaskId": "T"}}, suffix=True)
        stored = self.emu.webhooks()
        self.assertEqual([w["id"] for w in stored], seeded["webhookIds"])
        self.assertEqual([(w["requestUrl"], w["condition"], w["idempotencyKey"]) for w in stored], [
            (f"https://example.com/h{i}", {"actorId": f"A{i}", "actorTaskId": f"T{i}"}, f"s{i}")
            for i in range(3)])
        # The seeded keys are real idempotency keys, and no webhook limit applied.
        self.assertEqual(self.create(idempotencyKey="s1")["id"], seeded["webhookIds"][1])
        self.emu.seed(200)
        self.assertEqual(self.emu.counts()["webhooks"], 203)
        self.assertEqual(self.emu.log()[0]["method"], "POST")   # seeding is not logged
        self.assertEqual(len(self.emu.log()), 1)

    def test_seed_refuses_bad_input(self):
        for body in ({"token": "nope", "count": 1}, {"token": TOKEN, "count": -1},
                     {"token": TOKEN, "count": 1, "webhook": {"eventTypes": ["X"]}},
                     {"token": TOKEN, "count": 2, "webhook": {"idempotencyKey": "same"}}):
            with self.subTest(body), self.assertRaises(RuntimeError) as caught:
                self.emu._control("POST", "/_emulator/seed", body)
            self.assertIn("400", str(caught.exception))
        self.assertEqual(self.emu.webhooks(), [])
        # A key that is taken refuses the whole batch: nothing is stored.
        taken = self.create(idempotencyKey="t2")
        reply = call(self.emu, "POST", "/_emulator/seed", {
            "token": TOKEN, "count": 3, "webhook": {"idempotencyKey": "t"}, "suffix": True})
        self.assertEqual((reply.status, reply.json()), (400, {"error": {
            "type": "invalid-config", "message": "idempotency key 't2' is taken"}}))
        self.assertEqual([w["id"] for w in self.emu.webhooks()], [taken["id"]])

    def test_20000_webhooks_cost_the_page_not_the_list(self):
        self.emu.seed(20000, {"condition": {"actorId": "Big"}})
        started = time.monotonic()
        for _ in range(20):
            data = self.page("/v2/webhooks", "?offset=19990&limit=5&desc=1")
            self.assertEqual((data["total"], data["count"]), (20000, 5))
        self.emu.configure(max_webhooks=30000)
        for i in range(20):
            self.create(idempotencyKey=f"after-{i}")
        elapsed = time.monotonic() - started
        # A scan of 20,000 webhooks per request takes ~2-5 ms each in CPython; 40 requests
        # of an O(page) server take well under this bound even on a slow machine.
        self.assertLess(elapsed, 4.0)
        self.assertEqual(self.page("/v2/webhooks", "?limit=1")["total"], 20020)


class RateLimitEveryRequest(LifeCase):

    def test_every_method_and_path_counts(self):
        created = self.create()
        self.emu.configure(rate_limit=4)
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=HTTP_TIMEOUT)
        try:
            statuses = [send(conn, "GET", "/v2/webhooks").status,
                        send(conn, "GET", f"/v2/webhooks/{created['id']}").status,
                        send(conn, "PUT", f"/v2/webhooks/{created['id']}", {"description": "x"}).status,
                        send(conn, "GET", "/v2/webhook-dispatches").status,
                        send(conn, "DELETE", f"/v2/webhooks/{created['id']}").status,
                        send(conn, "POST", "/v2/webhooks", VALID).status]
        finally:
            conn.close()
        self.assertEqual(statuses, [200, 200, 200, 200, 429, 429])
        self.assertEqual(len(self.emu.webhooks()), 1)
        self.assertError(call(self.emu, "GET", "/v2/actors/A/webhooks"), 429, "rate-limit-exceeded",
                         "You have exceeded the rate limit of 4 requests per second")


class FaultsOnWrites(LifeCase):

    def test_5xx_and_429_before_anything_is_done(self):
        created = self.create()
        self.emu.configure(script=["500", "503", "429"])
        self.assertError(self.put(created["id"], {"description": "x"}), 500, "internal-server-error")
        self.assertError(call(self.emu, "DELETE", f"/v2/webhooks/{created['id']}"), 503,
                         "internal-server-error")
        self.assertError(call(self.emu, "POST", f"/v2/webhooks/{created['id']}/test"), 429,
                         "rate-limit-exceeded")
        self.assertIsNone(self.stored(created["id"])["description"])
        self.assertEqual(self.emu.dispatches(), [])
        self.assertEqual([e.get("action") for e in self.emu.log()], ["ok", "500", "503", "429"])

    def test_cut_after_apply(self):
        created = self.create()
        self.emu.configure(script=["cut", "cut", "cut"])
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.put(created["id"], {"description": "applied"})
        self.assertEqual(self.stored(created["id"])["description"], "applied")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            call(self.emu, "POST", f"/v2/webhooks/{created['id']}/test")
        self.assertEqual(len(self.emu.dispatches()), 1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            call(self.emu, "DELETE", f"/v2/webhooks/{created['id']}")
        self.assertEqual(self.emu.webhooks(), [])
        self.assertEqual([e["status"] for e in self.emu.log()], [201, "cut", "cut", "cut"])
        # The retry of the lost DELETE finds nothing: 404, which a client must take as done.
        self.assertError(call(self.emu, "DELETE", f"/v2/webhooks/{created['id']}"), 404,
                         "record-not-found")

    def test_malformed_and_slow(self):
        created = self.create()
        self.emu.configure(script=["malformed", "slow", "malformed"], slow_ms=300)
        reply = self.put(created["id"], {"description": "m"})
        self.assertEqual(reply.status, 200)
        with self.assertRaises(ValueError):
            reply.json()
        started = time.monotonic()
        self.assertEqual(self.put(created["id"], {"description": "s"}).json()["data"]["description"],
                         "s")
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        reply = call(self.emu, "DELETE", f"/v2/webhooks/{created['id']}")
        self.assertEqual((reply.status, reply.body), (200, b'{"data"'))
        self.assertEqual(self.emu.webhooks(), [])

    def test_errors_in_a_scripted_cut_slot(self):
        self.emu.configure(script=["cut", "cut"])
        self.assertError(self.put("AAAAAAAAAAAAAAAAA", {"description": "x"}), 404, "record-not-found")
        self.assertError(call(self.emu, "DELETE", "/v2/webhooks/AAAAAAAAAAAAAAAAA"), 404,
                         "record-not-found")

    def test_random_faults_reach_put_and_delete(self):
        ids = self.emu.seed(40)["webhookIds"]
        self.emu.configure(seed=3, fail_5xx=0.5)
        statuses = [call(self.emu, "DELETE", f"/v2/webhooks/{i}").status for i in ids]
        self.assertEqual(set(statuses), {204, 500})
        self.assertEqual(len(self.emu.webhooks()), statuses.count(500))


class DispatchCase(LifeCase):
    """A receiver on 127.0.0.1 for each test, and helpers."""

    def setUp(self):
        super().setUp()
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)

    def run_test(self, webhook_id, **kwargs):
        """POST /v2/webhooks/{id}/test."""
        return call(self.emu, "POST", f"/v2/webhooks/{webhook_id}/test", **kwargs)

    def record(self, dispatch_id):
        """The emulator's record of a dispatch: variables, payload, headers, sent."""
        return {d["id"]: d for d in self.emu.dispatches()}[dispatch_id]


class Dispatches(DispatchCase):
    """POST /v2/webhooks/{id}/test and events, delivered to a receiver on 127.0.0.1."""

    def test_test_dispatch_succeeds(self):
        created = self.create(requestUrl=self.receiver.url + "/hook?x=1",
                              condition={"actorId": "ActorOne", "actorTaskId": "TaskOne"})
        reply = self.run_test(created["id"])
        self.assertEqual(reply.status, 201, reply)
        dispatch = reply.json()["data"]
        self.assertEqual(set(dispatch), {"id", "userId", "webhookId", "createdAt", "status",
                                         "eventType", "eventData", "webhook", "calls"})
        self.assertRegex(dispatch["id"], ID_RE)
        self.assertRegex(dispatch["createdAt"], TIME_RE)
        self.assertEqual((dispatch["userId"], dispatch["webhookId"], dispatch["status"],
                          dispatch["eventType"]),
                         (created["userId"], created["id"], "SUCCEEDED", "TEST"))
        self.assertEqual(dispatch["eventData"], {"actorId": "ActorOne", "actorTaskId": "TaskOne",
                                                 "actorRunId": "TestRunIdAbcdefgh"})
        self.assertEqual(dispatch["webhook"], {"actionType": "HTTP_REQUEST",
                                               "condition": created["condition"],
                                               "requestUrl": created["requestUrl"], "isAdHoc": False})
        [c] = dispatch["calls"]
        self.assertEqual((c["responseStatus"], c["responseBody"], c["errorMessage"]),
                         (200, "thanks", None))
        self.assertRegex(c["startedAt"], TIME_RE)
        self.assertLessEqual(c["startedAt"], c["finishedAt"])

        [received] = self.receiver.requests
        self.assertEqual(received["path"], "/hook?x=1")
        sent = self.record(dispatch["id"])
        self.assertEqual(received["body"].decode(), sent["payload"])
        self.assertTrue(sent["sent"])
        self.assertEqual(json.loads(sent["payload"]), {
            "userId": created["userId"], "createdAt": dispatch["createdAt"], "eventType": "TEST",
            "eventData": dispatch["eventData"],
            "resource": {"id": "TestRunIdAbcdefgh", "actId": "ActorOne", "userId": created["userId"],
                         "status": "SUCCEEDED", "startedAt": "2026-01-01T12:00:00.000Z",
                         "finishedAt": "2026-01-01T12:01:00.000Z",
                         "defaultDatasetId": "TestDatasetIdAbcd",
                         "defaultKeyValueStoreId": "TestKvStoreIdAbcd",
                         "defaultRequestQueueId": "TestRqIdAbcdefghi"}})
        self.assertEqual(sent["variables"]["globals"], {})
        self.assertEqual(sent["headers"], [["Content-Type", "application/json"],
                                           ["X-Apify-Webhook", created["id"]],
                                           ["X-Apify-Webhook-Dispatch-Id", dispatch["id"]],
                                           ["X-Apify-Request-Origin", "APIFY"]])
        self.assertEqual([h for h in received["headers"] if h[0] not in ("Host", "Content-Length")],
                         [tuple(h) for h in sent["headers"]])

        stored = call(self.emu, "GET", f"/v2/webhooks/{created['id']}").json()["data"]
        self.assertEqual(stored["lastDispatch"], {"status": "SUCCEEDED", "finishedAt": c["finishedAt"]})
        self.assertEqual(stored["stats"], {"totalDispatches": 1})
        self.assertEqual(call(self.emu, "GET", f"/v2/webhook-dispatches/{dispatch['id']}").json(),
                         {"data": dispatch})
        self.assertEqual(self.page(f"/v2/webhooks/{created['id']}/dispatches")["items"], [dispatch])
        self.assertEqual(self.emu.log()[-4]["dispatchId"], dispatch["id"])

    def test_receiver_answering_500(self):
        self.receiver.status, self.receiver.body = 500, ("é" * 1500).encode()
        created = self.create(requestUrl=self.receiver.url, doNotRetry=False)
        dispatch = self.run_test(created["id"]).json()["data"]
        self.assertEqual(dispatch["status"], "FAILED")
        [c] = dispatch["calls"]
        self.assertEqual((c["responseStatus"], c["responseBody"], c["errorMessage"]),
                         (500, "é" * 1000, None))
        self.assertEqual(len(self.receiver.requests), 1)   # never retried
        self.assertEqual(self.emu.webhooks()[0]["lastDispatch"]["status"], "FAILED")

    def test_non_loopback_is_never_contacted(self):
        # 192.0.2.1 (TEST-NET-1) would hang a connect; example.invalid cannot resolve.
        for url in ("http://192.0.2.1:9/hook", "https://example.invalid/hook",
                    "http://10.0.0.1/", "http://127.0.0.1.nip.io/"):
            with self.subTest(url):
                created = self.create(requestUrl=url)
                started = time.monotonic()
                dispatch = self.run_test(created["id"]).json()["data"]
                self.assertLess(time.monotonic() - started, 1.0)
                self.assertEqual(dispatch["status"], "FAILED")
                [c] = dispatch["calls"]
                self.assertEqual((c["errorMessage"], c["responseStatus"], c["responseBody"]), (
                    "not delivered: the emulator delivers only to loopback addresses", None, None))
                self.assertIs(self.record(dispatch["id"])["sent"], False)
        self.assertEqual(self.receiver.requests, [])

    def test_localhost_and_other_loopback_addresses(self):
        port = self.receiver.url.rsplit(":", 1)[1]
        for host in ("localhost", "127.0.0.1"):
            created = self.create(requestUrl=f"http://{host}:{port}/h")
            self.assertEqual(self.run_test(created["id"]).json()["data"]["status"], "SUCCEEDED", host)
        self.assertEqual(len(self.receiver.requests), 2)
        # 127.0.0.2 is loopback too; nobody listens there on that port.
        created = self.create(requestUrl=f"http://127.0.0.2:{harness.closed_port()}/h")
        [c] = self.run_test(created["id"]).json()["data"]["calls"]
        self.assertIsNone(c["responseStatus"])
        self.assertNotEqual(c["errorMessage"],
                            "not delivered: the emulator delivers only to loopback addresses")

    def test_connection_refused_and_timeout(self):
        created = self.create(requestUrl=f"http://127.0.0.1:{harness.closed_port()}/")
        dispatch = self.run_test(created["id"]).json()["data"]
        self.assertEqual(dispatch["status"], "FAILED")
        self.assertIn("refused", dispatch["calls"][0]["errorMessage"].lower())
        self.emu.configure(delivery_timeout_ms=200)
        self.receiver.delay = 1.0
        created = self.create(requestUrl=self.receiver.url)
        started = time.monotonic()
        dispatch = self.run_test(created["id"]).json()["data"]
        self.assertLess(time.monotonic() - started, 0.9)
        self.assertEqual(dispatch["status"], "FAILED")
        self.assertEqual(dispatch["calls"][0]["errorMessage"], "timed out")

    def test_unknown_webhook_and_other_users(self):
        self.assertError(self.run_test("AAAAAAAAAAAAAAAAA"), 404, "record-not-found")
        theirs = self.create(token="second-token", requestUrl=self.receiver.url)
        self.assertError(self.run_test(theirs["id"]), 404, "record-not-found")
        dispatch = self.run_test(theirs["id"], token="second-token").json()["data"]
        self.assertError(call(self.emu, "GET", f"/v2/webhook-dispatches/{dispatch['id']}"), 404,
                         "record-not-found", "Webhook dispatch was not found")
        self.assertError(call(self.emu, "GET", f"/v2/webhooks/{theirs['id']}/dispatches"), 404,
                         "record-not-found")
        self.assertEqual(self.page("/v2/webhook-dispatches")["total"], 0)
        self.assertEqual(len(self.receiver.requests), 1)

    def test_dispatches_of_a_deleted_webhook_stay_listed(self):
        created = self.create(requestUrl=self.receiver.url)
        dispatch = self.run_test(created["id"]).json()["data"]
        call(self.emu, "DELETE", f"/v2/webhooks/{created['id']}")
        self.assertEqual(self.page("/v2/webhook-dispatches")["items"], [dispatch])
        self.assertError(call(self.emu, "GET", f"/v2/webhooks/{created['id']}/dispatches"), 404,
                         "record-not-found")

    # -- events ------------------------------------------------------------------------------

    def test_events_match_condition_and_event_type(self):
        url = self.receiver.url
        by_actor = self.create(requestUrl=url + "/actor", condition={"actorId": "A1"},
                               eventTypes=["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"])
        by_task = self.create(requestUrl=url + "/task", condition={"actorId": "A1", "actorTaskId": "T1"})
        self.create(requestUrl=url + "/other-task", condition={"actorTaskId": "T2"})
        self.create(requestUrl=url + "/failed-only", condition={"actorId": "A1"},
                    eventTypes=["ACTOR.RUN.FAILED"])
        self.create(token="second-token", requestUrl=url + "/theirs", condition={"actorId": "A1"})
        run = {"id": "RunIdAbcdefghijkl", "actId": "A1", "status": "SUCCEEDED"}
        dispatches = self.emu.event("ACTOR.RUN.SUCCEEDED",
                                    {"actorId": "A1", "actorTaskId": "T1", "actorRunId": run["id"]},
                                    resource=run, created_at="2026-05-05T05:05:05.005Z")
        self.assertEqual([d["webhookId"] for d in dispatches], [by_actor["id"], by_task["id"]])
        self.assertEqual({d["status"] for d in dispatches}, {"SUCCEEDED"})
        self.assertEqual([r["path"] for r in self.receiver.requests], ["/actor", "/task"])
        body = json.loads(self.receiver.requests[0]["body"])
        self.assertEqual(body, {"userId": by_actor["userId"], "createdAt": "2026-05-05T05:05:05.005Z",
                                "eventType": "ACTOR.RUN.SUCCEEDED",
                                "eventData": {"actorId": "A1", "actorTaskId": "T1",
                                              "actorRunId": run["id"]},
                                "resource": run})
        self.assertEqual(dispatches[0]["createdAt"], "2026-05-05T05:05:05.005Z")
        # Without the task, only the actor's webhook matches; FAILED reaches two.
        self.assertEqual(len(self.emu.event("ACTOR.RUN.SUCCEEDED", {"actorId": "A1"})), 1)
        self.assertEqual(len(self.emu.event("ACTOR.RUN.FAILED", {"actorId": "A1"})), 2)
        self.assertEqual(self.emu.event("ACTOR.BUILD.SUCCEEDED", {"actorId": "A1"}), [])
        self.assertEqual(len(self.receiver.requests), 5)
        self.assertEqual(self.stored(by_actor["id"])["stats"], {"totalDispatches": 3})

    def test_ad_hoc_fires_once(self):
        ad_hoc = self.create(requestUrl=self.receiver.url, isAdHoc=True,
                             condition={"actorRunId": "RunOne"})
        normal = self.create(requestUrl=self.receiver.url, condition={"actorRunId": "RunOne"})
        first = self.emu.event("ACTOR.RUN.SUCCEEDED", {"actorId": "A", "actorRunId": "RunOne"})
        self.assertEqual([d["webhookId"] for d in first], [ad_hoc["id"], normal["id"]])
        self.assertIs(first[0]["webhook"]["isAdHoc"], True)
        again = self.emu.event("ACTOR.RUN.SUCCEEDED", {"actorId": "A", "actorRunId": "RunOne"})
        self.assertEqual([d["webhookId"] for d in again], [normal["id"]])
        self.assertEqual(len(self.receiver.requests), 3)

    def test_event_refuses_bad_input(self):
        for body in ({"token": "nope", "eventType": "TEST", "eventData": {}},
                     {"token": TOKEN, "eventType": "ACTOR.RUN.EXPLODED", "eventData": {}},
                     {"token": TOKEN, "eventType": "TEST", "eventData": []}):
            with self.subTest(body), self.assertRaises(RuntimeError) as caught:
                self.emu._control("POST", "/_emulator/events", body)
            self.assertIn("400", str(caught.exception))


class Rendering(DispatchCase):
    """What is sent, feature by feature (the extension's apify_preview_dispatch() must agree)."""

    def send_test(self, **fields):
        created = self.create(requestUrl=self.receiver.url, **fields)
        self.receiver.requests.clear()
        dispatch = self.run_test(created["id"]).json()["data"]
        return created, dispatch, self.record(dispatch["id"])

    def test_default_payload_text(self):
        for template in (None, ""):
            with self.subTest(template):
                created, dispatch, sent = self.send_test(payloadTemplate=template,
                                                         condition={"actorRunId": "RunX"})
                expected = (
                    '{"userId": "%s", "createdAt": "%s", "eventType": "TEST", "eventData": '
                    '{"actorRunId":"RunX"}, "resource": {"id":"TestRunIdAbcdefgh","actId":'
                    '"TestActorIdAbcdef","userId":"%s","status":"SUCCEEDED","startedAt":'
                    '"2026-01-01T12:00:00.000Z","finishedAt":"2026-01-01T12:01:00.000Z",'
                    '"defaultDatasetId":"TestDatasetIdAbcd","defaultKeyValueStoreId":'
                    '"TestKvStoreIdAbcd","defaultRequestQueueId":"TestRqIdAbcdefghi"}}'
                    % (created["userId"], dispatch["createdAt"], created["userId"]))
                self.assertEqual(sent["payload"], expected)
                self.assertEqual(self.receiver.requests[0]["body"], expected.encode())

    def test_placeholders_outside_strings(self):
        template = ('{\n  "run" :{{ resource.id }},\t"data": {{eventData}}, "n": [1, {{globals}}],'
                    ' "keep": "{{resource.id}} \\" stays",  "e": {{eventType}} }')
        _, _, sent = self.send_test(payloadTemplate=template, condition={"actorId": "ActorÄ"})
        self.assertEqual(sent["payload"],
                         '{\n  "run" :"TestRunIdAbcdefgh",\t"data": {"actorId":"ActorÄ",'
                         '"actorRunId":"TestRunIdAbcdefgh"}, "n": [1, {}], "keep": '
                         '"{{resource.id}} \\" stays",  "e": "TEST" }')
        self.assertEqual(self.receiver.requests[0]["body"], sent["payload"].encode("utf-8"))

    def test_interpolation_inside_strings(self):
        template = ('{"msg": "run {{resource.id}} by {{userId}}", "obj": "{{eventData}}",'
                    ' "spaced": "{{ userId }}", "top": {{resource.status}}}')
        created, _, sent = self.send_test(payloadTemplate=template, shouldInterpolateStrings=True,
                                          condition={"actorId": 'say "hi"\n'})
        self.assertEqual(sent["payload"], (
            '{"msg": "run TestRunIdAbcdefgh by %s", "obj": "{\\"actorId\\":\\"say \\\\\\"hi\\\\\\"'
            '\\\\n\\",\\"actorRunId\\":\\"TestRunIdAbcdefgh\\"}", "spaced": "{{ userId }}",'
            ' "top": "SUCCEEDED"}' % created["userId"]))
        self.assertEqual(json.loads(sent["payload"])["obj"],
                         json.dumps({"actorId": 'say "hi"\n', "actorRunId": "TestRunIdAbcdefgh"},
                                    separators=(",", ":")))

    def test_interpolation_off_leaves_strings_alone(self):
        template = '{"msg": "run {{resource.id}}", "id": {{resource.id}}}'
        _, _, sent = self.send_test(payloadTemplate=template)
        self.assertEqual(sent["payload"], '{"msg": "run {{resource.id}}", "id": "TestRunIdAbcdefgh"}')

    def test_headers_template_and_platform_overrides(self):
        created, dispatch, sent = self.send_test(
            shouldInterpolateStrings=True,
            headersTemplate='{"X-Run": "{{resource.id}}", "content-TYPE": "text/plain", '
                            '"x-apify-webhook": "fake", "X-Status": {{resource.status}}, '
                            '"X-APIFY-REQUEST-ORIGIN": "me", "X-Last": "v é"}')
        self.assertEqual(sent["headers"], [
            ["X-Run", "TestRunIdAbcdefgh"], ["X-Status", "SUCCEEDED"], ["X-Last", "v é"],
            ["Content-Type", "application/json"], ["X-Apify-Webhook", created["id"]],
            ["X-Apify-Webhook-Dispatch-Id", dispatch["id"]], ["X-Apify-Request-Origin", "APIFY"]])
        received = self.receiver.requests[0]["headers"]
        self.assertEqual([name for name, _ in received],
                         ["Host", "X-Run", "X-Status", "X-Last", "Content-Type", "X-Apify-Webhook",
                          "X-Apify-Webhook-Dispatch-Id", "X-Apify-Request-Origin", "Content-Length"])
        # http.server decodes header bytes as latin-1: the value went out as UTF-8.
        self.assertEqual(dict(received)["X-Last"].encode("latin-1").decode("utf-8"), "v é")
        self.assertEqual(dispatch["status"], "SUCCEEDED")

    def test_missing_path_sends_nothing(self):
        cases = [
            ({"payloadTemplate": '{"a": {{resource.nope}}}'},
             'payloadTemplate: {{resource.nope}} has no value: resource has no member "nope"'),
            ({"payloadTemplate": '{"a": {{ resource.status.deep }}}'},
             'payloadTemplate: {{resource.status.deep}} has no value: resource.status has no '
             'member "deep"'),
            ({"payloadTemplate": '{"a": {{globals.key}}}'},
             'payloadTemplate: {{globals.key}} has no value: globals has no member "key"'),
            ({"shouldInterpolateStrings": True, "headersTemplate": '{"A": "x {{eventData.actorTaskId}}"}'},
             'headersTemplate: {{eventData.actorTaskId}} has no value: eventData has no member '
             '"actorTaskId"'),
        ]
        for fields, message in cases:
            with self.subTest(fields):
                _, dispatch, sent = self.send_test(**fields)
                self.assertEqual(dispatch["status"], "FAILED")
                [c] = dispatch["calls"]
                self.assertEqual((c["errorMessage"], c["responseStatus"]), (message, None))
                self.assertEqual((sent["payload"], sent["headers"], sent["sent"]), (None, None, False))
        self.assertEqual(self.receiver.requests, [])

    def test_event_variables_render(self):
        created = self.create(requestUrl=self.receiver.url, condition={"actorId": "A"},
                              payloadTemplate='{"ds": {{resource.defaultDatasetId}}, '
                                              '"t": {{createdAt}}, "u": {{userId}}}')
        [dispatch] = self.emu.event("ACTOR.RUN.SUCCEEDED", {"actorId": "A", "actorRunId": "R"},
                                    resource={"defaultDatasetId": "DsIdAbcdefghijklm"},
                                    created_at="2026-02-03T04:05:06.007Z")
        self.assertEqual(self.receiver.requests[0]["body"].decode(),
                         '{"ds": "DsIdAbcdefghijklm", "t": "2026-02-03T04:05:06.007Z", "u": "%s"}'
                         % created["userId"])
        self.assertEqual(self.record(dispatch["id"])["variables"]["resource"],
                         {"defaultDatasetId": "DsIdAbcdefghijklm"})


class CommandLine(unittest.TestCase):

    def run_emulator(self, *args):
        return subprocess.run([sys.executable, str(ROOT / "tests" / "emulator.py"), *args],
                              capture_output=True, text=True, timeout=20)

    def test_refuses_a_non_loopback_host(self):
        for host in ("0.0.0.0", "192.168.1.10", "example.com"):
            with self.subTest(host):
                result = self.run_emulator("--host", host)
                self.assertEqual(result.returncode, 2)
                self.assertIn("not a loopback address", result.stderr)
                self.assertEqual(result.stdout, "")

    def test_refuses_bad_knobs(self):
        result = self.run_emulator("--fail-5xx", "1.5")
        self.assertEqual(result.returncode, 2)
        self.assertIn("fail_5xx must be a number from 0 to 1", result.stderr)
        result = self.run_emulator("--script", "ok,explode")
        self.assertEqual(result.returncode, 2)

    def test_stops_cleanly_on_sigterm_and_sigint(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig):
                emu = Emulator()
                conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=HTTP_TIMEOUT)
                send(conn, "GET", "/v2/webhooks")   # an idle keep-alive connection stays open
                emu.process.send_signal(sig)
                self.assertEqual(emu.process.wait(timeout=10), 0, emu.stderr_text())
                conn.close()
                emu.stop()
                self.assertEqual(emu.stderr_text(), "")

    def test_fixed_port_and_listening_line(self):
        with Emulator() as first:
            # The port is taken now: a second emulator on it must fail, not listen elsewhere.
            result = self.run_emulator("--port", str(first.port))
            self.assertNotEqual(result.returncode, 0)
            self.assertNotIn("listening on", result.stdout)
        self.assertRegex(first.base_url, r"\Ahttp://127\.0\.0\.1:\d+\Z")

    def test_harness_rejects_unknown_knobs(self):
        with self.assertRaises(TypeError):
            Emulator(rate_limt=5)


class OfficialJsClient(unittest.TestCase):
    """The official JavaScript client (npm apify-client) talks to the emulator: create, and a
    webhook's whole life (get, update, list, test, dispatches, delete)."""

    JS_DIR = ROOT / "tests" / "js"

    @classmethod
    def setUpClass(cls):
        if shutil.which("node") is None:
            raise unittest.SkipTest("node is not installed: the official JavaScript client "
                                    "cannot run (Debian: apt-get install nodejs npm)")
        if not (cls.JS_DIR / "node_modules" / "apify-client").is_dir():
            npm = shutil.which("npm")
            if npm is None:
                raise unittest.SkipTest("npm is not installed: cannot install apify-client")
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=cls.JS_DIR,
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise AssertionError(f"npm ci failed in tests/js:\n{result.stdout}\n{result.stderr}")
        cls.emu = Emulator()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.reset()

    def run_client(self, *args):
        result = subprocess.run(
            ["node", str(self.JS_DIR / "create_webhook.mjs"), "--actor-id", "HDSasDasz78YcAPEB",
             "--request-url", "https://example.com/js-hook", *args],
            env=self.emu.env(), capture_output=True, text=True, timeout=60)
        return result

    def test_create_get_list(self):
        # A body of 1,024 bytes or more is compressed by the client (brotli when Node has it).
        big = bool(brotli_decoder())
        description = "d" * 2000 if big else "short"
        result = self.run_client("--idempotency-key", "js-key-1", "--description", description)
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = json.loads(result.stdout)
        stored = self.emu.webhooks()
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored[0]["id"], printed["id"])
        self.assertEqual(stored[0]["idempotencyKey"], "js-key-1")
        self.assertEqual(stored[0]["description"], description)
        self.assertEqual(stored[0]["requestUrl"], "https://example.com/js-hook")

        log = self.emu.log()
        self.assertEqual([(e["method"], e["status"]) for e in log],
                         [("POST", 201), ("GET", 200), ("GET", 200)])
        for entry in log:
            self.assertTrue(header(entry, "User-Agent").startswith("ApifyClient/"), entry)
            self.assertEqual(header(entry, "Authorization"), "Bearer ***")
            self.assertEqual(entry["auth"], "valid")
            self.assertEqual(entry["query"], {} if entry["path"] != "/v2/webhooks" or
                             entry["method"] == "POST" else {"desc": "1"})
        if big:
            self.assertEqual(header(log[0], "Content-Encoding"), "br")

    def test_same_key_twice_is_one_webhook(self):
        first = self.run_client("--idempotency-key", "js-key-2")
        second = self.run_client("--idempotency-key", "js-key-2")
        self.assertEqual((first.returncode, second.returncode), (0, 0), first.stderr + second.stderr)
        self.assertEqual(json.loads(first.stdout)["id"], json.loads(second.stdout)["id"])
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_client_retries_through_faults(self):
        self.emu.configure(script=["503", "cut", "malformed"])
        result = self.run_client("--idempotency-key", "js-key-3")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([e["status"] for e in self.emu.posts()], [503, "cut", 201, 201])
        self.assertEqual([w["idempotencyKey"] for w in self.emu.webhooks()], ["js-key-3"])

    def test_webhook_life_get_update_list_delete(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        result = subprocess.run(
            ["node", str(self.JS_DIR / "webhook_life.mjs"), "--request-url", receiver.url + "/js",
             "--actor-id", "JsActorIdAbcdefgh"],
            env=self.emu.env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        webhook_id = out["created"]["id"]
        self.assertEqual(out["fetched"]["id"], webhook_id)
        self.assertEqual(out["updated"]["description"], "updated by apify-client")
        self.assertEqual(out["updated"]["eventTypes"], ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"])
        self.assertEqual(out["updated"]["requestUrl"], receiver.url + "/js")   # not in the PUT
        self.assertEqual([w["id"] for w in out["list"]["items"]], [webhook_id])
        self.assertEqual((out["dispatch"]["status"], out["dispatch"]["eventType"]),
                         ("SUCCEEDED", "TEST"))
        self.assertEqual(out["allDispatches"]["total"], 1)
        self.assertIsNone(out["afterDelete"])
        self.assertEqual((out["listAfter"]["total"], out["listAfter"]["items"]), (0, []))

        # The emulator saw each call once, and holds what the client asked for.
        log = self.emu.log()
        self.assertEqual([(e["method"], e["path"].replace(webhook_id, "{id}"), e["status"])
                          for e in log], [
            ("POST", "/v2/webhooks", 201), ("GET", "/v2/webhooks/{id}", 200),
            ("PUT", "/v2/webhooks/{id}", 200), ("GET", "/v2/webhooks", 200),
            ("POST", "/v2/webhooks/{id}/test", 201), ("GET", "/v2/webhooks/{id}/dispatches", 200),
            ("GET", "/v2/webhook-dispatches", 200),
            ("GET", f"/v2/webhook-dispatches/{out['dispatch']['id']}", 200),
            ("DELETE", "/v2/webhooks/{id}", 204), ("GET", "/v2/webhooks/{id}", 404),
            ("DELETE", "/v2/webhooks/{id}", 404), ("GET", "/v2/webhooks", 200)])
        self.assertEqual(json.loads(log[2]["body"]), {
            "description": "updated by apify-client",
            "eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"],
            "payloadTemplate": '{"run": {{resource.id}}}'})
        self.assertEqual(header(log[2], "Content-Type").split(";")[0], "application/json")
        self.assertEqual(log[3]["query"], {"desc": "1", "limit": "10"})
        for entry in log:
            self.assertTrue(header(entry, "User-Agent").startswith("ApifyClient/"), entry)
        state = self.emu.state()
        self.assertEqual(state["webhooks"], [])
        self.assertEqual(len(self.emu.dispatches()), 1)
        self.assertEqual([r["body"] for r in receiver.requests], [b'{"run": "TestRunIdAbcdefgh"}'])

    def test_client_reports_api_errors(self):
        result = self.run_client("--token", "not-a-token")
        self.assertEqual(result.returncode, 1)
        self.assertIn("user-or-token-not-found", result.stderr)
        self.assertEqual(self.emu.webhooks(), [])


if __name__ == "__main__":
    unittest.main()
