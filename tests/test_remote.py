"""The account as tables: apify_remote_webhooks, apify_webhook_dispatches and
apify_test_webhook(), end to end through the real sqlite3 shell (and Debian's Python sqlite3)
against the local emulator, each outcome proved by the requests the emulator received. A tiny
http.server of the test's own plays a hostile API (control characters, an echoed token, answers
that are not lists)."""

import http.server
import json
import os
import re
import sqlite3
import threading
import unittest

from tests import harness
from tests.harness import TOKEN, closed_port, connect, shell

SECRET = "tok-SECRET-Rm4Qx8Lp2Wz6Kt9Vb3Nh7Yc5"    # distinctive: found anywhere, it leaked
PAGE = "1000"
FAST = ("SELECT apify_config('max_attempts', 3), apify_config('timeout_ms', 2000),"
        " apify_config('connect_timeout_ms', 1000);\n")
HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}


def q(value):
    """A SQL string literal."""
    if not isinstance(value, str):
        value = json.dumps(value)
    return "'" + value.replace("'", "''") + "'"


def rows_json(result):
    """The rows a `.mode json` shell printed, the result sets of several statements in order."""
    decoder, out, rows, i = json.JSONDecoder(), result.out, [], 0
    while True:
        while i < len(out) and out[i].isspace():
            i += 1
        if i == len(out):
            return rows
        part, i = decoder.raw_decode(out, i)
        rows += part


class RemoteCase(harness.EmulatorCase):

    def seed(self, count=1, dispatches=0, webhook=None, suffix=True):
        body = {"token": TOKEN, "count": count, "suffix": suffix, "dispatches": dispatches}
        if webhook:
            body["webhook"] = webhook
        return self.emu._control("POST", "/_emulator/seed", body)

    def gets(self):
        """(path, offset, limit) of every GET the emulator received, in order."""
        return [(e["path"], e["query"].get("offset"), e["query"].get("limit"))
                for e in self.emu.log() if e["method"] == "GET"]

    def create(self, hook):
        r = self.emu.request("POST", "/v2/webhooks", hook)
        self.assertEqual(r.status, 201, r)
        return r.json()["data"]

    def sql(self, text, **kwargs):
        r = shell(".mode json\n" + text, self.emu, **kwargs)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        return rows_json(r)


