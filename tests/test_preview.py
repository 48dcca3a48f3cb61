"""apify_preview_dispatch(webhook [, variables]) end to end through the real sqlite3 shell: what
the platform would POST to a webhook's requestUrl, rendered offline from its templates. Each
test checks the exact text (payload bytes, headers and their order, messages); one proves that
nothing reaches an emulator and that no token is needed."""

import json
import unittest

from tests import harness
from tests.harness import TOKEN, shell

HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}

VARS = {"userId": "u1", "createdAt": "2026-02-03T04:05:06.007Z", "eventType": "ACTOR.RUN.FAILED",
        "eventData": {"actorId": "a1", "actorRunId": "r1"},
        "resource": {"id": "r1", "meta": {"origin": "WEB"}, "n": [1, 2.5], "q": "say \"hi\"\n"},
        "globals": {"env": "prod"}}

DEFAULT_TEMPLATE = ('{"userId": {{userId}}, "createdAt": {{createdAt}}, "eventType": '
                    '{{eventType}}, "eventData": {{eventData}}, "resource": {{resource}}}')

PLATFORM = {"Content-Type": "application/json", "X-Apify-Webhook": "<webhook id>",
            "X-Apify-Webhook-Dispatch-Id": "<dispatch id>", "X-Apify-Request-Origin": "APIFY"}

ALLOWED = "allowed: userId, createdAt, eventType, eventData, resource, globals"


def q(value):
    """A SQL string literal (JSON text for anything but a str)."""
    if not isinstance(value, str):
        value = json.dumps(value)
    return "'" + value.replace("'", "''") + "'"


