"""Tests of the local Apify emulator (tests/emulator.py) and of tests/harness.py.

They prove the emulator follows the API rules the extension is tested against: auth, request
format, every validation rule with its exact error, 201 + Location + the Webhook shape,
idempotency, limits, list/get/delete, rate limiting, injected faults and the request log. The
last class runs the official JavaScript client (npm apify-client) against it.

    /usr/bin/python3 -m unittest tests.test_emulator -v        (from the repository root)
"""

import concurrent.futures
import ctypes
import ctypes.util
import gzip
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
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
    """The official JavaScript client (npm apify-client) talks to the emulator."""

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

    def test_client_reports_api_errors(self):
        result = self.run_client("--token", "not-a-token")
        self.assertEqual(result.returncode, 1)
        self.assertIn("user-or-token-not-found", result.stderr)
        self.assertEqual(self.emu.webhooks(), [])


if __name__ == "__main__":
    unittest.main()