class RemoteWebhooks(RemoteCase):

    def test_pages_through_2500_webhooks_in_order_each_once(self):
        ids = self.seed(2500)["webhookIds"]
        rows = self.sql("SELECT rowid, id, request_url, actor_id FROM apify_remote_webhooks;\n")
        self.assertEqual(len(rows), 2500)
        self.assertEqual([r["id"] for r in rows], ids)          # createdAt order, each once
        self.assertEqual([r["rowid"] for r in rows], list(range(1, 2501)))
        self.assertEqual(rows[7]["request_url"], "https://example.com/hook7")
        self.assertEqual(rows[7]["actor_id"], "SeededActorIdAbcd7")
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", PAGE), ("/v2/webhooks", "1000", PAGE),
                                       ("/v2/webhooks", "2000", PAGE)])
        for entry in self.emu.log():
            self.assertEqual(entry["query"].get("desc"), "0")
            self.assertEqual(entry["auth"], "valid")

    def test_stops_at_the_total_without_an_empty_page(self):
        self.seed(2000)
        [row] = self.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM apify_remote_webhooks;\n")
        self.assertEqual(row, {"n": 2000, "d": 2000})
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", PAGE), ("/v2/webhooks", "1000", PAGE)])

    def test_an_empty_account_is_one_request_and_no_row(self):
        self.assertEqual(self.sql("SELECT * FROM apify_remote_webhooks;\n"), [])
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", PAGE)])

    def test_a_statement_that_stops_early_reads_only_the_pages_it_needs(self):
        ids = self.seed(2500)["webhookIds"]
        rows = self.sql("SELECT id FROM apify_remote_webhooks LIMIT 3;\n"
                        "SELECT id FROM apify_remote_webhooks LIMIT 1 OFFSET 1200;\n")
        self.assertEqual([r["id"] for r in rows], ids[:3] + [ids[1200]])
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", PAGE), ("/v2/webhooks", "0", PAGE),
                                       ("/v2/webhooks", "1000", PAGE)])

    def test_columns_of_a_list_item(self):
        hook = self.create({**HOOK, "isAdHoc": False, "doNotRetry": True, "ignoreSslErrors": True,
                            "shouldInterpolateStrings": True, "description": "kept remotely",
                            "eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"],
                            "payloadTemplate": '{"x": {{userId}}}'})
        r = self.emu.request("POST", f"/v2/webhooks/{hook['id']}/test")
        self.assertEqual(r.status, 201, r)
        listed = self.emu.request("GET", "/v2/webhooks").json()["data"]["items"][0]
        [row] = self.sql("SELECT * FROM apify_remote_webhooks;\n")
        self.assertEqual(row, {
            "id": hook["id"], "request_url": "https://example.com/h",
            "event_types": '["ACTOR.RUN.SUCCEEDED","ACTOR.RUN.FAILED"]',
            "actor_id": "HDSasDasz78YcAPEB", "actor_task_id": None, "actor_run_id": None,
            "is_ad_hoc": 0,
            # WebhookShort has no templates and no description
            "payload_template": None, "headers_template": None, "description": None,
            "should_interpolate_strings": 1, "ignore_ssl_errors": 1, "do_not_retry": 1,
            "created_at": hook["createdAt"], "modified_at": hook["modifiedAt"],
            "user_id": hook["userId"], "last_dispatch_status": "FAILED",
            "last_dispatch_finished_at": listed["lastDispatch"]["finishedAt"],
            "total_dispatches": 1, "is_enabled": 1, "action_type": "HTTP_REQUEST",
            "webhook": json.dumps(listed, separators=(",", ":"))})
        self.assertEqual(json.loads(row["webhook"]), listed)

    def test_actor_and_task_equality_use_the_scoped_lists(self):
        a1 = self.create({**HOOK, "condition": {"actorId": "ActorOne"}})
        self.create({**HOOK, "condition": {"actorId": "ActorTwo"}})
        t1 = self.create({**HOOK, "condition": {"actorTaskId": "TaskOne"},
                          "description": "task lists have full items"})
        odd = self.create({**HOOK, "condition": {"actorId": "a/b c?d"}})
        rows = self.sql(
            "SELECT id FROM apify_remote_webhooks WHERE actor_id = 'ActorOne';\n"
            "SELECT id, description FROM apify_remote_webhooks WHERE actor_task_id = 'TaskOne';\n"
            "SELECT id FROM apify_remote_webhooks WHERE actor_id = 'a/b c?d';\n"
            "SELECT id FROM apify_remote_webhooks WHERE actor_id = 'ActorOne'"
            " AND actor_task_id = 'TaskOne';\n"
            "SELECT count(*) AS n FROM apify_remote_webhooks WHERE actor_id = NULL;\n")
        self.assertEqual(rows, [{"id": a1["id"]},
                                {"id": t1["id"], "description": "task lists have full items"},
                                {"id": odd["id"]}, {"n": 0}])
        self.assertEqual(self.gets(), [("/v2/actors/ActorOne/webhooks", "0", PAGE),
                                       ("/v2/actor-tasks/TaskOne/webhooks", "0", PAGE),
                                       ("/v2/actors/a%2Fb%20c%3Fd/webhooks", "0", PAGE),
                                       ("/v2/actors/ActorOne/webhooks", "0", PAGE)])

    def test_actor_in_list_reads_each_scoped_list(self):
        one = self.create({**HOOK, "condition": {"actorId": "ActorOne"}})
        two = self.create({**HOOK, "condition": {"actorId": "ActorTwo"}})
        self.create({**HOOK, "condition": {"actorId": "ActorThree"}})
        rows = self.sql("SELECT id FROM apify_remote_webhooks"
                        " WHERE actor_id IN ('ActorOne', 'ActorTwo') ORDER BY created_at;\n")
        self.assertEqual([r["id"] for r in rows], [one["id"], two["id"]])
        self.assertEqual(sorted(self.gets()), [("/v2/actors/ActorOne/webhooks", "0", PAGE),
                                               ("/v2/actors/ActorTwo/webhooks", "0", PAGE)])

    def test_made_elsewhere_and_other_constraints_left_to_sqlite(self):
        ids = self.seed(30)["webhookIds"]
        rows = self.sql("SELECT id FROM apify_remote_webhooks WHERE id = " + q(ids[4]) + ";\n"
                        "SELECT count(*) AS n FROM apify_remote_webhooks"
                        " WHERE request_url LIKE '%hook1%';\n")
        self.assertEqual(rows, [{"id": ids[4]}, {"n": 11}])
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", PAGE)] * 2)

    def test_read_only(self):
        self.seed(1)
        for sql in ("DELETE FROM apify_remote_webhooks;",
                    "UPDATE apify_remote_webhooks SET description = 'x';",
                    "INSERT INTO apify_remote_webhooks(id) VALUES ('x');"):
            r = shell(sql + "\n", self.emu)
            self.assertIn("table apify_remote_webhooks may not be modified", r.err, sql)
        r = shell("CREATE VIRTUAL TABLE mine USING apify_remote_webhooks;\n", self.emu)
        self.assertIn("no such module: apify_remote_webhooks", r.err)
        self.assertEqual([e for e in self.emu.log() if e["method"] != "GET"], [])


