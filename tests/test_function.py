"""apify_create_webhook(), apify_dry_run(), apify_config() and the registration, end to end:
through the real sqlite3 shell (and Debian's Python sqlite3) against the local emulator, proving
each outcome by what the emulator received."""

import json
import os
import shutil
import subprocess
import time
import unittest

from tests import harness
from tests.harness import EXT, ROOT, TOKEN, closed_port, header, shell

HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}


def q(value):
    """A SQL string literal."""
    if not isinstance(value, str):
        value = json.dumps(value)
    return "'" + value.replace("'", "''") + "'"


def create(obj):
    return f"SELECT apify_create_webhook({q(obj)});\n"


# Short retries so fault tests take a second, not a minute.
FAST = ("SELECT apify_config('max_attempts', 3), apify_config('timeout_ms', 2000),"
        " apify_config('connect_timeout_ms', 1000);\n")


class EmulatorCase(harness.EmulatorCase):

    def assertNothingSent(self):
        self.assertEqual(self.emu.log(), [])
        self.assertEqual(self.emu.posts(), [])
        self.assertEqual(self.emu.webhooks(), [])


class CreateWebhook(EmulatorCase):

    def test_creates_one_webhook_and_returns_the_data_object(self):
        r = shell(create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        data = json.loads(r.out)
        [hook] = self.emu.webhooks()
        self.assertEqual(data["id"], hook["id"])
        self.assertRegex(data["id"], r"^[A-Za-z0-9]{17}$")
        self.assertEqual(data["requestUrl"], HOOK["requestUrl"])
        self.assertEqual(data["condition"], HOOK["condition"])
        for field in ("createdAt", "modifiedAt", "userId", "isAdHoc", "ignoreSslErrors",
                      "doNotRetry", "payloadTemplate", "headersTemplate", "stats"):
            self.assertIn(field, data)

    def test_request_headers_and_canonical_body(self):
        r = shell(create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        [post] = self.emu.posts()
        self.assertEqual(post["auth"], "valid")
        self.assertEqual(header(post, "Authorization"), "Bearer ***")
        self.assertEqual(header(post, "Content-Type"), "application/json")
        self.assertRegex(header(post, "User-Agent"),
                         r"^apify-sqlite/\d+\.\d+\.\d+ \(SQLite 3\.\d+\.\d+; libcurl \d+\.\d+\.\d+\)$")
        body = json.loads(post["body"])
        self.assertEqual(list(body), ["requestUrl", "eventTypes", "condition", "idempotencyKey"])
        self.assertRegex(body["idempotencyKey"], r"^apify-sqlite-[0-9a-f]{64}$")
        self.assertEqual(post["body"], json.dumps(body, separators=(",", ":")))

    def test_json_subtype_composes_with_json_functions(self):
        r = shell(f"SELECT json_type(apify_create_webhook({q(HOOK)})),"
                  f" apify_create_webhook({q(HOOK)}) ->> '$.requestUrl',"
                  f" json_extract(apify_create_webhook({q(HOOK)}), '$.condition.actorId');",
                  self.emu)
        self.assertEqual(r.out.strip(), "object|https://example.com/h|HDSasDasz78YcAPEB", r)

    def test_same_request_twice_is_one_webhook(self):
        reordered = {"condition": HOOK["condition"], "eventTypes": HOOK["eventTypes"],
                     "requestUrl": HOOK["requestUrl"], "description": None}
        r = shell(create(HOOK) + create(reordered), self.emu)
        self.assertEqual(r.rc, 0, r)
        first, second = (json.loads(line) for line in r.lines)
        self.assertEqual(first["id"], second["id"])
        self.assertEqual(len(self.emu.webhooks()), 1)
        bodies = [p["body"] for p in self.emu.posts()]
        self.assertEqual(len(bodies), 2)
        self.assertEqual(bodies[0], bodies[1])

    def test_different_requests_get_different_keys(self):
        other = dict(HOOK, requestUrl="https://example.com/other")
        r = shell(create(HOOK) + create(other), self.emu)
        self.assertEqual(r.rc, 0, r)
        keys = {w["idempotencyKey"] for w in self.emu.webhooks()}
        self.assertEqual(len(keys), 2)

    def test_user_key_is_sent_unchanged(self):
        r = shell(create(dict(HOOK, idempotencyKey="my key/1")), self.emu)
        self.assertEqual(r.rc, 0, r)
        [hook] = self.emu.webhooks()
        self.assertEqual(hook["idempotencyKey"], "my key/1")

    def test_all_fields_reach_the_api(self):
        full = dict(HOOK, isAdHoc=False, idempotencyKey="k-full",
                    payloadTemplate='{"id": {{resource.id}}}',
                    headersTemplate='{"X-Run": "{{resource.id}}"}', description="nightly",
                    shouldInterpolateStrings=True, ignoreSslErrors=False, doNotRetry=True)
        r = shell(create(full), self.emu)
        self.assertEqual(r.rc, 0, r)
        sent = json.loads(self.emu.posts()[0]["body"])
        self.assertEqual(sent, full)
        self.assertEqual(list(sent), ["requestUrl", "eventTypes", "condition", "isAdHoc",
                                      "idempotencyKey", "payloadTemplate", "headersTemplate",
                                      "description", "shouldInterpolateStrings",
                                      "ignoreSslErrors", "doNotRetry"])


class ApiErrors(EmulatorCase):

    def test_invalid_token_is_a_401_and_not_retried(self):
        r = shell(create(HOOK), self.emu, token="wrong-token")
        self.assertNotEqual(r.rc, 0)
        self.assertRegex(r.err, r"apify: 401 user-or-token-not-found: .+")
        self.assertEqual(len(self.emu.posts()), 1)
        self.assertNotIn("wrong-token", r.err)

    def test_too_many_webhooks_is_a_403_with_the_api_message(self):
        self.emu.configure(max_webhooks=1)
        r = shell(create(HOOK) + create(dict(HOOK, requestUrl="https://example.com/2")), self.emu)
        self.assertIn("apify: 403 too-many-webhooks: ", r.err)
        self.assertEqual(len(self.emu.posts()), 2)
        self.assertEqual(len(self.emu.webhooks()), 1)

    def test_no_token_is_an_error_before_sending(self):
        r = shell(create(HOOK), self.emu, token=None)
        self.assertIn("apify: no API token; set APIFY_TOKEN", r.err)
        self.assertNothingSent()

    def test_a_base_url_from_the_environment_that_is_no_url_is_refused_not_replaced(self):
        r = shell(create(HOOK), self.emu, env={"APIFY_API_BASE_URL": f"127.0.0.1:{self.emu.port}"})
        self.assertIn(f'apify: base_url "127.0.0.1:{self.emu.port}" is not an absolute http or'
                      ' https URL (check APIFY_API_BASE_URL)', r.err)
        self.assertNothingSent()

    def test_plain_http_to_another_host_is_refused(self):
        r = shell("SELECT apify_config('base_url', 'http://example.com');\n" + create(HOOK),
                  self.emu)
        self.assertIn('apify: refusing to send the token in clear text to "example.com"', r.err)
        self.assertNothingSent()


class Retries(EmulatorCase):

    def test_5xx_then_success(self):
        self.emu.configure(script=["503", "500"])
        start = time.monotonic()
        r = shell(FAST + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()
        self.assertEqual([p["status"] for p in posts], [503, 500, 201])
        self.assertEqual(len({p["body"] for p in posts}), 1)
        self.assertEqual(len(self.emu.webhooks()), 1)
        # backoff: 0.5-1 s, then 1-2 s
        self.assertGreaterEqual(time.monotonic() - start, 1.5)

    def test_5xx_past_the_attempts_is_an_error_naming_them(self):
        self.emu.configure(script=["503", "503", "503"])
        r = shell(FAST + create(HOOK), self.emu)
        self.assertRegex(r.err, r"apify: 503 internal-server-error: .* \(after 3 attempts\)")
        self.assertEqual(len(self.emu.posts()), 3)
        self.assertEqual(self.emu.webhooks(), [])

    def test_cut_connection_after_create_is_retried_without_a_duplicate(self):
        self.emu.configure(script=["cut"])
        r = shell(FAST + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        [hook] = self.emu.webhooks()
        self.assertEqual(json.loads(r.lines[-1])["id"], hook["id"])
        self.assertEqual([p["status"] for p in self.emu.posts()], ["cut", 201])

    def test_malformed_answer_is_retried_without_a_duplicate(self):
        self.emu.configure(script=["malformed"])
        r = shell(FAST + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.emu.webhooks()), 1)
        self.assertEqual(len(self.emu.posts()), 2)

    def test_slow_answer_times_out_and_is_retried(self):
        self.emu.configure(script=["slow"], slow_ms=3000)
        r = shell(FAST + "SELECT apify_config('timeout_ms', 500);\n" + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.emu.webhooks()), 1)
        self.assertGreaterEqual(len(self.emu.posts()), 2)

    def test_429_honours_retry_after(self):
        self.emu.configure(script=["429"], retry_after=2)
        start = time.monotonic()
        r = shell(FAST + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([p["status"] for p in self.emu.posts()], [429, 201])
        self.assertGreaterEqual(time.monotonic() - start, 2.0)

    def test_other_4xx_is_never_retried(self):
        self.emu.configure(max_webhooks=0)
        r = shell(FAST + create(HOOK), self.emu)
        self.assertIn("apify: 403 too-many-webhooks", r.err)
        self.assertEqual(len(self.emu.posts()), 1)

    def test_unreachable_base_url_names_the_attempts(self):
        port = closed_port()
        r = shell(FAST + f"SELECT apify_config('base_url', 'http://127.0.0.1:{port}');\n"
                  + create(HOOK), self.emu)
        self.assertRegex(r.err, rf"apify: POST http://127\.0\.0\.1:{port}/v2/webhooks failed: "
                                r".+ \(after 3 attempts\)")


class Configuration(EmulatorCase):

    def test_reading_the_configuration_never_shows_the_token(self):
        r = shell("SELECT apify_config();\nSELECT apify_config('token');\n", self.emu)
        self.assertEqual(r.rc, 0, r)
        settings = json.loads(r.lines[0])
        self.assertEqual(settings["token"], "(set)")
        self.assertEqual(settings["base_url"], self.emu.base_url)
        self.assertEqual(r.lines[1], "(set)")
        self.assertNotIn(TOKEN, r.out)
        self.assertEqual(set(settings), {"token", "base_url", "ca_file", "connect_timeout_ms",
                                         "timeout_ms", "max_attempts", "max_retry_time_ms",
                                         "concurrency", "rate_limit", "progress"})

    def test_defaults(self):
        r = shell("SELECT apify_config();", token=None,
                  env={"APIFY_API_BASE_URL": "", "APIFY_TOKEN": ""})
        settings = json.loads(r.out)
        self.assertEqual(settings["base_url"], "https://api.apify.com")
        self.assertIsNone(settings["token"])
        self.assertEqual(settings["max_attempts"], 8)
        self.assertEqual(settings["progress"], "auto")

    def test_set_and_read_back(self):
        r = shell("SELECT apify_config('timeout_ms', 1234);\n"
                  "SELECT apify_config('base_url', 'https://api.example.com/');\n"
                  "SELECT apify_config('progress', 'off');\n"
                  "SELECT apify_config('token', NULL);\n", self.emu)
        self.assertEqual(r.lines, ["1234", "https://api.example.com", "off", ""], r)

    def test_bad_settings_are_clear_errors(self):
        cases = [
            ("apify_config('timout_ms', 5)", 'apify: unknown setting \'timout_ms\'; settings: '
             'token, base_url, ca_file, connect_timeout_ms, timeout_ms, max_attempts, '
             'max_retry_time_ms, concurrency, rate_limit, progress'),
            ("apify_config('timeout_ms', 'soon')",
             "apify: timeout_ms must be an integer from 1 to 3.6e+06, not 'soon'"),
            ("apify_config('max_attempts', 0)",
             "apify: max_attempts must be an integer from 1 to 100, not '0'"),
            ("apify_config('progress', 'maybe')",
             "apify: progress must be 'auto', 'on' or 'off', not 'maybe'"),
            ("apify_config('base_url', 'ftp://x')",
             'apify: base_url "ftp://x" must be an absolute http or https URL'),
        ]
        for call, message in cases:
            with self.subTest(call=call):
                r = shell(f"SELECT {call};", self.emu)
                self.assertIn(message, r.err)


class DryRun(EmulatorCase):

    def test_dry_run_shows_the_request_and_sends_nothing(self):
        r = shell(f"SELECT apify_dry_run({q(HOOK)});", self.emu)
        self.assertEqual(r.rc, 0, r)
        dry = json.loads(r.out)
        self.assertEqual(dry["method"], "POST")
        self.assertEqual(dry["url"], self.emu.base_url + "/v2/webhooks")
        self.assertEqual(dry["headers"]["Authorization"], "Bearer <redacted>")
        self.assertEqual(dry["headers"]["Content-Type"], "application/json")
        self.assertTrue(dry["headers"]["User-Agent"].startswith("apify-sqlite/"))
        self.assertEqual(dry["body"]["requestUrl"], HOOK["requestUrl"])
        self.assertNotIn(TOKEN, r.out)
        self.assertNothingSent()

    def test_dry_run_body_is_what_is_sent(self):
        r = shell(f"SELECT json(apify_dry_run({q(HOOK)}) -> '$.body');\n" + create(HOOK), self.emu)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines[0], self.emu.posts()[0]["body"])

    def test_dry_run_validates(self):
        r = shell("SELECT apify_dry_run('{}');", self.emu)
        self.assertIn("apify: requestUrl is required", r.err)


class Registration(unittest.TestCase):

    def test_what_the_extension_registers(self):
        r = shell("SELECT name, narg, flags & 0x80000 <> 0 FROM pragma_function_list"
                  " WHERE name LIKE 'apify%' ORDER BY name, narg;\n"
                  "SELECT name FROM pragma_module_list WHERE name LIKE 'apify%' ORDER BY name;\n")
        self.assertEqual(r.lines, [
            "apify_config|0|1", "apify_config|1|1", "apify_config|2|1",
            "apify_create_webhook|1|1", "apify_dry_run|1|0", "apify_preview_dispatch|1|0",
            "apify_preview_dispatch|2|0", "apify_test_webhook|1|1", "apify_version|0|0",
            "apify_remote_webhooks", "apify_webhook_dispatches", "apify_webhooks"], r)

    def test_only_the_entry_points_are_exported(self):
        nm = subprocess.run(["nm", "-D", "--defined-only", str(EXT) + ".so"],
                            capture_output=True, text=True)
        names = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
        self.assertEqual(names - {"_init", "_fini"},
                         {"sqlite3_apify_init", "sqlite3_apify_no_network_init"})

    def test_version(self):
        r = shell("SELECT apify_version();")
        self.assertRegex(r.out.strip(), r"^\d+\.\d+\.\d+$")


class DirectOnly(EmulatorCase):
    """A database file someone hands you cannot reach the network or the configuration."""

    def test_trigger_cannot_create_a_webhook(self):
        r = shell("CREATE TABLE t(x);\n"
                  "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN"
                  f" SELECT apify_create_webhook({q(HOOK)}); END;\n"
                  "INSERT INTO t VALUES (1);\n", self.emu)
        # exact: the whole of stderr is SQLite's DIRECTONLY refusal, at prepare time
        self.assertEqual(r.err, "Parse error near line 4: unsafe use of apify_create_webhook()\n")
        self.assertNothingSent()

    def test_view_cannot_create_a_webhook_or_change_the_base_url(self):
        r = shell(f"CREATE VIEW v AS SELECT apify_create_webhook({q(HOOK)});\n"
                  "CREATE VIEW w AS SELECT apify_config('base_url', 'https://evil.example');\n"
                  "SELECT * FROM v;\nSELECT * FROM w;\nSELECT apify_config('base_url');\n",
                  self.emu)
        self.assertEqual(r.err.splitlines(),
                         ["Parse error near line 4: unsafe use of apify_create_webhook()",
                          "Parse error near line 5: unsafe use of apify_config()"])
        self.assertEqual(r.lines, [self.emu.base_url])
        self.assertNothingSent()

    def test_trigger_cannot_insert_into_the_table(self):
        r = shell("CREATE TABLE t(x);\n"
                  "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN"
                  " INSERT INTO apify_webhooks(webhook) VALUES (" + q(HOOK) + "); END;\n"
                  "INSERT INTO t VALUES (1);\n", self.emu)
        self.assertEqual(r.err,
                         'Parse error near line 4: unsafe use of virtual table "apify_webhooks"\n')
        self.assertNothingSent()


@unittest.skipUnless(os.path.exists("/usr/bin/python3"), "Debian's python3 is not installed")
class PythonHost(EmulatorCase):

    def test_python_sqlite3_creates_a_webhook(self):
        code = ("import json, sys; sys.path.insert(0, %r)\n"
                "from tests.harness import connect\n"
                "class E: base_url = %r\n"
                "conn = connect(E())\n"
                "row = conn.execute('SELECT apify_create_webhook(?)', (json.dumps(%r),)).fetchone()\n"
                "print(json.loads(row[0])['id'])\n") % (str(ROOT), self.emu.base_url, HOOK)
        proc = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        [hook] = self.emu.webhooks()
        self.assertEqual(proc.stdout.strip(), hook["id"])


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
class Valgrind(EmulatorCase):

    def test_shell_session_has_no_leaks_or_bad_access(self):
        sql = (FAST + create(HOOK) + create(dict(HOOK, requestUrl="nope"))
               + f"SELECT apify_dry_run({q(HOOK)});\nSELECT apify_config();\n"
               "SELECT apify_config('token', 'other');\n" + create(HOOK)
               + f"SELECT apify_config('token', {q(TOKEN)});\n"
               + "INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                 " ('https://example.com/v', '[\"TEST\"]', 'a1'), ('bad', '[]', 'a2');\n"
               + "INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                 " ('https://example.com/v', '[\"TEST\"]', 'a1');\n"
               + "SELECT status, count(*) FROM apify_webhooks GROUP BY status;\n")
        r = shell(sql, self.emu, timeout=300,
                  prefix=["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                          "--error-exitcode=99", "--quiet"])
        self.assertNotEqual(r.rc, 99, r.err[-3000:])
        self.assertNotIn("Invalid read", r.err)
        self.assertNotIn("Invalid write", r.err)
        self.assertNotIn("definitely lost", r.err)
        self.assertIn("created|1", r.out)

    def test_the_whole_life_through_savepoints_has_no_uninitialised_read(self):
        # The semantics that once read savepoint marks never written (xRollbackTo of a level
        # the table joined above): two tables, nested savepoints, a rolled-back first write, a
        # schema change mid-transaction, then UPDATE, DELETE, adoption and a re-creation.
        row = ("INSERT INTO {t}(request_url, event_types, actor_id) VALUES"
               " ('https://example.com/{t}/{n}', '[\"TEST\"]', 'a{n}');\n")
        sql = (FAST + "CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n"
               "BEGIN;\nSAVEPOINT a;\n" + row.format(t="apify_webhooks", n=1)
               + "ROLLBACK TO a;\n" + "SAVEPOINT b;\n" + row.format(t="nightly", n=2)
               + "SAVEPOINT c;\n" + row.format(t="apify_webhooks", n=3)
               + "ROLLBACK TO b;\nCREATE TABLE t(x);\nALTER TABLE t ADD COLUMN y;\n"
               + row.format(t="apify_webhooks", n=4) + row.format(t="nightly", n=5)
               + "COMMIT;\n"
               "UPDATE apify_webhooks SET description = 'd' WHERE actor_id = 'a4';\n"
               "DELETE FROM nightly;\n" + row.format(t="nightly", n=5)
               + "SELECT actor_id, status FROM apify_webhooks UNION ALL"
               " SELECT actor_id, status FROM nightly;\n")
        r = shell(sql, self.emu, timeout=300,
                  prefix=["valgrind", "--error-exitcode=99", "--quiet", "--track-origins=yes"])
        self.assertNotEqual(r.rc, 99, r.err[-3000:])
        self.assertNotIn("uninitialised", r.err)
        self.assertNotIn("Invalid read", r.err)
        self.assertEqual(r.lines[-2:], ["a4|created", "a5|created"], r)
        self.assertEqual([json.loads(p["body"])["condition"]["actorId"] for p in self.emu.posts()],
                         ["a4", "a5", "a5"], "only the committed rows, then the re-creation")


if __name__ == "__main__":
    unittest.main()
