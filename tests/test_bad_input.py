"""Bad input never leaves the machine: each of the inputs below is refused with its exact
message by apify_create_webhook() (and, identically, by apify_dry_run()), by INSERT INTO
apify_webhooks through the webhook column, and where it applies through the individual columns,
and the emulator's log shows that not a single request was made.

The statements run through Debian's Python sqlite3 (which can load extensions) so that each
message is compared exactly; a few run through the real sqlite3 shell too. An INSERT's message
names the row: "apify: row N: " and then the function's message without its "apify: " prefix.
"""

import json
import sqlite3
import unittest

from tests.harness import Emulator, connect, shell

HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}
FIELDS = ("requestUrl, eventTypes, condition, isAdHoc, idempotencyKey, payloadTemplate, "
          "headersTemplate, description, shouldInterpolateStrings, ignoreSslErrors, doNotRetry")
VARIABLES = "userId, createdAt, eventType, eventData, resource, globals"
EVENTS = ("; event types: ACTOR.BUILD.ABORTED, ACTOR.BUILD.CREATED, ACTOR.BUILD.FAILED, "
          "ACTOR.BUILD.SUCCEEDED, ACTOR.BUILD.TIMED_OUT, ACTOR.RUN.ABORTED, ACTOR.RUN.CREATED, "
          "ACTOR.RUN.FAILED, ACTOR.RUN.RESURRECTED, ACTOR.RUN.SUCCEEDED, ACTOR.RUN.TIMED_OUT, TEST")
MAX_BODY = 9437184


# The message quotes the value as SQLite writes it as text, and versions write a REAL
# differently: 3.40 with 15 significant digits, 3.53 the shortest text that reads back the same.
HUGE_AS_TEXT = {(3, 40): "1.23456789012346e+29", (3, 53): "1.2345678901234568e+29"}.get(
    sqlite3.sqlite_version_info[:2]) or sqlite3.connect(":memory:").execute(
    "SELECT CAST(123456789012345678901234567890 AS TEXT)").fetchone()[0]


class SQL(str):
    """A case's input given as an SQL expression (a blob cast, a number, NULL) rather than as
    a value to bind."""


def hook(**changes):
    """HOOK with fields changed (... removes one), as JSON text."""
    webhook = dict(HOOK)
    for name, value in changes.items():
        if value is ...:
            webhook.pop(name)
        else:
            webhook[name] = value
    return json.dumps(webhook)


def raw(text):
    """A webhook given as exact JSON text (for what json.dumps cannot write: 1e400, repeated
    keys, broken syntax)."""
    return text


BASE = '"requestUrl":"https://example.com/h","eventTypes":["TEST"],"condition":{"actorId":"a"}'
BIG = "x" * (MAX_BODY - 150)   # with the other fields, the body ends just over the limit