class Dispatches(RemoteCase):

    def test_one_webhooks_log_paged_over_2500_dispatches(self):
        seeded = self.seed(2, dispatches=2500)
        hook = seeded["webhookIds"][0]
        rows = self.sql(f"SELECT rowid, id, webhook_id, webhook, status, response_status,"
                        f" error_message, event_type FROM apify_webhook_dispatches({q(hook)});\n")
        self.assertEqual([r["id"] for r in rows], seeded["dispatchIds"])
        self.assertEqual([r["rowid"] for r in rows], list(range(1, 2501)))
        self.assertEqual({(r["webhook_id"], r["webhook"], r["status"], r["response_status"],
                           r["error_message"], r["event_type"]) for r in rows},
                         {(hook, hook, "SUCCEEDED", 200, None, "ACTOR.RUN.SUCCEEDED")})
        path = f"/v2/webhooks/{hook}/dispatches"
        self.assertEqual(self.gets(), [(path, "0", PAGE), (path, "1000", PAGE),
                                       (path, "2000", PAGE)])

    def test_the_accounts_dispatches_and_their_columns(self):
        hook = self.create(HOOK)
        test = self.emu.request("POST", f"/v2/webhooks/{hook['id']}/test").json()["data"]
        rows = self.sql("SELECT * FROM apify_webhook_dispatches;\n"
                        "SELECT webhook FROM apify_webhook_dispatches"
                        " WHERE webhook = " + q(hook["id"]) + ";\n")
        self.assertEqual(rows[0], {
            "id": test["id"], "webhook_id": hook["id"], "event_type": "TEST",
            "status": "FAILED", "created_at": test["createdAt"],
            "response_status": None,
            "error_message": test["calls"][-1]["errorMessage"],
            "calls": json.dumps(test["calls"], separators=(",", ":")),
            "event_data": json.dumps(test["eventData"], separators=(",", ":")),
            "dispatch": json.dumps(test, separators=(",", ":"))})
        self.assertEqual(rows[1:], [{"webhook": hook["id"]}])
        self.assertEqual(self.gets(), [
            ("/v2/webhook-dispatches", "0", PAGE),
            (f"/v2/webhooks/{hook['id']}/dispatches", "0", PAGE)])

    def test_last_call_of_a_delivery_to_a_receiver(self):
        received = []

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(500)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"oops")

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        hook = self.create({**HOOK, "requestUrl": f"http://127.0.0.1:{server.server_port}/in"})
        rows = self.sql(f"SELECT apify_test_webhook({q(hook['id'])}) ->> 'status' AS s;\n"
                        f"SELECT status, response_status, event_type FROM"
                        f" apify_webhook_dispatches({q(hook['id'])});\n")
        self.assertEqual(rows, [{"s": "FAILED"},
                                {"status": "FAILED", "response_status": 500, "event_type": "TEST"}])
        self.assertEqual(len(received), 1)

    def test_dispatches_of_each_webhook_in_a_join(self):
        a = self.seed(1, dispatches=3, webhook={"idempotencyKey": "a"}, suffix=False)
        b = self.seed(1, dispatches=2, webhook={"idempotencyKey": "b"}, suffix=False)
        rows = self.sql("SELECT r.id AS w, count(d.id) AS n FROM apify_remote_webhooks r,"
                        " apify_webhook_dispatches(r.id) d GROUP BY r.id ORDER BY n;\n")
        self.assertEqual(rows, [{"w": b["webhookIds"][0], "n": 2},
                                {"w": a["webhookIds"][0], "n": 3}])
        self.assertEqual(sorted(self.gets()), sorted([
            ("/v2/webhooks", "0", PAGE),
            (f"/v2/webhooks/{a['webhookIds'][0]}/dispatches", "0", PAGE),
            (f"/v2/webhooks/{b['webhookIds'][0]}/dispatches", "0", PAGE)]))

    def test_unknown_webhook_is_the_statements_error(self):
        r = shell("SELECT * FROM apify_webhook_dispatches('NoSuchWebhook01');\n", self.emu)
        self.assertNotEqual(r.rc, 0)
        self.assertEqual(r.err.strip(), "Runtime error near line 2: apify: 404 record-not-found:"
                                        " Webhook was not found")
        self.assertEqual(self.gets(), [("/v2/webhooks/NoSuchWebhook01/dispatches", "0", PAGE)])

    def test_null_argument_matches_nothing_and_sends_nothing(self):
        rows = self.sql("SELECT count(*) AS n FROM apify_webhook_dispatches(NULL);\n")
        self.assertEqual(rows, [{"n": 0}])
        self.assertEqual(self.emu.log(), [])


