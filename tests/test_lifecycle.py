"""The whole life of a webhook from SQL: created by INSERT, changed by UPDATE (PUT), removed by
DELETE, created again by the same INSERT, adopted from elsewhere, through the sqlite3 shell and
through Python's sqlite3 module.

Every test reads the emulator's request log and its state: what was sent (method, path, body),
what was not, and what exists "on Apify" afterwards, compared with the rows of apify_webhooks.
"""

import collections
import json
import os
import shutil
import sqlite3
import subprocess
import unittest

from tests.harness import (ROOT, TESTS, EmulatorCase, connect, local_rows, shell,
                           skip_under_sanitizer)

N_ALL, N_UPDATED, N_DELETED = 200, 50, 50

# 200 actors; the first 50 have a typo in their webhook's host (exmaple), the last 50 retire.
ACTORS = ("CREATE TABLE actors(n INTEGER PRIMARY KEY, actor_id TEXT, name TEXT, retired INT);\n"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})"
          " INSERT INTO actors SELECT i, printf('actor%05d', i), 'name' || i, i>{keep} FROM c;\n")
INSERT = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
          " SELECT 'https://hooks.' || CASE WHEN n<={typos} THEN 'exmaple' ELSE 'example' END"
          " || '.com/' || name, '[\"ACTOR.RUN.SUCCEEDED\",\"ACTOR.RUN.FAILED\"]', actor_id"
          " FROM actors ORDER BY n;\n")
UPDATE = ("UPDATE apify_webhooks SET request_url = replace(request_url, 'exmaple', 'example')"
          " WHERE request_url LIKE '%exmaple%';\n")
DELETE = ("DELETE FROM apify_webhooks"
          " WHERE actor_id IN (SELECT actor_id FROM actors WHERE retired);\n")
EVENTS = ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"]
# Pacing aside (the emulator's X-RateLimit-Limit is high), few attempts unless a test says.
FAST = ("SELECT apify_config('timeout_ms', 2000), apify_config('connect_timeout_ms', 1000);\n")
NOT_VERIFIED = ("apify: row 1: the record of webhook {id} is not verified: this extension did not"
                " write it for this account (or wrote it under another token), so nothing is sent"
                " for it; adopt the webhook to manage it (INSERT INTO apify_webhooks(id) VALUES"
                " ('{id}')), or forget the record (DELETE FROM \"apify_webhooks_store\" WHERE"
                " seq={seq})")


def actors(n=N_ALL, keep=N_ALL - N_DELETED):
    return ACTORS.format(n=n, keep=keep)


def insert(typos=N_UPDATED):
    return INSERT.format(typos=typos)


def url(i, fixed=True):
    host = "exmaple" if (i <= N_UPDATED and not fixed) else "example"
    return f"https://hooks.{host}.com/name{i}"


def actor(i):
    return f"actor{i:05d}"


def api_requests(emu):
    """The log, less nothing: every API request as (method, path, status, body)."""
    return [(e["method"], e["path"], e["status"], e["body"]) for e in emu.log()]


class LifeCase(EmulatorCase):
    """One emulator per class (no webhook limit, no pacing to speak of), one database per test."""
    knobs = {"max_webhooks": 100000, "rate_limit_header": 100000}

    def sql(self, text, **kwargs):
        return shell(".output /dev/null\n" + FAST + ".output stdout\n" + text, self.emu,
                     db=self.db, **kwargs)

    def ok(self, text, **kwargs):
        r = self.sql(text, **kwargs)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        return r

    def rows(self, query="SELECT rowid, * FROM apify_webhooks ORDER BY rowid;"):
        r = self.sql(".mode json\n" + query)
        self.assertEqual(r.err, "", r)
        return json.loads(r.out) if r.out.strip() else []

    def store(self):
        """The store table, read without the extension (plain SQL)."""
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in
                    conn.execute("SELECT * FROM apify_webhooks_store ORDER BY seq")]
        finally:
            conn.close()

    def remote(self):
        """The webhooks on the emulator, by id."""
        return {w["id"]: w for w in self.emu.webhooks()}

    def mark(self):
        """From here on, sent() and only() see what is sent."""
        self.start = len(self.emu.log())

    def sent(self):
        return self.emu.log()[getattr(self, "start", 0):]

    def only(self, method):
        return [e for e in self.sent() if e["method"] == method]

    def assertNothingSent(self, what=""):
        self.assertEqual(self.sent(), [], what)

    def life(self):
        """200 created, 50 updated, 50 deleted, in three autocommit statements. Returns the
        rows after the inserts (by actor) for the ids."""
        self.ok(actors() + insert())
        created = {r["actor_id"]: r for r in self.rows()}
        self.assertEqual(len(created), N_ALL)
        self.mark()
        self.ok(UPDATE)
        self.ok(DELETE)
        return created

    def assertAccountIsTheLife(self, created, deleted_back=False):
        """The emulator holds exactly the webhooks of the life, with the expected fields, and
        apify_webhooks agrees with it id by id."""
        remote = self.remote()
        n = N_ALL if deleted_back else N_ALL - N_DELETED
        self.assertEqual(len(remote), n, "webhooks on the emulator")
        rows = self.rows()
        self.assertEqual(len(rows), n, "rows of apify_webhooks")
        self.assertEqual(collections.Counter(r["status"] for r in rows), {"created": n})
        by_actor = {r["actor_id"]: r for r in rows}
        for i in range(1, N_ALL + 1):
            a = actor(i)
            if i > N_ALL - N_DELETED and not deleted_back:
                self.assertNotIn(a, by_actor)
                self.assertNotIn(created[a]["id"], remote)
                continue
            row = by_actor[a]
            hook = remote[row["id"]]
            self.assertEqual(hook["requestUrl"], url(i), a)
            self.assertEqual(row["request_url"], url(i), a)
            self.assertEqual(hook["condition"], {"actorId": a}, a)
            self.assertEqual(hook["eventTypes"], EVENTS, a)
            if i <= N_ALL - N_DELETED:
                self.assertEqual(row["id"], created[a]["id"], f"{a} kept its webhook")
            else:
                self.assertNotEqual(row["id"], created[a]["id"], f"{a} has a new webhook")
        self.assertNotIn("emulator bug", self.emu.stderr_text())
        return rows