# (name, input, exact message of apify_create_webhook)
CASES = [
    # Not a JSON object at all
    ("invalid JSON, cut short", '{"requestUrl":',
     'apify: the webhook is not valid JSON: "{"requestUrl":"'),
    ("not JSON", "hello", 'apify: the webhook is not valid JSON: "hello"'),
    ("empty text", "", 'apify: the webhook is not valid JSON: ""'),
    ("JSON5 unquoted key", '{requestUrl: "https://example.com/h"}',
     'apify: the webhook is not valid JSON: "{requestUrl: "https://example.com/h"}"'),
    ("trailing comma", raw("{" + BASE + ",}"),
     'apify: the webhook is not valid JSON: "{"requestUrl":"https://example.com/h","eventTypes":'
     '["TEST"],..."'),
    ("two objects", hook() + hook(),
     'apify: the webhook is not valid JSON: "{"requestUrl": "https://example.com/h", '
     '"eventTypes": ["ACTO..."'),
    ("JSON array", "[]", "apify: the webhook must be a JSON object, not an array"),
    ("JSON string", '"x"', "apify: the webhook must be a JSON object, not a string"),
    ("JSON null", "null", "apify: the webhook must be a JSON object, not null"),
    ("SQL integer", SQL("42"), "apify: the webhook must be a JSON object, not a number"),
    ("SQL real", SQL("4.5"), "apify: the webhook must be a JSON object, not a number"),
    ("SQL NULL", SQL("NULL"), "apify: the webhook is NULL; pass a JSON object"),
    # Unknown and repeated fields
    ("unknown field, near a known one", hook(requestURL="x"),
     'apify: unknown field "requestURL"; did you mean "requestUrl"?'),
    ("unknown field in snake_case", hook(event_types=["TEST"]),
     'apify: unknown field "event_types"; did you mean "eventTypes"?'),
    ("unknown field, far from all", hook(foo=1),
     f'apify: unknown field "foo"; known fields: {FIELDS}'),
    ("overlong field name", hook(**{"x" * 1000: 1}),
     'apify: unknown field "' + "x" * 60 + '..."; known fields: ' + FIELDS),
    ("unknown condition field", hook(condition={"actorID": "a"}),
     'apify: condition: unknown field "actorID"; did you mean "actorId"?'),
    ("unknown condition field, far", hook(condition={"foo": "a"}),
     'apify: condition: unknown field "foo"; known fields: actorId, actorTaskId, actorRunId'),
    ("field twice", raw('{"requestUrl":"https://a.com",' + BASE + "}"),
     'apify: field "requestUrl" appears twice'),
    ("condition field twice",
     raw('{"requestUrl":"https://a.com","eventTypes":["TEST"],'
         '"condition":{"actorId":"a","actorId":"b"}}'),
     'apify: condition: field "actorId" appears twice'),
    # Required fields
    ("requestUrl missing", hook(requestUrl=...), "apify: requestUrl is required"),
    ("eventTypes missing", hook(eventTypes=...), "apify: eventTypes is required"),
    ("condition missing", hook(condition=...), "apify: condition is required"),
    ("everything missing", "{}", "apify: requestUrl is required"),
    ("requestUrl null", hook(requestUrl=None), "apify: requestUrl is required"),
    ("condition null", hook(condition=None), "apify: condition is required"),
    # Wrong types
    ("requestUrl a number", hook(requestUrl=5),
     "apify: requestUrl must be a string, not a number"),
    ("eventTypes a string", hook(eventTypes="TEST"),
     "apify: eventTypes must be an array, not a string"),
    ("condition an array", hook(condition=[]),
     "apify: condition must be an object, not an array"),
    ("isAdHoc a string", hook(isAdHoc="yes"),
     "apify: isAdHoc must be a boolean or null, not a string"),
    ("isAdHoc 1", hook(isAdHoc=1), "apify: isAdHoc must be a boolean or null, not a number"),
    ("isAdHoc 1e400", raw("{" + BASE + ',"isAdHoc":1e400}'),
     "apify: isAdHoc must be a boolean or null, not a number"),
    ("isAdHoc a huge integer", raw("{" + BASE + ',"isAdHoc":123456789012345678901234567890}'),
     "apify: isAdHoc must be a boolean or null, not a number"),
    ("shouldInterpolateStrings a string", hook(shouldInterpolateStrings="true"),
     "apify: shouldInterpolateStrings must be a boolean or null, not a string"),
    ("ignoreSslErrors 0", hook(ignoreSslErrors=0),
     "apify: ignoreSslErrors must be a boolean or null, not a number"),
    ("doNotRetry an array", hook(doNotRetry=[]),
     "apify: doNotRetry must be a boolean or null, not an array"),
    ("description a number", hook(description=5),
     "apify: description must be a string or null, not a number"),
    ("idempotencyKey a number", hook(idempotencyKey=5),
     "apify: idempotencyKey must be a string or null, not a number"),
    ("payloadTemplate an object", hook(payloadTemplate={"a": 1}),
     "apify: payloadTemplate must be a string or null, not an object"),
    # Keys too short or too long
    ("idempotencyKey empty", hook(idempotencyKey=""),
     "apify: idempotencyKey must be 1 to 256 characters, not 0"),
    ("idempotencyKey too long", hook(idempotencyKey="k" * 257),
     "apify: idempotencyKey must be 1 to 256 characters, not 257"),
    ("idempotencyKey too long in characters, not bytes", hook(idempotencyKey="é" * 257),
     "apify: idempotencyKey must be 1 to 256 characters, not 257"),
    # Event types
    ("eventTypes empty", hook(eventTypes=[]), "apify: eventTypes must not be empty"),
    ("unknown event type", hook(eventTypes=["ACTOR.RUN.DONE"]),
     'apify: eventTypes[0]: "ACTOR.RUN.DONE" is not an event type; event types: '
     'ACTOR.BUILD.ABORTED, ACTOR.BUILD.CREATED, ACTOR.BUILD.FAILED, ACTOR.BUILD.SUCCEEDED, '
     'ACTOR.BUILD.TIMED_OUT, ACTOR.RUN.ABORTED, ACTOR.RUN.CREATED, ACTOR.RUN.FAILED, '
     'ACTOR.RUN.RESURRECTED, ACTOR.RUN.SUCCEEDED, ACTOR.RUN.TIMED_OUT, TEST'),
    ("event type in the wrong case", hook(eventTypes=["TEST", "actor.run.succeeded"]),
     'apify: eventTypes[1]: "actor.run.succeeded" is not an event type; '
     'did you mean "ACTOR.RUN.SUCCEEDED"?'),
    ("event type misspelt", hook(eventTypes=["ACTOR.RUN.SUCEEDED"]),
     'apify: eventTypes[0]: "ACTOR.RUN.SUCEEDED" is not an event type; '
     'did you mean "ACTOR.RUN.SUCCEEDED"?'),
    ("event type a number", hook(eventTypes=["TEST", 5]),
     "apify: eventTypes[1] must be a string, not a number"),
    ("event type null", hook(eventTypes=[None]),
     "apify: eventTypes[0] must be a string, not null"),
    ("event type overlong", hook(eventTypes=["E" * 300]),
     'apify: eventTypes[0]: "' + "E" * 60 + '..." is not an event type' + EVENTS),
    # Condition
    ("condition empty", hook(condition={}),
     "apify: condition must name actorId, actorTaskId or actorRunId"),
    ("condition with only nulls", hook(condition={"actorId": None}),
     "apify: condition must name actorId, actorTaskId or actorRunId"),
    ("condition id empty", hook(condition={"actorId": ""}),
     "apify: condition.actorId must be a non-empty string"),
    ("condition id a number", hook(condition={"actorTaskId": 5}),
     "apify: condition.actorTaskId must be a non-empty string, not a number"),
    ("condition id an object", hook(condition={"actorRunId": {"a": 1}}),
     "apify: condition.actorRunId must be a non-empty string, not an object"),
    # URLs
    ("ftp URL", hook(requestUrl="ftp://example.com/h"),
     'apify: requestUrl "ftp://example.com/h" must be an absolute http or https URL'),
    ("file URL", hook(requestUrl="file:///etc/passwd"),
     'apify: requestUrl "file:///etc/passwd" must be an absolute http or https URL'),
    ("javascript URL", hook(requestUrl="javascript:alert(1)"),
     'apify: requestUrl "javascript:alert(1)" must be an absolute http or https URL'),
    ("relative URL", hook(requestUrl="example.com/hook"),
     'apify: requestUrl "example.com/hook" must be an absolute http or https URL'),
    ("URL without a host", hook(requestUrl="http://"),
     'apify: requestUrl "http://" must be an absolute http or https URL'),
    ("URL empty", hook(requestUrl=""),
     'apify: requestUrl "" must be an absolute http or https URL'),
    ("URL with a space", hook(requestUrl="https://exa mple.com/"),
     'apify: requestUrl "https://exa mple.com/" must be an absolute http or https URL'),
    ("URL with a port out of range", hook(requestUrl="https://example.com:99999/"),
     'apify: requestUrl "https://example.com:99999/" must be an absolute http or https URL'),
    # Templates
    ("template with an unclosed placeholder", hook(payloadTemplate='{"a": {{resource.id}'),
     'apify: payloadTemplate: unclosed "{{" at byte 6'),
    ("template not JSON", hook(payloadTemplate='{"a": }'),
     "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced"),
    ("template with two placeholders side by side",
     hook(payloadTemplate='{"a": {{resource.id}} {{resource.id}}}'),
     "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced"),
    ("template a number", hook(payloadTemplate=5),
     "apify: payloadTemplate must be a string or null, not a number"),
    ("disallowed variable outside strings", hook(payloadTemplate='{"a": {{secret}}}'),
     f'apify: payloadTemplate: unknown variable "{{{{secret}}}}"; allowed: {VARIABLES}'),
    ("disallowed variable name", hook(payloadTemplate='{"a": {{resource-id}}}'),
     f'apify: payloadTemplate: unknown variable "{{{{resource-id}}}}"; allowed: {VARIABLES}'),
    ("empty placeholder", hook(payloadTemplate='{"a": {{ }}}'),
     f'apify: payloadTemplate: unknown variable "{{{{ }}}}"; allowed: {VARIABLES}'),
    ("disallowed variable inside a string, interpolated",
     hook(payloadTemplate='{"a": "x {{env.TOKEN}} y"}', shouldInterpolateStrings=True),
     f'apify: payloadTemplate: unknown variable "{{{{env.TOKEN}}}}"; allowed: {VARIABLES}'),
    ("disallowed header variable outside strings", hook(headersTemplate='{"X": {{secret}}}'),
     f'apify: headersTemplate: unknown variable "{{{{secret}}}}"; allowed: {VARIABLES}'),
    ("disallowed header variable inside a string, interpolated",
     hook(headersTemplate='{"X": "Bearer {{nope.x}}"}', shouldInterpolateStrings=True),
     f'apify: headersTemplate: unknown variable "{{{{nope.x}}}}"; allowed: {VARIABLES}'),
    ("headers template broken", hook(headersTemplate='{"X": {{resource}'),
     'apify: headersTemplate: unclosed "{{" at byte 6'),
    ("headers template an array", hook(headersTemplate="[1]"),
     "apify: headersTemplate must be a JSON object of header names to string values"),
    ("header value a number", hook(headersTemplate='{"X": 5}'),
     'apify: headersTemplate: the value of "X" must be a string, not a number'),
    ("header value an object", hook(headersTemplate='{"X": {"a": 1}}'),
     'apify: headersTemplate: the value of "X" must be a string, not an object'),
    ("header value null", hook(headersTemplate='{"X-A": "a", "X-B": null}'),
     'apify: headersTemplate: the value of "X-B" must be a string, not null'),
    ("header value a boolean", hook(headersTemplate='{"X": true}'),
     'apify: headersTemplate: the value of "X" must be a string, not a boolean'),
    ("header value an array", hook(headersTemplate='{"X": ["a"]}'),
     'apify: headersTemplate: the value of "X" must be a string, not an array'),
    # Size, encoding, NULs
    ("body over 9,437,184 bytes", hook(description=BIG),
     f"apify: the request body is {MAX_BODY + 83} bytes; the API accepts at most {MAX_BODY}"),
    ("invalid UTF-8", SQL("CAST(x'7b22726571756573745572" "6cff223a317d' AS TEXT)"),
     "apify: the webhook is not valid UTF-8 (byte 12)"),
    ("overlong UTF-8 encoding", SQL("CAST(x'7b22c080223a317d' AS TEXT)"),
     "apify: the webhook is not valid UTF-8 (byte 2)"),
    ("UTF-8 encoded surrogate", SQL("CAST(x'7b22eda080223a317d' AS TEXT)"),
     "apify: the webhook is not valid UTF-8 (byte 2)"),
    ("UTF-8 beyond U+10FFFF", SQL("CAST(x'7b22f4908080223a317d' AS TEXT)"),
     "apify: the webhook is not valid UTF-8 (byte 2)"),
    ("UTF-8 cut short", SQL("CAST(x'7b22e282' AS TEXT)"),
     "apify: the webhook is not valid UTF-8 (byte 2)"),
    ("embedded NUL byte", SQL("CAST(x'7b2261002262223a317d' AS TEXT)"),
     "apify: the webhook contains a NUL byte at byte 3"),
    ("\\u0000 in a string", raw("{" + BASE + ',"description":"a\\u0000b"}'),
     "apify: the webhook contains a NUL character (\\u0000) at byte 104"),
    ("\\u0000 after an escaped backslash",
     raw('{"requestUrl":"https://example.com/h\\\\\\u0000","eventTypes":["TEST"],'
         '"condition":{"actorId":"a"}}'),
     "apify: the webhook contains a NUL character (\\u0000) at byte 38"),
    ("\\u0000 in a field name", raw('{"\\u0000":1}'),
     "apify: the webhook contains a NUL character (\\u0000) at byte 2"),
]