class TestWebhook(RemoteCase):

    def test_returns_the_dispatch_as_json_and_sends_one_post(self):
        hook = self.create(HOOK)
        rows = self.sql(f"SELECT apify_test_webhook({q(hook['id'])}) AS d;\n"
                        f"SELECT json_array(apify_test_webhook({q(hook['id'])})) ->> '$[0].eventType'"
                        f" AS t;\n")
        dispatch = json.loads(rows[0]["d"])
        self.assertEqual((dispatch["webhookId"], dispatch["eventType"]), (hook["id"], "TEST"))
        self.assertEqual(rows[1], {"t": "TEST"})    # JSON subtype: json_array() nests it
        posts = [e for e in self.emu.log() if e["path"].endswith("/test")]
        self.assertEqual([(e["method"], e["path"]) for e in posts],
                         [("POST", f"/v2/webhooks/{hook['id']}/test")] * 2)
        self.assertEqual(posts[0]["dispatchId"], dispatch["id"])

    def test_unknown_id(self):
        r = shell("SELECT apify_test_webhook('NoSuchWebhook01');\n", self.emu)
        self.assertEqual(r.err.strip(), "Runtime error near line 2: apify: 404 record-not-found:"
                                        " Webhook was not found")

    def test_bad_ids_are_refused_before_sending(self):
        for arg, what in (("NULL", "NULL"), ("42", "an integer"), ("''", "''"),
                          ("x'00'", "a blob"), ("1.5", "a real")):
            r = shell(f"SELECT apify_test_webhook({arg});\n", self.emu)
            self.assertEqual(r.err.strip(), "Runtime error near line 2: apify: apify_test_webhook"
                             f" needs a webhook id (non-empty text), not {what}", arg)
        self.assertEqual(self.emu.log(), [])

    def test_never_sent_twice(self):
        # No idempotency key: after 503, a cut connection or an answer that is not Apify's, the
        # dispatch may have been made, so the POST is not repeated.
        hook = self.create(HOOK)
        for action, message in (
                ("503", "apify: 503 internal-server-error: Internal server error (injected by the"
                        " emulator)"),
                ("cut", f"apify: POST {self.emu.base_url}/v2/webhooks/{hook['id']}/test failed: "),
                ("malformed", "apify: 201: the answer is not ")):
            with self.subTest(action):
                self.emu.configure(script=[action])
                before = len(self.emu.log())
                r = shell(FAST + f"SELECT apify_test_webhook({q(hook['id'])});\n", self.emu)
                self.assertTrue(r.err.startswith("Runtime error near line 3: " + message), r)
                posts = [e for e in self.emu.log()[before:] if e["method"] == "POST"]
                self.assertEqual(len(posts), 1)

    def test_escapes_the_id_in_the_path(self):
        r = shell("SELECT apify_test_webhook('../../v2/webhooks');\n", self.emu)
        self.assertIn("404", r.err)
        [entry] = self.emu.log()
        self.assertEqual(entry["path"], "/v2/webhooks/..%2F..%2Fv2%2Fwebhooks/test")