class WholeLife(LifeCase):
    """200 created, 50 updated, 50 deleted: the account holds exactly the 150 expected."""

    def test_200_created_50_updated_50_deleted_leave_exactly_150(self):
        created = self.life()
        puts, deletes = self.only("PUT"), self.only("DELETE")
        self.assertEqual(len(self.sent()), N_UPDATED + N_DELETED, "nothing else was sent")
        # PUT bodies: only the changed field, never an idempotencyKey.
        self.assertEqual(sorted(e["path"] for e in puts),
                         sorted(f"/v2/webhooks/{created[actor(i)]['id']}"
                                for i in range(1, N_UPDATED + 1)))
        for e in puts:
            body = json.loads(e["body"])
            self.assertEqual(list(body), ["requestUrl"], e)
            self.assertNotIn("idempotencyKey", e["body"])
            self.assertEqual(e["status"], 200, e)
        self.assertEqual(sorted(e["path"] for e in deletes),
                         sorted(f"/v2/webhooks/{created[actor(i)]['id']}"
                                for i in range(N_ALL - N_DELETED + 1, N_ALL + 1)))
        self.assertTrue(all(e["status"] == 204 and e["body"] == "" for e in deletes), deletes)
        rows = self.assertAccountIsTheLife(created)
        by_actor = {r["actor_id"]: r for r in rows}
        for i in range(1, N_UPDATED + 1):
            row = by_actor[actor(i)]
            self.assertEqual((row["operation"], row["http_status"], row["verified"]),
                             ("update", 200, 1))
            # The idempotency key is the record's identity: still the one the INSERT derived.
            self.assertEqual(row["idempotency_key"], created[actor(i)]["idempotency_key"])
            self.assertEqual(json.loads(row["response"])["requestUrl"], url(i))
        # Tombstones stay in the store, hidden from the table.
        store = self.store()
        self.assertEqual(len(store), N_ALL)
        tombs = [s for s in store if s["status"] == "deleted"]
        self.assertEqual(len(tombs), N_DELETED)
        self.assertTrue(all(s["operation"] == "delete" and s["http_status"] == 204
                            for s in tombs), tombs[:2])

    def test_the_same_statements_again_send_nothing(self):
        self.life()
        self.mark()
        self.ok(UPDATE + DELETE)
        self.assertNothingSent()

    def test_rerunning_the_original_insert_after_updates_sends_nothing_for_the_updated(self):
        """The key of an updated record still names its original request: the INSERT that made
        it (with the typo) is known, so only the deleted ones go out again."""
        self.life()
        self.mark()
        self.ok(insert())
        posts = self.only("POST")
        self.assertEqual(sorted(json.loads(e["body"])["condition"]["actorId"] for e in posts),
                         [actor(i) for i in range(N_ALL - N_DELETED + 1, N_ALL + 1)])
        self.assertEqual(len(self.sent()), N_DELETED, "POSTs of the deleted only")