def compact(value):
    """The compact JSON text JSON1 writes for a value made of strings, ints and objects."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Preview(unittest.TestCase):

    def preview(self, hook, variables=None, token=None, emu=None):
        """The preview of hook (with variables) as a dict; the test fails if the call does."""
        args = q(hook) + (", " + q(variables) if variables is not None else "")
        r = shell(f"SELECT apify_preview_dispatch({args});\n", emu=emu, token=token)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(len(r.lines), 1, r)
        return json.loads(r.lines[0])

    def refused(self, sql, message):
        """sql fails with exactly message (the shell prints it after its "near line" prefix)."""
        r = shell(sql, token=None)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.out, "", r)
        self.assertTrue(r.err.rstrip("\n").endswith(": " + message), r)

    # -- the payload -------------------------------------------------------------------------

    def test_default_payload_with_realistic_variables(self):
        p = self.preview(HOOK)
        self.assertEqual(p["method"], "POST")
        self.assertEqual(p["url"], "https://example.com/h")
        body = p["body"]
        self.assertEqual(list(body), ["userId", "createdAt", "eventType", "eventData", "resource"])
        self.assertEqual(body["userId"], "wRsJZtadYvn4mBZmm")
        self.assertEqual(body["createdAt"], "2026-01-01T12:00:00.000Z")
        self.assertEqual(body["eventType"], "ACTOR.RUN.SUCCEEDED")
        run = body["resource"]
        self.assertEqual(body["eventData"], {"actorId": "HDSasDasz78YcAPEB",
                                             "actorRunId": run["id"]})
        self.assertEqual(run["actId"], "HDSasDasz78YcAPEB")
        self.assertEqual(run["userId"], "wRsJZtadYvn4mBZmm")
        self.assertEqual((run["status"], run["buildNumber"], run["exitCode"], run["meta"]),
                         ("SUCCEEDED", "0.0.1", 0, {"origin": "API"}))
        self.assertNotIn("actorTaskId", run)
        for key in ("id", "defaultDatasetId", "defaultKeyValueStoreId", "defaultRequestQueueId",
                    "buildId"):
            self.assertRegex(run[key], r"^[A-Za-z0-9]{17}$", key)
        # The payload is the default template with each value's compact JSON, byte for byte.
        want = DEFAULT_TEMPLATE
        for name in ("userId", "createdAt", "eventType", "eventData", "resource"):
            want = want.replace("{{%s}}" % name, compact(body[name]))
        self.assertEqual(p["payload"], want)

    def test_given_variables_replace_the_defaults_member_by_member(self):
        p = self.preview(dict(HOOK, payloadTemplate=""), VARS)
        want = DEFAULT_TEMPLATE
        for name in ("userId", "createdAt", "eventType", "eventData", "resource"):
            want = want.replace("{{%s}}" % name, compact(VARS[name]))
        self.assertEqual(p["payload"], want)
        # Only the members given are replaced; the others keep their defaults.
        p = self.preview(HOOK, {"userId": None, "resource": {"id": "x"}})
        self.assertEqual(p["body"]["userId"], None)
        self.assertEqual(p["body"]["resource"], {"id": "x"})
        self.assertEqual(p["body"]["eventType"], "ACTOR.RUN.SUCCEEDED")
        self.assertEqual(p["body"]["eventData"]["actorId"], "HDSasDasz78YcAPEB")

    def test_defaults_come_from_the_webhook(self):
        hook = {"requestUrl": "https://example.com/h", "userId": "uW",
                "eventTypes": ["ACTOR.RUN.FAILED", "ACTOR.RUN.SUCCEEDED"],
                "condition": {"actorTaskId": "t1", "actorId": "a9", "actorRunId": "run9"}}
        body = self.preview(hook)["body"]
        self.assertEqual(body["userId"], "uW")
        self.assertEqual(body["eventType"], "ACTOR.RUN.FAILED")
        self.assertEqual(body["eventData"], {"actorId": "a9", "actorTaskId": "t1",
                                             "actorRunId": "run9"})
        self.assertEqual([body["resource"][k] for k in ("id", "actId", "actorTaskId", "userId")],
                         ["run9", "a9", "t1", "uW"])

    def test_variables_and_paths_outside_strings(self):
        hook = dict(HOOK, payloadTemplate='[ {{resource.meta}},{{ resource.meta.origin }}\n,'
                                          '{{resource.n}}, {{globals}}, "{{userId}}" ]')
        p = self.preview(hook, VARS)
        self.assertEqual(p["payload"], '[ {"origin":"WEB"},"WEB"\n,[1,2.5], {"env":"prod"},'
                                       ' "{{userId}}" ]')
        self.assertEqual(p["body"], [{"origin": "WEB"}, "WEB", [1, 2.5], {"env": "prod"},
                                     "{{userId}}"])

    def test_interpolation_inside_strings_on_and_off(self):
        template = ('{"a": "<{{resource.q}}|{{resource.meta}}|{{resource.n}}>", '
                    '"b": "{{ userId }} {{user_id}} {{userId}}", "c": {{resource.id}}}')
        p = self.preview(dict(HOOK, payloadTemplate=template, shouldInterpolateStrings=True),
                         VARS)
        self.assertEqual(p["payload"],
                         '{"a": "<say \\"hi\\"\\n|{\\"origin\\":\\"WEB\\"}|[1,2.5]>", '
                         '"b": "{{ userId }} {{user_id}} u1", "c": "r1"}')
        self.assertEqual(p["body"]["a"], '<say "hi"\n|{"origin":"WEB"}|[1,2.5]>')
        p = self.preview(dict(HOOK, payloadTemplate=template, shouldInterpolateStrings=False),
                         VARS)
        self.assertEqual(p["payload"], template.replace("{{resource.id}}", '"r1"'))

    def test_a_missing_path_names_the_field_and_the_variable(self):
        nope = dict(HOOK, payloadTemplate="{{resource.nope}}")
        deeper = dict(HOOK, payloadTemplate="[{{resource.id.x}}]")
        self.refused(f"SELECT apify_preview_dispatch({q(nope)});\n",
                     'apify: payloadTemplate: {{resource.nope}} has no value: resource has no '
                     'member "nope"')
        self.refused(f"SELECT apify_preview_dispatch({q(deeper)});\n",
                     'apify: payloadTemplate: {{resource.id.x}} has no value: resource.id has no '
                     'member "x"')
        hook = dict(HOOK, headersTemplate='{"X-Env": {{globals.env}}}')
        self.refused(f"SELECT apify_preview_dispatch({q(hook)});\n",
                     'apify: headersTemplate: {{globals.env}} has no value: globals has no '
                     'member "env"')
        self.assertEqual(self.preview(hook, VARS)["headers"]["X-Env"], "prod")

    # -- the headers -------------------------------------------------------------------------

    def test_headers_template_then_the_platform_headers(self):
        hook = dict(HOOK, id="WH1", shouldInterpolateStrings=True,
                    headersTemplate='{"X-Run": {{resource.id}}, "content-TYPE": "text/plain", '
                                    '"x-event": "ev {{eventType}}", "X-APIFY-WEBHOOK": "mine", '
                                    '"x-apify-request-origin": "ME", "Authorization": "Bearer k"}')
        p = shell(f"SELECT apify_preview_dispatch({q(hook)}, {q(VARS)}) -> '$.headers';\n",
                  token=None)
        # Order: the template's remaining headers in their order, then the platform's four,
        # each of which removed the template's header of the same name in any case.
        self.assertEqual(p.lines, ['{"X-Run":"r1","x-event":"ev ACTOR.RUN.FAILED",'
                                   '"Authorization":"Bearer k","Content-Type":"application/json",'
                                   '"X-Apify-Webhook":"WH1","X-Apify-Webhook-Dispatch-Id":'
                                   '"<dispatch id>","X-Apify-Request-Origin":"APIFY"}'], p)

    def test_no_headers_template_means_only_the_platform_headers(self):
        for template in (None, "", "{}"):
            hook = dict(HOOK, headersTemplate=template)
            self.assertEqual(self.preview(hook)["headers"], PLATFORM, template)

    def test_a_header_that_renders_to_a_non_string_is_refused(self):
        hook = dict(HOOK, headersTemplate='{"X-Code": {{resource.exitCode}}}')
        self.refused(f"SELECT apify_preview_dispatch({q(hook)});\n",
                     'apify: headersTemplate: the value of "X-Code" must be a string, not a '
                     'number')

    def test_a_webhook_as_the_api_returns_it(self):
        with harness.Emulator() as emu:
            hook = dict(HOOK, payloadTemplate='{"r": {{resource.id}}}')
            created = emu.request("POST", "/v2/webhooks", hook)
            self.assertEqual(created.status, 201, created)
            path = "/v2/webhooks/" + created.json()["data"]["id"]
            webhook = emu.request("GET", path).json()["data"]
        self.assertIn("createdAt", webhook)
        p = self.preview(webhook)
        self.assertEqual(p["headers"]["X-Apify-Webhook"], webhook["id"])
        self.assertRegex(p["payload"], r'^\{"r": "[A-Za-z0-9]{17}"\}$')
        self.assertEqual(self.preview(webhook, {"userId": "x"})["payload"], p["payload"])

    # -- refusals ----------------------------------------------------------------------------

    def test_bad_templates_say_what_create_says(self):
        cases = [
            (dict(HOOK, payloadTemplate='{"a": {{foo}}}'),
             f'apify: payloadTemplate: unknown variable "{{{{foo}}}}"; {ALLOWED}'),
            (dict(HOOK, payloadTemplate='{"a": "{{foo}}"}', shouldInterpolateStrings=True),
             f'apify: payloadTemplate: unknown variable "{{{{foo}}}}"; {ALLOWED}'),
            (dict(HOOK, payloadTemplate='{"a": {{userId}'),
             'apify: payloadTemplate: unclosed "{{" at byte 6'),
            (dict(HOOK, payloadTemplate='{"a": 1'),
             "apify: payloadTemplate is not valid JSON after its {{variables}} are replaced"),
            (dict(HOOK, headersTemplate='[{{userId}}]'),
             "apify: headersTemplate must be a JSON object of header names to string values"),
            (dict(HOOK, headersTemplate='{"X-Count": 3}'),
             'apify: headersTemplate: the value of "X-Count" must be a string, not a number'),
        ]
        for hook, message in cases:
            with self.subTest(hook=hook):
                self.refused(f"SELECT apify_preview_dispatch({q(hook)});\n", message)
                self.refused(f"SELECT apify_dry_run({q(hook)});\n", message)

    def test_null_and_inputs_that_are_not_objects(self):
        cases = [
            ("NULL", "apify: the webhook is NULL; pass a JSON object"),
            ("'[1]'", "apify: the webhook must be a JSON object, not an array"),
            ("42", "apify: the webhook must be a JSON object, not a number"),
            ("'{x'", 'apify: the webhook is not valid JSON: "{x"'),
            ("'{}', '\"x\"'", "apify: the variables must be a JSON object, not a string"),
            ("'{}', '{'", 'apify: the variables are not valid JSON: "{"'),
            ("'{}', '{\"resources\":{}}'",
             f'apify: variables: unknown variable "resources"; {ALLOWED}'),
            ("'{\"payloadTemplate\":5}'",
             "apify: payloadTemplate must be a string or null, not a number"),
            ("'{\"requestUrl\":[]}'", "apify: requestUrl must be a string or null, not an array"),
            ("'{\"shouldInterpolateStrings\":\"yes\"}'",
             "apify: shouldInterpolateStrings must be a boolean or null, not a string"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.refused(f"SELECT apify_preview_dispatch({args});\n", message)
        # NULL variables are no variables; {} alone is a webhook with no fields yet.
        r = shell("SELECT apify_preview_dispatch('{}', NULL) = apify_preview_dispatch('{}');\n"
                  "SELECT apify_preview_dispatch('{}') ->> '$.url';\n", token=None)
        self.assertEqual((r.lines, r.err), (["1", ""], ""), r)

    # -- offline, innocuous, JSON ------------------------------------------------------------

    def test_nothing_is_sent_and_no_token_is_needed(self):
        with harness.Emulator() as emu:
            hook = dict(HOOK, requestUrl=emu.url("/hook"), headersTemplate='{"X-A": "b"}')
            # Pointed at the emulator with a token, and with no token at all: the same answer.
            with_token = self.preview(hook, emu=emu, token=TOKEN)
            without = self.preview(hook, token=None)
            self.assertEqual(with_token, without)
            r = shell(f"SELECT apify_config('base_url', {q(emu.base_url)});\n"
                      f"SELECT count(*) FROM (SELECT apify_preview_dispatch({q(hook)})"
                      " FROM generate_series(1, 20));\n", token=None)
            self.assertEqual((r.lines[-1], r.err), ("20", ""), r)
            self.assertEqual(emu.log(), [])
            self.assertEqual(emu.counts()["requests"], 0)

    def test_innocuous_deterministic_and_json(self):
        r = shell("SELECT narg, flags & 0x200000 <> 0, flags & 0x80000 <> 0, flags & 0x800 <> 0"
                  " FROM pragma_function_list WHERE name = 'apify_preview_dispatch'"
                  " ORDER BY narg;\n"
                  "PRAGMA trusted_schema = OFF;\n"
                  # (SQLite 3.40's own JSON functions are not innocuous: none in the view)
                  "CREATE VIEW v AS SELECT apify_preview_dispatch('{}') AS p;\n"
                  "SELECT p ->> '$.method' FROM v;\n"
                  "CREATE VIEW w AS SELECT apify_dry_run('{}') AS p;\n"
                  "SELECT p FROM w;\n"
                  "SELECT json_type(json_object('p', apify_preview_dispatch('{}')), '$.p');\n",
                  token=None)
        self.assertEqual(r.lines, ["1|1|0|1", "2|1|0|1", "POST", "object"], r)
        # The control: a function that is not innocuous is refused in the same view.
        self.assertEqual(r.err, "Parse error near line 7: unsafe use of apify_dry_run()\n", r)

    def test_every_webhook_of_the_table(self):
        # The usage: the webhook column of apify_webhooks holds a WebhookCreate.
        with harness.Emulator() as emu:
            first = dict(HOOK, payloadTemplate='{"n": 1}')
            second = dict(HOOK, requestUrl="https://example.com/2")
            r = shell(f"INSERT INTO apify_webhooks(webhook) VALUES ({q(first)}), ({q(second)});\n"
                      "SELECT apify_preview_dispatch(webhook) ->> '$.payload'"
                      " FROM apify_webhooks ORDER BY rowid;\n", emu=emu)
            self.assertEqual(r.err, "", r)
            self.assertEqual(r.lines[0], '{"n": 1}', r)
            self.assertTrue(r.lines[1].startswith('{"userId": "wRsJZtadYvn4mBZmm", '), r)


if __name__ == "__main__":
    unittest.main()