class Failures(RemoteCase):
    tokens = [TOKEN, SECRET]

    def test_wrong_token(self):
        for sql in ("SELECT * FROM apify_remote_webhooks;", "SELECT * FROM apify_webhook_dispatches;",
                    "SELECT apify_test_webhook('AnyWebhookId0001');"):
            r = shell(sql + "\n", self.emu, token="wrong-token-123")
            self.assertEqual(r.err.strip(), "Runtime error near line 2: apify: 401"
                             " user-or-token-not-found: User was not found or authentication"
                             " token is not valid", sql)

    def test_no_token(self):
        r = shell("SELECT * FROM apify_remote_webhooks;\n", self.emu, token=None)
        self.assertIn("apify:", r.err)
        self.assertIn("token", r.err)
        self.assertEqual(self.emu.log(), [])

    def test_unreachable(self):
        port = closed_port()
        base = f"http://127.0.0.1:{port}"
        r = shell(FAST + "SELECT * FROM apify_remote_webhooks;\n"
                  "SELECT * FROM apify_webhook_dispatches('abc');\n", self.emu,
                  env={"APIFY_API_BASE_URL": base})
        lines = r.err.strip().splitlines()
        self.assertRegex(lines[0], "^Runtime error near line 3: apify: GET " + re.escape(base)
                         + re.escape("/v2/webhooks?offset=0&limit=1000&desc=0 failed: ")
                         + r".*\(after 3 attempts\)$")
        self.assertRegex(lines[1], "^Runtime error near line 4: apify: GET " + re.escape(base)
                         + re.escape("/v2/webhooks/abc/dispatches?offset=0&limit=1000&desc=0"
                                     " failed: "))

    def test_oversized_pages_are_asked_for_in_halves(self):
        # 1,200 list items of about 1.5 kB: a page of 1,000 is over the 1 MiB cap on answers.
        ids = self.seed(1200, webhook={"requestUrl": "https://example.com/" + "x" * 1300})
        rows = self.sql("SELECT id FROM apify_remote_webhooks;\n")
        self.assertEqual([r["id"] for r in rows], ids["webhookIds"])
        self.assertEqual(self.gets(), [("/v2/webhooks", "0", "1000"), ("/v2/webhooks", "0", "500"),
                                       ("/v2/webhooks", "500", "500"),
                                       ("/v2/webhooks", "1000", "500")])