class PutBodies(LifeCase):
    """UPDATE sends PUT with the fields that changed, as JSON of the right type (WebhookUpdate:
    no idempotencyKey, null for a field set to NULL), validated like a create before anything
    is sent; an UPDATE that changes nothing sends nothing."""

    def setUp(self):
        super().setUp()
        self.ok("INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)"
                " VALUES ('https://hooks.example.com/a', '[\"TEST\"]', 'actorA', 'first'),"
                " ('https://hooks.example.com/b', '[\"TEST\"]', 'actorB', 'second');\n")
        self.ids = {r["actor_id"]: r["id"] for r in self.rows()}
        self.mark()

    def put(self, sql, actor_id="actorA"):
        """Run sql; return the one PUT's decoded body after checking its path and 200."""
        self.ok(sql)
        puts = self.sent()
        self.assertEqual([(e["method"], e["path"]) for e in puts],
                         [("PUT", f"/v2/webhooks/{self.ids[actor_id]}")], puts)
        self.assertEqual(puts[0]["status"], 200, puts[0])
        self.assertNotIn("idempotencyKey", puts[0]["body"])
        return json.loads(puts[0]["body"])

    def hook(self, actor_id="actorA"):
        return self.remote()[self.ids[actor_id]]

    def test_text_field(self):
        body = self.put("UPDATE apify_webhooks SET description = 'changed'"
                        " WHERE actor_id = 'actorA';\n")
        self.assertEqual(body, {"description": "changed"})
        self.assertEqual(self.hook()["description"], "changed")

    def test_a_field_set_to_null_is_sent_as_null(self):
        body = self.put("UPDATE apify_webhooks SET description = NULL"
                        " WHERE actor_id = 'actorA';\n")
        self.assertEqual(body, {"description": None})
        self.assertIsNone(self.hook()["description"])

    def test_event_types_go_as_an_array(self):
        body = self.put("UPDATE apify_webhooks SET event_types = '[\"ACTOR.RUN.FAILED\"]'"
                        " WHERE actor_id = 'actorA';\n")
        self.assertEqual(body, {"eventTypes": ["ACTOR.RUN.FAILED"]})
        self.assertEqual(self.hook()["eventTypes"], ["ACTOR.RUN.FAILED"])

    def test_actor_id_goes_as_the_condition_object(self):
        body = self.put("UPDATE apify_webhooks SET actor_id = 'actorZ'"
                        " WHERE actor_id = 'actorA';\n")
        self.assertEqual(body, {"condition": {"actorId": "actorZ"}})
        self.assertEqual(self.hook()["condition"], {"actorId": "actorZ"})

    def test_booleans_go_as_booleans(self):
        body = self.put("UPDATE apify_webhooks SET do_not_retry = 1, ignore_ssl_errors = 1"
                        " WHERE actor_id = 'actorA';\n")
        self.assertEqual(body, {"ignoreSslErrors": True, "doNotRetry": True})
        self.assertIs(self.hook()["doNotRetry"], True)

    def test_the_webhook_column(self):
        body = self.put("UPDATE apify_webhooks SET webhook = json_set(webhook, '$.description',"
                        " 'via json') WHERE actor_id = 'actorB';\n", "actorB")
        self.assertEqual(body, {"description": "via json"})

    def test_the_row_reads_the_new_request_and_the_answer(self):
        self.put("UPDATE apify_webhooks SET request_url = 'https://hooks.example.com/a2'"
                 " WHERE actor_id = 'actorA';\n")
        row = [r for r in self.rows() if r["actor_id"] == "actorA"][0]
        self.assertEqual((row["status"], row["operation"], row["http_status"], row["request_url"],
                          row["id"]),
                         ("created", "update", 200, "https://hooks.example.com/a2",
                          self.ids["actorA"]))
        self.assertEqual(json.loads(row["response"])["requestUrl"], "https://hooks.example.com/a2")
        self.assertIsNotNone(row["completed_at"])

    def test_an_update_that_changes_nothing_sends_nothing(self):
        self.ok("UPDATE apify_webhooks SET description = 'first' WHERE actor_id = 'actorA';\n"
                "UPDATE apify_webhooks SET request_url = request_url;\n"
                "BEGIN;\nUPDATE apify_webhooks SET description = 'x' WHERE actor_id = 'actorA';\n"
                "UPDATE apify_webhooks SET description = 'first' WHERE actor_id = 'actorA';\n"
                "COMMIT;\n")
        self.assertNothingSent()

    def test_an_invalid_row_fails_the_statement_before_anything_is_sent(self):
        r = self.sql("UPDATE apify_webhooks SET event_types = CASE actor_id WHEN 'actorB'"
                     " THEN '[\"ACTOR.RUN.SUCCEDED\"]' ELSE '[\"ACTOR.RUN.FAILED\"]' END;\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn('apify: row 2: eventTypes[0]: "ACTOR.RUN.SUCCEDED" is not an event type;'
                      ' did you mean "ACTOR.RUN.SUCCEEDED"?', r.err)
        r = self.sql("UPDATE apify_webhooks SET request_url = NULL WHERE actor_id = 'actorB';\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("apify: row 1: requestUrl is required", r.err)
        self.assertNothingSent()
        self.assertEqual([r["event_types"] for r in self.rows()], ['["TEST"]', '["TEST"]'])

    def test_outcome_columns_key_and_rowid_cannot_be_updated(self):
        for sql, message in (
                ("UPDATE apify_webhooks SET status = 'created';",
                 "apify: row 1: status is set by the extension; it cannot be updated"),
                ("UPDATE apify_webhooks SET id = 'x';",
                 "apify: row 1: id is set by the extension; it cannot be updated"),
                ("UPDATE apify_webhooks SET idempotency_key = 'k';",
                 "apify: row 1: idempotency_key is the record's identity and cannot be updated;"
                 " insert the request with the new key instead"),
                ("UPDATE apify_webhooks SET rowid = 99;",
                 "apify: row 1: rowid is assigned by the extension; it cannot be changed")):
            with self.subTest(sql=sql):
                r = self.sql(sql + "\n")
                self.assertEqual(r.rc, 1, r)
                self.assertIn(message, r.err)
        self.assertNothingSent()


class DeletedKeys(LifeCase):
    """Re-running the original INSERT after a DELETE creates each deleted webhook again, exactly
    once, whatever the API does with a deleted webhook's idempotency key."""

    def check_recreated(self, mode):
        self.emu.configure(deleted_keys=mode)
        created = self.life()
        # The keys the first INSERT sent are those of its records (generation 1).
        first_keys = {created[actor(i)]["idempotency_key"]
                      for i in range(N_ALL - N_DELETED + 1, N_ALL + 1)}
        self.mark()
        self.ok(insert())
        posts = self.only("POST")
        self.assertEqual(len(self.sent()), N_DELETED, "only POSTs, one per deleted webhook")
        self.assertEqual(sorted(json.loads(e["body"])["condition"]["actorId"] for e in posts),
                         [actor(i) for i in range(N_ALL - N_DELETED + 1, N_ALL + 1)])
        self.assertTrue(all(e["status"] == 201 for e in posts), [e["status"] for e in posts])
        sent_keys = {json.loads(e["body"])["idempotencyKey"] for e in posts}
        self.assertEqual(len(sent_keys), N_DELETED)
        self.assertFalse(sent_keys & first_keys, "a deleted webhook's key is not sent again")
        rows = {r["actor_id"]: r for r in self.assertAccountIsTheLife(created, deleted_back=True)}
        for i in range(N_ALL - N_DELETED + 1, N_ALL + 1):
            self.assertEqual(rows[actor(i)]["idempotency_key"],
                             created[actor(i)]["idempotency_key"],
                             "the record keeps its key; the generation changes what is sent")
        gens = collections.Counter(s["generation"] for s in self.store())
        self.assertEqual(gens, {1: N_ALL - N_DELETED, 2: N_DELETED})
        # And once more: nothing.
        self.mark()
        self.ok(insert())
        self.assertNothingSent()

    def test_free(self):
        self.check_recreated("free")

    def test_keep(self):
        self.check_recreated("keep")

    def test_refuse(self):
        self.check_recreated("refuse")


class DeletedElsewhere(LifeCase):
    """A webhook deleted outside this database: DELETE through the table meets the API's 404,
    which means gone; the same INSERT then creates it again, once."""

    def test_404_is_gone_and_the_insert_creates_it_again(self):
        self.ok(actors(n=3, keep=3) + insert(typos=0))
        rows = {r["actor_id"]: r for r in self.rows()}
        gone = rows[actor(2)]["id"]
        self.assertEqual(self.emu.request("DELETE", f"/v2/webhooks/{gone}").status, 204)
        self.mark()
        self.ok(insert(typos=0))
        self.assertNothingSent("the record still says created: the INSERT sends nothing")
        self.ok(f"DELETE FROM apify_webhooks WHERE id = '{gone}';\n")
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in self.sent()],
                         [("DELETE", f"/v2/webhooks/{gone}", 404)])
        self.assertEqual(sorted(r["actor_id"] for r in self.rows()), [actor(1), actor(3)])
        [tomb] = [s for s in self.store() if s["status"] == "deleted"]
        self.assertEqual((tomb["id"], tomb["http_status"], tomb["operation"]),
                         (gone, 404, "delete"))
        self.mark()
        self.ok(insert(typos=0))
        posts = self.sent()
        self.assertEqual([(e["method"], e["status"]) for e in posts], [("POST", 201)])
        again = {r["actor_id"]: r for r in self.rows()}[actor(2)]
        self.assertEqual((again["status"], again["id"]), ("created", posts[0]["webhookId"]))
        self.assertEqual(len(self.remote()), 3)


class ThroughPython(LifeCase):
    """The same life through Python's sqlite3 module: its implicit transactions send at
    commit()."""

    def test_life_in_python_with_commits(self):
        conn = connect(self.emu, self.db)
        try:
            conn.executescript(actors())
            conn.execute(insert().rstrip(";\n"))
            self.assertEqual(self.emu.log(), [], "nothing before commit()")
            conn.commit()
            created = {r[0]: {"id": r[1], "idempotency_key": r[2]} for r in conn.execute(
                "SELECT actor_id, id, idempotency_key FROM apify_webhooks")}
            self.mark()
            conn.execute(UPDATE.rstrip(";\n"))
            conn.execute(DELETE.rstrip(";\n"))
            pending = dict(conn.execute("SELECT status, count(*) FROM apify_webhooks GROUP BY 1")
                           .fetchall())
            self.assertEqual(pending, {"pending": N_UPDATED,
                                       "created": N_ALL - N_UPDATED - N_DELETED})
            self.assertEqual(self.sent(), [], "nothing before commit()")
            conn.commit()
        finally:
            conn.close()
        self.assertEqual(len(self.only("PUT")), N_UPDATED)
        self.assertEqual(len(self.only("DELETE")), N_DELETED)
        self.assertEqual(len(self.sent()), N_UPDATED + N_DELETED)
        self.assertAccountIsTheLife(created)

    def test_rollback_in_python_sends_nothing(self):
        self.ok(actors(n=10, keep=8) + insert(typos=3))
        before = self.rows()
        self.mark()
        conn = connect(self.emu, self.db)
        try:
            conn.execute(UPDATE.rstrip(";\n"))
            conn.execute(DELETE.rstrip(";\n"))
            conn.rollback()
        finally:
            conn.close()
        self.assertNothingSent()
        self.assertEqual(self.rows(), before)