# Inputs whose INSERT message is not the function's with "row 1: " in front.
INSERT_DIFFERS = {
    # A NULL webhook column is an empty request to which the columns add fields.
    "SQL NULL": "apify: row 1: requestUrl is required",
}

# (name, INSERT INTO apify_webhooks(...) column list and VALUES, exact message)
COLUMN_CASES = [
    ("request_url a number", "(request_url, event_types, actor_id) VALUES (5, '[\"TEST\"]', 'a')",
     "apify: row 1: request_url must be text, not a number"),
    ("event_types a number",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', 5, 'a')",
     "apify: row 1: event_types must be text, not a number"),
    ("actor_id a blob",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '[\"TEST\"]', x'00')",
     "apify: row 1: actor_id must be text, not a blob"),
    ("actor_id a number",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '[\"TEST\"]', 5)",
     "apify: row 1: actor_id must be text, not a number"),
    ("request_url missing", "(event_types, actor_id) VALUES ('[\"TEST\"]', 'a')",
     "apify: row 1: requestUrl is required"),
    ("event_types missing", "(request_url, actor_id) VALUES ('https://e.com/h', 'a')",
     "apify: row 1: eventTypes is required"),
    ("every condition column missing",
     "(request_url, event_types) VALUES ('https://e.com/h', '[\"TEST\"]')",
     "apify: row 1: condition is required"),
    ("everything missing", "(description) VALUES ('x')",
     "apify: row 1: requestUrl is required"),
    ("event_types not an array",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', 'TEST', 'a')",
     "apify: row 1: eventTypes must be an array, not a string"),
    ("event_types an object",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '{\"a\":1}', 'a')",
     "apify: row 1: eventTypes must be an array, not an object"),
    ("event_types empty",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '[]', 'a')",
     "apify: row 1: eventTypes must not be empty"),
    ("event_types unknown",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '[\"NOPE\"]', 'a')",
     'apify: row 1: eventTypes[0]: "NOPE" is not an event type' + EVENTS),
    ("request_url ftp",
     "(request_url, event_types, actor_id) VALUES ('ftp://e.com/h', '[\"TEST\"]', 'a')",
     'apify: row 1: requestUrl "ftp://e.com/h" must be an absolute http or https URL'),
    ("actor_id empty",
     "(request_url, event_types, actor_id) VALUES ('https://e.com/h', '[\"TEST\"]', '')",
     "apify: row 1: condition.actorId must be a non-empty string"),
    ("is_ad_hoc 2", "(request_url, event_types, actor_id, is_ad_hoc)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 2)",
     "apify: row 1: is_ad_hoc must be 0 or 1 (false or true), not '2'"),
    ("is_ad_hoc text", "(request_url, event_types, actor_id, is_ad_hoc)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 'yes')",
     "apify: row 1: is_ad_hoc must be 0 or 1 (false or true), not 'yes'"),
    ("is_ad_hoc real", "(request_url, event_types, actor_id, do_not_retry)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 1.0)",
     "apify: row 1: do_not_retry must be 0 or 1 (false or true), not '1.0'"),
    ("is_ad_hoc -1", "(request_url, event_types, actor_id, ignore_ssl_errors)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', -1)",
     "apify: row 1: ignore_ssl_errors must be 0 or 1 (false or true), not '-1'"),
    ("is_ad_hoc 1e400", "(request_url, event_types, actor_id, is_ad_hoc)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 1e400)",
     "apify: row 1: is_ad_hoc must be 0 or 1 (false or true), not 'Inf'"),
    ("is_ad_hoc a huge integer", "(request_url, event_types, actor_id, is_ad_hoc)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 123456789012345678901234567890)",
     "apify: row 1: is_ad_hoc must be 0 or 1 (false or true), not '%s'" % HUGE_AS_TEXT),
    ("idempotency_key too long", "(request_url, event_types, actor_id, idempotency_key)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', printf('%.257c', 'k'))",
     "apify: row 1: idempotencyKey must be 1 to 256 characters, not 257"),
    ("idempotency_key empty", "(request_url, event_types, actor_id, idempotency_key)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', '')",
     "apify: row 1: idempotencyKey must be 1 to 256 characters, not 0"),
    ("description over the body limit", "(request_url, event_types, actor_id, description)"
     f" VALUES ('https://e.com/h', '[\"TEST\"]', 'a', printf('%.{MAX_BODY}c', 'x'))",
     f"apify: row 1: the request body is {MAX_BODY + 196} bytes; the API accepts at most "
     f"{MAX_BODY}"),
    ("description invalid UTF-8", "(request_url, event_types, actor_id, description)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', CAST(x'61ff62' AS TEXT))",
     "apify: row 1: the webhook is not valid UTF-8 (byte 98)"),
    ("description with a NUL", "(request_url, event_types, actor_id, description)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', char(97, 0, 98))",
     "apify: row 1: the webhook contains a NUL character (\\u0000) at byte 98"),
    ("payload_template disallowed variable",
     "(request_url, event_types, actor_id, payload_template)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', '{\"a\": {{secret}}}')",
     f'apify: row 1: payloadTemplate: unknown variable "{{{{secret}}}}"; allowed: {VARIABLES}'),
    ("payload_template variable in a string, interpolated",
     "(request_url, event_types, actor_id, payload_template, should_interpolate_strings)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', '{\"a\": \"{{secret}}\"}', 1)",
     f'apify: row 1: payloadTemplate: unknown variable "{{{{secret}}}}"; allowed: {VARIABLES}'),
    ("headers_template value not a string",
     "(request_url, event_types, actor_id, headers_template)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', '{\"X\": 1}')",
     'apify: row 1: headersTemplate: the value of "X" must be a string, not a number'),
    ("id given with a request", "(request_url, event_types, actor_id, id)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 'x')",
     "apify: row 1: id adopts a webhook made elsewhere and goes alone: INSERT INTO"
     " apify_webhooks(id) VALUES (...); to create one, leave id out"),
    ("id that is no webhook id", "(id) VALUES ('../v2/users')",
     "apify: row 1: id '../v2/users' is not a webhook id (1 to 64 letters and digits)"),
    ("outcome column status given", "(request_url, event_types, actor_id, status)"
     " VALUES ('https://e.com/h', '[\"TEST\"]', 'a', 'created')",
     "apify: row 1: status is set by the extension; leave it out"),
    ("rowid given", "(rowid, request_url, event_types, actor_id)"
     " VALUES (5, 'https://e.com/h', '[\"TEST\"]', 'a')",
     "apify: row 1: rowid is assigned by the extension; leave it out"),
    ("webhook column and a column of the wrong type", "(webhook, actor_id)"
     f" VALUES ('{hook()}', 5)",
     "apify: row 1: actor_id must be text, not a number"),
    ("webhook column not an object, columns given", "(webhook, is_ad_hoc) VALUES ('[1]', 1)",
     "apify: row 1: the webhook must be a JSON object, not an array"),
    ("third row of three bad", "(request_url, event_types, actor_id) VALUES"
     " ('https://e.com/1', '[\"TEST\"]', 'a'), ('https://e.com/2', '[\"TEST\"]', 'b'),"
     " ('https://e.com/3', '[\"NOPE\"]', 'c')",
     'apify: row 3: eventTypes[0]: "NOPE" is not an event type' + EVENTS),
]