class DirectOnly(RemoteCase):
    """A database file cannot read the account (spending the token) from its schema."""

    def hostile(self, schema):
        db = os.path.join(self.tmp.name, "hostile.db")
        r = shell(schema, db=db, env={"APIFY_TOKEN": "", "APIFY_API_BASE_URL": ""})
        self.assertEqual((r.rc, r.err), (0, ""), r)
        conn = connect(self.emu, db=db, isolation_level=None)
        self.addCleanup(conn.close)
        return conn

    def assertUnsafe(self, conn, sql, message):
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute(sql).fetchall()
        self.assertEqual(str(caught.exception), message)

    def test_views_and_triggers_of_a_database_file(self):
        conn = self.hostile(
            "CREATE VIEW v_remote AS SELECT id FROM apify_remote_webhooks;\n"
            "CREATE VIEW v_dispatches AS SELECT id FROM apify_webhook_dispatches('x');\n"
            "CREATE VIEW v_test AS SELECT apify_test_webhook('x') AS d;\n"
            "CREATE TABLE t(x);\n"
            "CREATE TRIGGER t_read AFTER INSERT ON t BEGIN"
            " SELECT count(*) FROM apify_remote_webhooks; END;\n"
            "CREATE TABLE u(x);\n"
            "CREATE TRIGGER u_test AFTER INSERT ON u BEGIN SELECT apify_test_webhook(new.x); END;\n"
            "CREATE TABLE w(x);\n"
            "CREATE TRIGGER w_log AFTER INSERT ON w BEGIN"
            " SELECT count(*) FROM apify_webhook_dispatches; END;\n")
        for trusted in (0, 1):
            conn.execute(f"PRAGMA trusted_schema={trusted}")
            for sql, message in [
                    ("SELECT * FROM v_remote",
                     'unsafe use of virtual table "apify_remote_webhooks"'),
                    ("SELECT * FROM v_dispatches",
                     'unsafe use of virtual table "apify_webhook_dispatches"'),
                    ("SELECT * FROM v_test", "unsafe use of apify_test_webhook()"),
                    ("INSERT INTO t VALUES (1)",
                     'unsafe use of virtual table "apify_remote_webhooks"'),
                    ("INSERT INTO u VALUES ('x')", "unsafe use of apify_test_webhook()"),
                    ("INSERT INTO w VALUES (1)",
                     'unsafe use of virtual table "apify_webhook_dispatches"')]:
                with self.subTest(sql, trusted_schema=trusted):
                    self.assertUnsafe(conn, sql, message)
        self.assertEqual(self.emu.log(), [])

    def test_a_check_constraint_naming_the_test_function_stops_everything(self):
        db = os.path.join(self.tmp.name, "check.db")
        r = shell("CREATE TABLE ck(x CHECK (apify_test_webhook(x) IS NOT NULL));\n", db=db,
                  env={"APIFY_TOKEN": "", "APIFY_API_BASE_URL": ""})
        self.assertEqual((r.rc, r.err), (0, ""), r)
        message = ('apify: table "ck" in database "main" has a CHECK constraint that calls'
                   " apify_test_webhook(); the extension does not send or change settings while"
                   " a database's schema can: drop or rebuild that table")
        statements = ["INSERT INTO ck VALUES ('x');", "SELECT * FROM apify_remote_webhooks;",
                      "SELECT * FROM apify_webhook_dispatches;", "SELECT apify_test_webhook('x');"]
        r = shell("\n".join(statements) + "\n", self.emu, db=db)
        self.assertEqual(r.err.splitlines(),
                         [f"Runtime error near line {n}: {message}" for n in range(2, 6)])
        self.assertEqual(self.emu.log(), [])

    def test_a_view_named_like_the_table_is_refused(self):
        db = os.path.join(self.tmp.name, "shadowing.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE apify_remote_webhooks(id)")
        con.commit()
        con.close()
        r = shell("SELECT * FROM apify_remote_webhooks;\n", self.emu, db=db)
        self.assertNotEqual(r.rc, 0)
        self.assertIn('table "apify_remote_webhooks" in database "main" takes the place of the'
                      " extension's table apify_remote_webhooks", r.err)
        self.assertEqual(self.emu.log(), [])