class Transactions(LifeCase):
    """One transaction, one outcome: ROLLBACK and ROLLBACK TO send nothing; operations on one
    record fold into one request."""

    def setUp(self):
        super().setUp()
        self.ok(actors(n=10, keep=8) + insert(typos=3))
        self.before = self.rows()
        self.ids = {r["actor_id"]: r["id"] for r in self.before}
        self.start = len(self.emu.log())

    def sent(self):
        return [(e["method"], e["path"], e["status"], e["body"])
                for e in self.emu.log()[self.start:]]

    def assertNothingSent(self, what=""):
        self.assertEqual(self.sent(), [], what)

    def test_rollback_of_an_update_sends_nothing(self):
        r = self.sql("BEGIN;\n" + UPDATE + ".mode list\nSELECT count(*) FROM apify_webhooks"
                     " WHERE status='pending';\nROLLBACK;\n")
        self.assertEqual((r.rc, r.err, r.lines), (0, "", ["3"]), r)
        self.assertNothingSent()
        self.assertEqual(self.rows(), self.before)

    def test_rollback_of_a_delete_sends_nothing(self):
        r = self.sql("BEGIN;\n" + DELETE + ".mode list\nSELECT count(*) FROM apify_webhooks;\n"
                     "ROLLBACK;\n")
        self.assertEqual((r.rc, r.err, r.lines), (0, "", ["8"]), r)
        self.assertNothingSent()
        self.assertEqual(self.rows(), self.before)

    def test_rollback_to_takes_back_the_update_and_the_delete_only(self):
        self.ok("BEGIN;\n"
                "UPDATE apify_webhooks SET description = 'kept' WHERE actor_id = 'actor00004';\n"
                "SAVEPOINT s;\n" + UPDATE + DELETE + "ROLLBACK TO s;\nRELEASE s;\nCOMMIT;\n")
        self.assertEqual(self.sent(), [
            ("PUT", f"/v2/webhooks/{self.ids[actor(4)]}", 200, '{"description":"kept"}')])
        rows = self.rows()
        self.assertEqual(len(rows), 10)
        self.assertEqual([r["request_url"] for r in rows][:3],
                         [url(i, fixed=False) for i in (1, 2, 3)])
        self.assertEqual(self.remote()[self.ids[actor(4)]]["description"], "kept")

    def test_deleted_and_inserted_again_in_one_transaction_sends_nothing(self):
        self.ok("BEGIN;\nDELETE FROM apify_webhooks WHERE actor_id = 'actor00004';\n"
                + insert(typos=3).replace("ORDER BY n", "WHERE n = 4") + "COMMIT;\n")
        self.assertNothingSent()

        def unqueued(rows):
            return [{k: v for k, v in r.items() if k != "queued_at"} for r in rows]
        self.assertEqual(unqueued(self.rows()), unqueued(self.before))

    def test_rollback_of_a_bulk_life_sends_nothing(self):
        r = self.sql("BEGIN;\n" + UPDATE + DELETE
                     + "INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                       " ('https://hooks.example.com/r', '[\"TEST\"]', 'actorR');\n"
                     + "SAVEPOINT s;\nDELETE FROM apify_webhooks;\nROLLBACK TO s;\n"
                     + ".mode list\nSELECT status, count(*) FROM apify_webhooks GROUP BY 1;\n"
                     + "ROLLBACK;\n")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(r.lines, ["created|5", "pending|4"])
        self.assertNothingSent()
        self.assertEqual(self.rows(), self.before)

    def test_inserted_then_updated_sends_one_create_of_the_final_request(self):
        self.ok("BEGIN;\nINSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                " ('https://hooks.exmaple.com/new', '[\"TEST\"]', 'actorNew');\n" + UPDATE
                .replace("WHERE", "WHERE actor_id = 'actorNew' AND") + "COMMIT;\n")
        log = self.sent()
        self.assertEqual([(m, p, s) for m, p, s, _ in log], [("POST", "/v2/webhooks", 201)])
        body = json.loads(log[0][3])
        self.assertEqual(body["requestUrl"], "https://hooks.example.com/new")
        row = [r for r in self.rows() if r["actor_id"] == "actorNew"][0]
        self.assertEqual((row["status"], row["operation"], row["request_url"]),
                         ("created", "create", "https://hooks.example.com/new"))
        self.assertEqual(body["idempotencyKey"], row["idempotency_key"])

    def test_inserted_then_updated_run_again_sends_nothing(self):
        """The same transaction twice (a script run again): the key derived from the INSERT is
        known, so nothing is sent and nothing fails."""
        tx = ("BEGIN;\nINSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
              " ('https://hooks.exmaple.com/new', '[\"TEST\"]', 'actorNew');\n"
              "UPDATE apify_webhooks SET request_url = 'https://hooks.example.com/new'"
              " WHERE actor_id = 'actorNew';\nCOMMIT;\n")
        self.ok(tx)
        self.start = len(self.emu.log())
        r = self.sql(tx)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertNothingSent()

    def test_inserted_then_deleted_sends_nothing(self):
        self.ok("BEGIN;\nINSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                " ('https://hooks.example.com/gone', '[\"TEST\"]', 'actorGone');\n"
                "DELETE FROM apify_webhooks WHERE actor_id = 'actorGone';\nCOMMIT;\n")
        self.assertNothingSent()
        self.assertEqual(self.rows(), self.before)

    def test_updated_then_deleted_sends_one_delete(self):
        self.ok("BEGIN;\n" + UPDATE + "DELETE FROM apify_webhooks WHERE actor_id = 'actor00001';\n"
                "COMMIT;\n")
        self.assertEqual(sorted(self.sent()), sorted([
            ("DELETE", f"/v2/webhooks/{self.ids[actor(1)]}", 204, ""),
            ("PUT", f"/v2/webhooks/{self.ids[actor(2)]}", 200,
             json.dumps({"requestUrl": url(2)}, separators=(",", ":"))),
            ("PUT", f"/v2/webhooks/{self.ids[actor(3)]}", 200,
             json.dumps({"requestUrl": url(3)}, separators=(",", ":")))]))
        self.assertNotIn(self.ids[actor(1)], self.remote())
        self.assertEqual(len(self.rows()), 9)

    def test_statement_order_at_commit(self):
        self.ok("SELECT apify_config('concurrency', 1);\nBEGIN;\n"
                "DELETE FROM apify_webhooks WHERE actor_id = 'actor00005';\n"
                "INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                " ('https://hooks.example.com/late', '[\"TEST\"]', 'actorLate');\n"
                "UPDATE apify_webhooks SET description = 'd' WHERE actor_id = 'actor00006';\n"
                "COMMIT;\n")
        self.assertEqual([(m, s) for m, _, s, _ in self.sent()],
                         [("DELETE", 204), ("POST", 201), ("PUT", 200)])