def arg(value):
    """The SQL text and the parameters that pass a case's input."""
    return (str(value), ()) if isinstance(value, SQL) else ("?", (value,))


class BadInput(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator()
        cls.conn = connect(cls.emu, isolation_level=None)

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        cls.emu.stop()

    def setUp(self):
        self.emu.reset()

    def assertRefused(self, sql, params, message):
        # each subtest starts from an empty log: a wrong request fails its own subtest only
        self.emu.reset()
        with self.assertRaises(sqlite3.OperationalError) as caught:
            self.conn.execute(sql, params).fetchall()
        self.assertEqual(str(caught.exception), message)
        self.assertEqual(self.emu.log(), [], "a request was sent")

    def test_the_table_is_big_enough(self):
        self.assertGreaterEqual(len(CASES), 40)
        self.assertEqual(len({name for name, _, _ in CASES}), len(CASES))
        self.assertEqual(len({name for name, _, _ in COLUMN_CASES}), len(COLUMN_CASES))

    def test_apify_create_webhook(self):
        for name, value, message in CASES:
            with self.subTest(name):
                text, params = arg(value)
                self.assertRefused(f"SELECT apify_create_webhook({text})", params, message)

    def test_apify_dry_run_says_the_same(self):
        for name, value, message in CASES:
            with self.subTest(name):
                text, params = arg(value)
                self.assertRefused(f"SELECT apify_dry_run({text})", params, message)

    def test_insert_through_the_webhook_column(self):
        for name, value, message in CASES:
            with self.subTest(name):
                text, params = arg(value)
                expected = INSERT_DIFFERS.get(name, "apify: row 1: " + message[len("apify: "):])
                self.assertRefused(f"INSERT INTO apify_webhooks(webhook) VALUES ({text})",
                                   params, expected)

    def test_insert_through_the_columns(self):
        for name, values, message in COLUMN_CASES:
            with self.subTest(name):
                self.assertRefused(f"INSERT INTO apify_webhooks{values}", (), message)

    def test_a_bad_row_stops_the_whole_statement(self):
        # Rows 1 and 2 were fine, but the statement failed at row 3: nothing was queued, and
        # the table holds nothing.
        _, values, message = COLUMN_CASES[-1]
        self.assertRefused(f"INSERT INTO apify_webhooks{values}", (), message)
        self.assertEqual(self.conn.execute("SELECT count(*) FROM apify_webhooks").fetchone(),
                         (0,))
        self.assertEqual(self.emu.log(), [])


class BadInputInTheShell(unittest.TestCase):
    """The same messages as the sqlite3 shell prints them."""

    def test_messages_in_the_shell(self):
        picks = ["invalid JSON, cut short", "unknown field, near a known one",
                 "condition missing", "disallowed variable outside strings",
                 "header value a number", "invalid UTF-8", "\\u0000 in a string"]
        cases = {name: (value, message) for name, value, message in CASES}
        with Emulator() as emu:
            for name in picks:
                value, message = cases[name]
                literal = value if isinstance(value, SQL) else "'" + value.replace("'", "''") + "'"
                with self.subTest(name):
                    emu.reset()
                    r = shell(f"SELECT apify_create_webhook({literal});\n"
                              f"INSERT INTO apify_webhooks(webhook) VALUES ({literal});\n", emu)
                    self.assertEqual(r.err.splitlines(), [
                        f"Runtime error near line 2: {message}",
                        f"Runtime error near line 3: apify: row 1: {message[7:]}"], r)
                    self.assertEqual(emu.log(), [])


if __name__ == "__main__":
    unittest.main()