class HostileServer(unittest.TestCase):
    """A server of the test's own: control characters and the token in what it answers."""

    def setUp(self):
        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append((self.path, self.headers.get("Authorization")))
                path = self.path.split("?")[0]
                if path == "/v2/webhooks":
                    item = {"id": "Evil0000000000001", "requestUrl": f"https://x.example/{SECRET}",
                            "description": "red \u001b[31m alert\u0007 \u009b2J", "stats": None,
                            "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "condition": {"actorId": "A"},
                            "userId": SECRET}
                    status, body = 200, {"data": {"total": 1, "offset": 0, "limit": 1000,
                                                  "count": 1, "items": [item]}}
                elif path == "/v2/webhook-dispatches":
                    status, body = 403, {"error": {"type": "insufficient-\u001b[2Jpermissions",
                                                   "message": f"token {SECRET} may not\r\nread"}}
                elif path == "/v2/actors/NotAList/webhooks":
                    status, body = 200, {"data": {"items": "\u001b[31mnope"}}
                elif len(requests) == 1:
                    status, body = 503, {"error": {"type": "x", "message": "again"}}
                else:
                    status, body = 200, {"data": {"total": 0, "items": []}}
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.env = {"APIFY_API_BASE_URL": f"http://127.0.0.1:{self.server.server_port}",
                    "APIFY_TOKEN": SECRET, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def run_sql(self, sql):
        return shell(".mode json\n" + sql, env=self.env)

    def test_control_characters_and_the_token_never_come_out(self):
        r = self.run_sql("SELECT description, request_url, user_id, webhook"
                         " FROM apify_remote_webhooks;\n"
                         "SELECT * FROM apify_webhook_dispatches;\n")
        self.assertNotIn(SECRET, r.out + r.err)
        [row] = json.loads(r.out)
        self.assertEqual(row["description"], "red \ufffd[31m alert\ufffd \ufffd2J")
        self.assertEqual(row["request_url"], "https://x.example/<redacted>")
        self.assertEqual(row["user_id"], "<redacted>")
        whole = json.loads(row["webhook"])
        self.assertEqual(whole["description"], "red \ufffd[31m alert\ufffd \ufffd2J")
        self.assertEqual(whole["userId"], "<redacted>")
        for c in "\x1b\x07\x9b\r":
            self.assertNotIn(c, r.out + r.err)
        self.assertEqual(r.err.strip(), "Runtime error near line 4: apify: 403"
                         " insufficient-\ufffd[2Jpermissions: token <redacted> may not\ufffd\ufffdread")
        self.assertEqual(self.requests[0][1], f"Bearer {SECRET}")

    def test_data_that_is_not_a_list(self):
        r = self.run_sql("SELECT * FROM apify_remote_webhooks WHERE actor_id = 'NotAList';\n")
        base = self.env["APIFY_API_BASE_URL"]
        self.assertEqual(r.err.strip(), "Runtime error near line 3: apify: GET " + base
                         + "/v2/actors/NotAList/webhooks?offset=0&limit=1000&desc=0 answered data"
                         " that is not a list: {\"items\":\"\\ufffd[31mnope\"}")

    def test_a_page_is_asked_for_again_after_5xx(self):
        r = self.run_sql("SELECT count(*) AS n FROM apify_remote_webhooks WHERE actor_id = 'X';\n")
        self.assertEqual((r.err, json.loads(r.out)), ("", [{"n": 0}]))
        self.assertEqual([p for p, _ in self.requests],
                         ["/v2/actors/X/webhooks?offset=0&limit=1000&desc=0"] * 2)


class Memory(RemoteCase):

    def peak_rss_kb(self, count):
        """The peak RSS (kB) of a sqlite3 shell that reads count webhooks, whole items too. Read
        by the shell's own .system from /proc (VmHWM): the rusage of a child of this Python
        counts the RSS it had before exec, which is Python's."""
        self.emu.reset()
        self.seed(count)
        r = shell("SELECT count(*), sum(length(webhook)) FROM apify_remote_webhooks;\n"
                  ".system grep VmHWM /proc/$PPID/status\n", self.emu)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        counted = [line for line in r.lines if "|" in line]
        [peak] = [line for line in r.lines if line.startswith("VmHWM:")]
        self.assertEqual(counted[0].split("|")[0], str(count))
        self.assertEqual(len(self.gets()), (count + 999) // 1000)
        return int(peak.split()[1])

    @unittest.skipUnless(os.path.exists("/proc/self/status"), "needs /proc")
    @harness.skip_under_sanitizer("peak RSS of an instrumented shell says nothing")
    def test_memory_is_flat_from_1000_to_10000_webhooks(self):
        small = self.peak_rss_kb(1000)
        large = self.peak_rss_kb(10000)
        self.assertLessEqual(large, small * 1.2, (small, large))


if __name__ == "__main__":
    unittest.main()