class UpdateOfFailedRows(LifeCase):
    """UPDATE of a failed row sends a create of the corrected request."""

    def test_update_of_a_failed_row_creates_the_corrected_request(self):
        self.emu.configure(script=["500"])
        self.ok("SELECT apify_config('max_attempts', 1);\n" + actors(n=1, keep=1)
                + insert(typos=1))
        [row] = self.rows()
        self.assertEqual((row["status"], row["http_status"]), ("failed", 500))
        self.emu.reset()
        self.ok(UPDATE)
        log = self.emu.log()
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in log],
                         [("POST", "/v2/webhooks", 201)])
        body = json.loads(log[0]["body"])
        self.assertEqual(body["requestUrl"], url(1))
        self.assertEqual(body["idempotencyKey"], row["idempotency_key"])
        [after] = self.rows()
        self.assertEqual((after["status"], after["operation"], after["id"]),
                         ("created", "create", log[0]["webhookId"]))
        self.assertEqual(self.remote()[after["id"]]["requestUrl"], url(1))

    def test_update_of_a_row_failed_without_an_answer_ends_with_the_corrected_webhook(self):
        """The first create was applied but its answer was cut (the row is failed, the webhook
        exists). The corrected create goes out under the same key: whatever the extension does,
        the account must end holding the corrected request, as the row says."""
        self.emu.configure(script=["cut"])
        self.ok("SELECT apify_config('max_attempts', 1);\n" + actors(n=1, keep=1)
                + insert(typos=1))
        [row] = self.rows()
        self.assertEqual(row["status"], "failed")
        self.assertEqual(len(self.remote()), 1, "the cut create was applied")
        self.ok(UPDATE)
        # The API answers the key with the webhook it created first: the row says what the
        # webhook is (the old URL), never that the correction was made, and why.
        [after] = self.rows()
        remote = self.remote()
        self.assertEqual(len(remote), 1)
        self.assertEqual(after["status"], "created")
        self.assertEqual(remote[after["id"]]["requestUrl"], after["request_url"],
                         "the row and the account disagree")
        self.assertIn("differ from this request: UPDATE the row again", after["error_message"])
        # The UPDATE again is a PUT: the account ends holding the corrected request.
        self.ok(UPDATE)
        [final] = self.rows()
        self.assertEqual((final["status"], final["request_url"]), ("created", url(1)))
        self.assertEqual(self.remote()[final["id"]]["requestUrl"], url(1))


class Faults(LifeCase):
    """5xx answers, connections cut after the PUT or DELETE was applied, and bursts of 429
    during a bulk UPDATE and DELETE: each ends exact."""
    knobs = {"max_webhooks": 100000, "rate_limit_header": 100000, "seed": 11,
             "draw_by_body": True}
    N = 100
    ATTEMPTS = ("SELECT apify_config('max_attempts', 12), apify_config('concurrency', 32),"
                " apify_config('max_retry_time_ms', 60000);\n")

    def check_exact(self, faults):
        """Run the life under faults, on an emulator that keeps the webhooks (no reset after
        the creates), then compare both sides."""
        self.ok(actors(n=self.N, keep=self.N // 2) + insert(typos=self.N))
        created = {r["actor_id"]: r for r in self.rows()}
        self.emu.configure(**faults)
        start = len(self.emu.log())
        self.ok(self.ATTEMPTS + UPDATE)
        self.ok(self.ATTEMPTS + DELETE)
        self.emu.configure(fail_5xx=0, cut_after_create=0, script=[], rate_limit=None)
        log = self.emu.log()[start:]
        remote = self.remote()
        rows = {r["actor_id"]: r for r in self.rows()}
        keep = self.N // 2
        self.assertEqual(len(remote), keep, "webhooks on the emulator")
        self.assertEqual(len(rows), keep, "rows of apify_webhooks")
        for i in range(1, self.N + 1):
            a = actor(i)
            if i > keep:
                self.assertNotIn(a, rows)
                self.assertNotIn(created[a]["id"], remote)
                continue
            row = rows[a]
            self.assertEqual((row["status"], row["id"]), ("created", created[a]["id"]), a)
            self.assertEqual(row["request_url"], url(i), a)
            self.assertEqual(remote[row["id"]]["requestUrl"], url(i), a)
        tombs = [s for s in self.store() if s["status"] == "deleted"]
        self.assertEqual(len(tombs), self.N - keep)
        self.assertEqual({s["id"] for s in tombs}, {created[actor(i)]["id"]
                                                    for i in range(keep + 1, self.N + 1)})
        self.assertFalse([e for e in log if e["method"] == "POST"], "no create")
        self.assertNotIn("emulator bug", self.emu.stderr_text())
        return log

    def test_5xx_and_cuts_after_apply(self):
        log = self.check_exact({"fail_5xx": 0.15, "cut_after_create": 0.15})
        statuses = collections.Counter((e["method"], e["status"]) for e in log)
        self.assertGreater(statuses[("PUT", 500)], 0, statuses)
        self.assertGreater(statuses[("PUT", "cut")], 0, statuses)
        self.assertGreater(statuses[("DELETE", 500)], 0, statuses)
        self.assertGreater(statuses[("DELETE", "cut")], 0, statuses)
        # A DELETE cut after it was applied is answered 404 on its retry: gone all the same.
        self.assertGreater(statuses[("DELETE", 404)], 0, statuses)

    def test_bursts_of_429(self):
        burst = ["ok"] * 10 + ["429"] * 15 + ["ok"] * 10 + ["429"] * 15
        log = self.check_exact({"script": burst + ["ok"] * 20 + burst})
        statuses = collections.Counter((e["method"], e["status"]) for e in log)
        self.assertGreater(statuses[("PUT", 429)] + statuses[("DELETE", 429)], 20, statuses)

    def test_rate_limit_with_every_kind_of_fault(self):
        log = self.check_exact({"fail_5xx": 0.1, "cut_after_create": 0.1, "rate_limit": 40,
                                "script": ["429"] * 10})
        self.assertTrue(any(e["status"] == 429 for e in log))

    def test_faults_that_outlast_the_retries_then_a_rerun_completes_exactly(self):
        """Every PUT and DELETE answered 500 until the attempts run out: the webhooks and the
        records stay as they were, each record keeps the reason; the same statements run again
        once the API is well finish the job, nothing twice."""
        n, keep = 20, 10
        self.ok(actors(n=n, keep=keep) + insert(typos=n))
        created = {r["actor_id"]: r for r in self.rows()}
        self.emu.configure(fail_5xx=1.0)
        self.ok("SELECT apify_config('max_attempts', 2);\n" + UPDATE + DELETE)
        self.emu.configure(fail_5xx=0)
        remote = self.remote()
        self.assertEqual(len(remote), n)
        self.assertTrue(all("exmaple" in w["requestUrl"] for w in remote.values()))
        rows = self.rows()
        self.assertEqual(len(rows), n)
        for r in rows:
            self.assertEqual((r["status"], r["id"], r["http_status"], r["error_type"]),
                             ("created", created[r["actor_id"]]["id"], 500,
                              "internal-server-error"), r)
            self.assertIn("exmaple", r["request_url"])
        self.mark()
        self.ok(UPDATE + DELETE)
        self.assertEqual(collections.Counter((e["method"], e["status"]) for e in self.sent()),
                         {("PUT", 200): n, ("DELETE", 204): n - keep})
        remote = self.remote()
        self.assertEqual(sorted(w["requestUrl"] for w in remote.values()),
                         sorted(url(i) for i in range(1, keep + 1)))
        self.assertEqual(sorted(r["id"] for r in self.rows()), sorted(remote))


class Adoption(LifeCase):
    """Webhooks made elsewhere (the official client, the API directly) adopted with
    INSERT INTO apify_webhooks(id) SELECT ..., then updated and deleted through the table."""

    def make_direct(self, n, prefix="direct"):
        ids = []
        for i in range(n):
            r = self.emu.request("POST", "/v2/webhooks", {
                "requestUrl": f"https://elsewhere.example.com/{prefix}{i}",
                "eventTypes": ["ACTOR.RUN.FAILED"], "condition": {"actorId": f"{prefix}Actor{i}"},
                "description": f"made by hand {i}"})
            self.assertEqual(r.status, 201, r)
            ids.append(r.json()["data"]["id"])
        return ids

    def make_with_client(self, n):
        node = shutil.which("node")
        if node is None or not (TESTS / "js" / "node_modules" / "apify-client").is_dir():
            self.skipTest("node or tests/js/node_modules (npm ci --prefix tests/js) is missing")
        ids = []
        for i in range(n):
            proc = subprocess.run(
                [node, str(TESTS / "js" / "create_webhook.mjs"), "--base-url", self.emu.base_url,
                 "--token", "test-token", "--request-url", f"https://client.example.com/{i}",
                 "--actor-id", f"clientActor{i}", "--idempotency-key", f"client-{i}",
                 "--description", f"made by apify-client {i}"],
                capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                env=dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1"))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            ids.append(json.loads(proc.stdout)["id"])
        return ids

    def adopt_then_manage(self, ids):
        values = ", ".join(f"('{i}')" for i in ids)
        start = len(self.emu.log())
        self.ok(f"INSERT INTO apify_webhooks(id) SELECT column1 FROM (VALUES {values});\n")
        log = self.emu.log()[start:]
        self.assertEqual(sorted((e["method"], e["path"], e["status"]) for e in log),
                         sorted(("GET", f"/v2/webhooks/{i}", 200) for i in ids))
        remote = self.remote()
        rows = {r["id"]: r for r in self.rows()}
        for i in ids:
            row, hook = rows[i], remote[i]
            self.assertEqual((row["status"], row["operation"], row["verified"], row["http_status"]),
                             ("created", "adopt", 1, 200), row)
            self.assertIsNone(row["idempotency_key"])
            self.assertEqual(row["request_url"], hook["requestUrl"])
            self.assertEqual(row["actor_id"], hook["condition"]["actorId"])
            self.assertEqual(json.loads(row["event_types"]), hook["eventTypes"])
            self.assertEqual(row["description"], hook["description"])
            self.assertNotIn("idempotencyKey", json.loads(row["webhook"]))
        # An id already recorded changes nothing and sends nothing.
        before = self.rows()
        start = len(self.emu.log())
        self.ok(f"INSERT INTO apify_webhooks(id) SELECT column1 FROM (VALUES {values});\n")
        self.assertEqual(self.emu.log()[start:], [])
        self.assertEqual(self.rows(), before)
        # UPDATE and DELETE work on them.
        first, rest = ids[0], ids[1:]
        start = len(self.emu.log())
        self.ok(f"UPDATE apify_webhooks SET description = 'adopted' WHERE id = '{first}';\n"
                + "".join(f"DELETE FROM apify_webhooks WHERE id = '{i}';\n" for i in rest))
        log = self.emu.log()[start:]
        self.assertEqual(sorted((e["method"], e["path"], e["status"], e["body"]) for e in log),
                         sorted([("PUT", f"/v2/webhooks/{first}", 200, '{"description":"adopted"}')]
                                + [("DELETE", f"/v2/webhooks/{i}", 204, "") for i in rest]))
        remote = self.remote()
        for i in rest:
            self.assertNotIn(i, remote)
        self.assertEqual(remote[first]["description"], "adopted")
        rows = {r["id"]: r for r in self.rows()}
        self.assertEqual(set(rows) & set(ids), {first})
        self.assertEqual((rows[first]["description"], rows[first]["operation"]),
                         ("adopted", "update"))

    @skip_under_sanitizer("node cannot run with the ASan runtime preloaded")
    def test_webhooks_made_by_the_official_client(self):
        self.adopt_then_manage(self.make_with_client(3))

    def test_webhooks_made_through_the_api(self):
        self.adopt_then_manage(self.make_direct(3))

    def test_adopting_the_extensions_own_webhook_changes_nothing(self):
        self.ok(actors(n=2, keep=2) + insert(typos=0))
        before = self.rows()
        self.emu.reset()
        self.ok("INSERT INTO apify_webhooks(id) SELECT id FROM apify_webhooks_store;\n")
        self.assertNothingSent()
        self.assertEqual(self.rows(), before)

    def test_an_adoption_pending_in_a_transaction_cannot_be_updated_yet(self):
        [wid] = self.make_direct(1)
        self.mark()
        r = self.sql(f"BEGIN;\nINSERT INTO apify_webhooks(id) VALUES ('{wid}');\n"
                     f"UPDATE apify_webhooks SET description = 'x' WHERE id = '{wid}';\n"
                     "COMMIT;\n")
        self.assertIn(f"apify: row 2: the webhook {wid} is adopted by this transaction; update"
                      " it after its commit", r.err)
        self.assertEqual([(e["method"], e["path"]) for e in self.sent()],
                         [("GET", f"/v2/webhooks/{wid}")], "the adoption alone is committed")

    def test_an_unknown_id_is_a_failed_row_with_the_apis_404(self):
        self.ok("INSERT INTO apify_webhooks(id) VALUES ('NoSuchWebhook1234');\n")
        self.assertEqual(api_requests(self.emu),
                         [("GET", "/v2/webhooks/NoSuchWebhook1234", 404, "")])
        [row] = self.rows()
        self.assertEqual((row["status"], row["operation"], row["http_status"], row["error_type"],
                          row["id"]),
                         ("failed", "adopt", 404, "record-not-found", "NoSuchWebhook1234"))
        # A failed adoption is forgotten by DELETE without a request.
        self.emu.reset()
        self.ok("DELETE FROM apify_webhooks WHERE id = 'NoSuchWebhook1234';\n")
        self.assertNothingSent()
        self.assertEqual(self.rows(), [])

    def test_adopt_a_webhook_deleted_through_the_table_fails_with_404(self):
        [wid] = self.make_direct(1)
        self.ok(f"INSERT INTO apify_webhooks(id) VALUES ('{wid}');\n"
                f"DELETE FROM apify_webhooks WHERE id = '{wid}';\n")
        start = len(self.emu.log())
        self.ok(f"INSERT INTO apify_webhooks(id) VALUES ('{wid}');\n")
        self.assertEqual([(e["method"], e["status"]) for e in self.emu.log()[start:]],
                         [("GET", 404)])
        [row] = self.rows()
        self.assertEqual((row["status"], row["http_status"]), ("failed", 404))

    def test_records_of_another_token_read_unverified_and_are_not_acted_on(self):
        """Records written under one token are unverified under another (the emulator makes
        each token its own user, so adopting them again under it would be a 404 here): UPDATE
        and DELETE are refused without a request, and under the first token they are fine."""
        self.ok(actors(n=2, keep=2) + insert(typos=0))
        rows = local_rows(self.db, self.emu, token="another-token")
        self.assertEqual([(r["status"], r["verified"]) for r in rows],
                         [("unverified", 0), ("unverified", 0)])
        self.mark()
        for sql in ("UPDATE apify_webhooks SET description = 'x';\n",
                    "DELETE FROM apify_webhooks;\n"):
            r = self.sql(sql, token="another-token")
            self.assertEqual(r.rc, 1, r)
            self.assertIn(NOT_VERIFIED.format(id=rows[0]["id"], seq=1), r.err)
        self.assertNothingSent()
        self.assertEqual([(r["status"], r["verified"]) for r in self.rows()],
                         [("created", 1), ("created", 1)])


class PlantedRecords(LifeCase):
    """A record written into apify_webhooks_store by plain SQL, without the extension, cannot be
    updated or deleted through the table: an error, and no request."""

    def plant(self, wid, seq=None):
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO apify_webhooks_store(idempotency_key, origin, request, status,"
                    " operation, generation, id, http_status, attempts) VALUES (NULL, NULL, ?,"
                    " 'created', 'adopt', 1, ?, 200, 1)",
                    (json.dumps({"requestUrl": "https://planted.example.com/",
                                 "eventTypes": ["TEST"], "condition": {"actorId": "planted"}},
                                separators=(",", ":")), wid))
                return conn.execute("SELECT seq FROM apify_webhooks_store WHERE id=?",
                                    (wid,)).fetchone()[0]
        finally:
            conn.close()

    def setUp(self):
        super().setUp()
        self.ok(actors(n=1, keep=1) + insert(typos=0))     # the store exists
        r = self.emu.request("POST", "/v2/webhooks", {
            "requestUrl": "https://victim.example.com/", "eventTypes": ["TEST"],
            "condition": {"actorId": "victim"}})
        self.victim = r.json()["data"]["id"]
        self.seq = self.plant(self.victim)
        self.start = len(self.emu.log())

    def sent(self):
        return self.emu.log()[self.start:]

    def test_a_planted_record_reads_unverified(self):
        rows = {r["id"]: r for r in self.rows()}
        self.assertEqual((rows[self.victim]["status"], rows[self.victim]["verified"]),
                         ("unverified", 0))
        self.assertEqual(self.sent(), [])

    def test_update_is_refused_and_sends_nothing(self):
        r = self.sql(f"UPDATE apify_webhooks SET request_url = 'https://evil.example.com/'"
                     f" WHERE id = '{self.victim}';\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn(NOT_VERIFIED.format(id=self.victim, seq=self.seq), r.err)
        self.assertEqual(self.sent(), [])
        self.assertIn(self.victim, self.remote())

    def test_delete_is_refused_and_sends_nothing(self):
        r = self.sql(f"DELETE FROM apify_webhooks WHERE id = '{self.victim}';\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn(NOT_VERIFIED.format(id=self.victim, seq=self.seq), r.err)
        self.assertEqual(self.sent(), [])
        self.assertIn(self.victim, self.remote())

    def test_a_bulk_delete_that_touches_a_planted_record_sends_nothing_at_all(self):
        r = self.sql("DELETE FROM apify_webhooks;\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("is not verified", r.err)
        self.assertEqual(self.sent(), [])
        self.assertEqual(len(self.rows()), 2)

    def test_a_real_records_id_changed_by_plain_sql_reads_unverified(self):
        """The MAC covers the id: pointing a genuine record at another webhook breaks it."""
        conn = sqlite3.connect(self.db)
        with conn:
            conn.execute("DELETE FROM apify_webhooks_store WHERE seq=?", (self.seq,))
            conn.execute("UPDATE apify_webhooks_store SET id=? WHERE seq=1", (self.victim,))
        conn.close()
        [row] = self.rows()
        self.assertEqual((row["id"], row["status"]), (self.victim, "unverified"))
        r = self.sql(f"DELETE FROM apify_webhooks WHERE id = '{self.victim}';\n")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("is not verified", r.err)
        self.assertEqual(self.sent(), [])
        self.assertIn(self.victim, self.remote())

    def test_a_planted_record_adopted_is_then_managed(self):
        """Adopting the id vouches for the record with what the API says the webhook is."""
        self.ok(f"INSERT INTO apify_webhooks(id) VALUES ('{self.victim}');\n")
        rows = {r["id"]: r for r in self.rows()}
        self.assertEqual((rows[self.victim]["status"], rows[self.victim]["verified"],
                          rows[self.victim]["request_url"]),
                         ("created", 1, "https://victim.example.com/"))
        self.assertEqual([(e["method"], e["status"]) for e in self.sent()], [("GET", 200)])


def has_remote_table():
    """Whether the module under test has apify_remote_webhooks (branch h-rem)."""
    r = shell(".mode list\nSELECT count(*) FROM pragma_module_list"
              " WHERE name = 'apify_remote_webhooks';\n", token=None)
    return r.lines == ["1"]


class Recipes(LifeCase):
    """sql/lifecycle.sql, adopt.sql, forget_deleted.sql and sync.sql as a user runs them
    (`sqlite3 hooks.db < sql/FILE` from the repository root), checked against the emulator."""
    db_name = "hooks.db"

    def run_file(self, name):
        with (ROOT / "sql" / name).open("rb") as script:
            proc = subprocess.run(["sqlite3", self.db], stdin=script, capture_output=True,
                                  env=self.emu.env(), cwd=str(ROOT), timeout=120)
        out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
        self.assertEqual((proc.returncode, err), (0, ""), out)
        return out

    def needs_remote(self):
        if not has_remote_table():
            self.skipTest("the module has no apify_remote_webhooks yet (branch h-rem)")

    def test_lifecycle_sql_fixes_the_typo_and_deletes_the_retired(self):
        self.run_file("lifecycle.sql")
        log = self.emu.log()
        self.assertEqual(collections.Counter((e["method"], e["status"]) for e in log),
                         {("POST", 201): 4, ("PUT", 200): 2, ("DELETE", 204): 2})
        for e in log:
            if e["method"] == "PUT":
                self.assertEqual(list(json.loads(e["body"])), ["requestUrl"])
        remote = sorted((w["condition"]["actorId"], w["requestUrl"]) for w in self.emu.webhooks())
        self.assertEqual(remote, [
            ("BAuKn53AoncVoWb3q", "https://hooks.example.com/tripadvisor-hotels"),
            ("XwOADhUViWuyvwYmu", "https://hooks.example.com/website-content-crawler")])
        self.mark()
        self.run_file("lifecycle.sql")
        self.assertNothingSent("run again")

    def test_adopt_sql_adopts_what_was_made_elsewhere(self):
        self.needs_remote()
        other = self.emu.request("POST", "/v2/webhooks", {
            "requestUrl": "https://hooks.example.com/console", "eventTypes": ["TEST"],
            "condition": {"actorId": "consoleActor"}}).json()["data"]["id"]
        foreign = self.emu.request("POST", "/v2/webhooks", {
            "requestUrl": "https://elsewhere.example.org/x", "eventTypes": ["TEST"],
            "condition": {"actorId": "consoleActor"}}).json()["data"]["id"]
        out = self.run_file("adopt.sql")
        self.assertIn(other, out)
        rows = {r["id"]: r for r in self.rows()}
        self.assertEqual(len(rows), 2, "the sample's webhook and the console's")
        self.assertNotIn(foreign, rows, "the WHERE on request_url leaves it alone")
        self.assertEqual(rows[other]["operation"], "adopt")
        self.assertTrue(all(r["status"] == "created" and r["verified"] == 1
                            for r in rows.values()))
        self.mark()
        self.run_file("adopt.sql")
        self.assertFalse([e for e in self.sent() if e["path"].startswith("/v2/webhooks/")],
                         "run again: nothing adopted")

    def test_forget_deleted_sql_forgets_what_was_deleted_elsewhere(self):
        self.needs_remote()
        self.run_file("forget_deleted.sql")
        rows = self.rows()
        self.assertEqual(len(rows), 2)
        gone = rows[0]["id"]
        self.assertEqual(self.emu.request("DELETE", f"/v2/webhooks/{gone}").status, 204)
        self.mark()
        out = self.run_file("forget_deleted.sql")
        self.assertIn(gone, out)
        sent = [(e["method"], e["path"], e["status"]) for e in self.sent()
                if e["path"] != "/v2/webhooks"]
        # The sample INSERT runs first and sees a created record: it sends nothing.
        self.assertEqual(sent, [("DELETE", f"/v2/webhooks/{gone}", 404)])
        self.assertEqual([r["id"] for r in self.rows()], [rows[1]["id"]])
        [tomb] = [s for s in self.store() if s["status"] == "deleted"]
        self.assertEqual((tomb["id"], tomb["http_status"]), (gone, 404))

    def test_sync_sql_adopts_creates_deletes_and_leaves_the_rest_alone(self):
        self.needs_remote()
        stock = self.emu.request("POST", "/v2/webhooks", {
            "requestUrl": "https://hooks.example.com/sync/stock",
            "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
            "condition": {"actorId": "m2a1JjCzS7bp3ZcUe"}}).json()["data"]["id"]
        other = self.emu.request("POST", "/v2/webhooks", {
            "requestUrl": "https://hooks.example.com/other", "eventTypes": ["TEST"],
            "condition": {"actorId": "m2a1JjCzS7bp3ZcUe"}}).json()["data"]["id"]
        self.mark()
        self.run_file("sync.sql")
        posts = [json.loads(e["body"])["requestUrl"] for e in self.only("POST")]
        self.assertEqual(sorted(posts), ["https://hooks.example.com/sync/legacy",
                                         "https://hooks.example.com/sync/orders",
                                         "https://hooks.example.com/sync/refunds"])
        self.assertEqual([e["path"] for e in self.only("GET") if e["path"] != "/v2/webhooks"],
                         [f"/v2/webhooks/{stock}"])
        self.assertEqual(len(self.only("DELETE")), 1)
        self.assertFalse(self.only("PUT"))
        remote = sorted(w["requestUrl"] for w in self.emu.webhooks())
        self.assertEqual(remote, ["https://hooks.example.com/other",
                                  "https://hooks.example.com/sync/orders",
                                  "https://hooks.example.com/sync/refunds",
                                  "https://hooks.example.com/sync/stock"])
        self.assertIn(other, self.remote(), "not wanted, not managed: left alone")
        self.mark()
        self.run_file("sync.sql")
        self.assertEqual({e["path"] for e in self.sent()}, {"/v2/webhooks"},
                         "run again: only the list is read")
        self.assertEqual({e["method"] for e in self.sent()}, {"GET"})


if __name__ == "__main__":
    unittest.main()
