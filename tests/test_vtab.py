"""The apify_webhooks virtual table end to end: bulk INSERT ... SELECT sent at commit, every
outcome recorded, each distinct request created once. Every test reads the emulator's log to
prove what was and was not sent."""

import collections
import json
import os
import unittest

from tests.harness import EmulatorCase, connect, shell

ACTORS = ("CREATE TABLE actors(actor_id TEXT, name TEXT);\n"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})"
          " INSERT INTO actors SELECT printf('actor%05d', i), 'name' || i FROM c;\n")
BULK = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
        " SELECT 'https://example.com/hook/' || name,"
        " '[\"ACTOR.RUN.SUCCEEDED\",\"ACTOR.RUN.FAILED\"]', actor_id FROM actors{where};\n")
FAST = ("SELECT apify_config('max_attempts', 3), apify_config('timeout_ms', 2000),"
        " apify_config('connect_timeout_ms', 1000);\n")


def bulk(where=""):
    return BULK.format(where=where)


class TableCase(EmulatorCase):
    """One emulator per class (fast, unlimited), one fresh database file per test."""
    knobs = {"max_webhooks": 100000}

    def sql(self, text, **kwargs):
        return shell(text, self.emu, db=self.db, **kwargs)

    def rows(self, query):
        r = self.sql(".mode list\n" + query)
        self.assertEqual(r.err, "", r)
        return r.lines


class BulkInsert(TableCase):

    def test_200_rows_create_200_webhooks_with_ids_and_locations(self):
        r = self.sql(ACTORS.format(n=200) + bulk())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.emu.posts()), 200)
        hooks = {w["id"]: w for w in self.emu.webhooks()}
        self.assertEqual(len(hooks), 200)
        rows = self.rows("SELECT id, status, http_status, location, actor_id, request_url,"
                         " event_types, attempts FROM apify_webhooks;")
        self.assertEqual(len(rows), 200)
        for line in rows:
            wid, status, http, location, actor, url, events, attempts = line.split("|")
            self.assertEqual(status, "created")
            self.assertEqual(http, "201")
            self.assertEqual(location, f"{self.emu.base_url}/v2/webhooks/{wid}")
            self.assertEqual(hooks[wid]["condition"], {"actorId": actor})
            self.assertEqual(hooks[wid]["requestUrl"], url)
            self.assertEqual(json.loads(events), ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"])
            self.assertEqual(attempts, "1")

    def test_same_insert_again_sends_nothing_and_changes_nothing(self):
        self.sql(ACTORS.format(n=50) + bulk())
        before = self.rows("SELECT * FROM apify_webhooks;")
        self.emu.reset()
        r = self.sql(bulk())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.emu.posts(), [])
        self.assertEqual(self.rows("SELECT * FROM apify_webhooks;"), before)

    def test_identical_rows_in_one_statement_are_one_webhook(self):
        r = self.sql(ACTORS.format(n=3) + bulk().replace("FROM actors", "FROM actors, (SELECT 1 UNION ALL SELECT 2)"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.emu.posts()), 3)
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks;"), ["3"])

    def test_rows_come_back_in_the_order_they_were_queued(self):
        self.sql(ACTORS.format(n=30) + bulk(" ORDER BY name DESC"))
        actors = self.rows("SELECT actor_id FROM apify_webhooks;")
        expected = sorted((f"actor{i:05d}" for i in range(1, 31)),
                          key=lambda a: "name" + str(int(a[5:])), reverse=True)
        self.assertEqual(actors, expected)

    def test_inputs_come_back_out(self):
        r = self.sql("INSERT INTO apify_webhooks(request_url, event_types, actor_task_id,"
                     " is_ad_hoc, idempotency_key, payload_template, headers_template,"
                     " description, should_interpolate_strings, ignore_ssl_errors, do_not_retry)"
                     " VALUES ('https://example.com/t', '[\"TEST\"]', 'task1', 0, 'k1',"
                     " '{\"a\": {{resource}}}', '{\"X-A\": \"b\"}', 'd', 1, 0, 1);\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.rows(
            "SELECT request_url, event_types, actor_id, actor_task_id, is_ad_hoc,"
            " idempotency_key, payload_template, headers_template, description,"
            " should_interpolate_strings, ignore_ssl_errors, do_not_retry FROM apify_webhooks;"),
            ['https://example.com/t|["TEST"]||task1|0|k1|{"a": {{resource}}}|{"X-A": "b"}|d|1|0|1'])
        sent = json.loads(self.emu.posts()[0]["body"])
        self.assertEqual(sent["idempotencyKey"], "k1")
        self.assertIs(sent["doNotRetry"], True)
        self.assertIs(sent["isAdHoc"], False)

    def test_webhook_column_with_column_overrides(self):
        hook = {"requestUrl": "https://example.com/w", "eventTypes": ["TEST"],
                "condition": {"actorId": "a1"}, "description": "from json"}
        r = self.sql("INSERT INTO apify_webhooks(webhook, description, actor_task_id) VALUES ("
                     + "'" + json.dumps(hook) + "', 'from column', 't1');\n")
        self.assertEqual(r.rc, 0, r)
        sent = json.loads(self.emu.posts()[0]["body"])
        self.assertEqual(sent["description"], "from column")
        self.assertEqual(sent["condition"], {"actorId": "a1", "actorTaskId": "t1"})
        webhook = self.rows("SELECT webhook FROM apify_webhooks;")[0]
        self.assertEqual(webhook, self.emu.posts()[0]["body"])

    def test_survives_close_and_reopen(self):
        self.sql(ACTORS.format(n=20) + bulk())
        self.emu.reset()
        r = self.sql("SELECT count(*), count(DISTINCT id) FROM apify_webhooks"
                     " WHERE status='created';\n" + bulk())
        self.assertEqual(r.lines, ["20|20"], r)
        self.assertEqual(self.emu.posts(), [])

    def test_a_database_lost_and_rebuilt_creates_no_duplicate(self):
        self.sql(ACTORS.format(n=10) + bulk())
        first = sorted(w["id"] for w in self.emu.webhooks())
        os.remove(self.db)
        r = self.sql(ACTORS.format(n=10) + bulk())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(w["id"] for w in self.emu.webhooks()), first)
        self.assertEqual(sorted(self.rows("SELECT id FROM apify_webhooks;")), first)


class Transactions(TableCase):

    def test_rollback_sends_nothing(self):
        r = self.sql(ACTORS.format(n=10) + "BEGIN;\n" + bulk() + "ROLLBACK;\n"
                     "SELECT count(*) FROM apify_webhooks;\n")
        self.assertEqual(r.lines, ["0"], r)
        self.assertEqual(self.emu.posts(), [])

    def test_rollback_to_savepoint_sends_only_what_was_kept(self):
        r = self.sql(ACTORS.format(n=10) + "BEGIN;\n" + bulk(" WHERE rowid<=3")
                     + "SAVEPOINT s;\n" + bulk(" WHERE rowid>3") + "ROLLBACK TO s;\n"
                     + "COMMIT;\nSELECT actor_id FROM apify_webhooks;\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines, ["actor00001", "actor00002", "actor00003"])
        self.assertEqual(len(self.emu.posts()), 3)

    def test_requests_go_out_at_commit(self):
        r = self.sql(ACTORS.format(n=5) + "BEGIN;\n" + bulk()
                     + "SELECT status, count(*) FROM apify_webhooks GROUP BY 1;\n"
                     ".shell sleep 0\nCOMMIT;\n"
                     "SELECT status, count(*) FROM apify_webhooks GROUP BY 1;\n")
        # inside the transaction the rows are there, pending; the requests go out at COMMIT
        self.assertEqual(r.lines, ["pending|5", "created|5"], r)
        self.assertEqual(len(self.emu.posts()), 5)

    def test_invalid_57th_row_sends_nothing_and_names_row_57(self):
        r = self.sql(ACTORS.format(n=100) + bulk().replace(
            "'https://example.com/hook/' || name",
            "CASE WHEN rowid=57 THEN 'ftp://example.com/x' ELSE 'https://example.com/h/' || name END"))
        self.assertIn('apify: row 57: requestUrl "ftp://example.com/x" must be an absolute http'
                      ' or https URL', r.err)
        self.assertEqual(self.emu.posts(), [])
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks;"), ["0"])

    def test_failed_statement_inside_a_transaction_sends_none_of_its_rows(self):
        r = self.sql(ACTORS.format(n=10) + "BEGIN;\n" + bulk(" WHERE rowid<=2")
                     + bulk(" WHERE rowid>2").replace("actor_id FROM", "CASE WHEN rowid=5 THEN"
                                                      " NULL ELSE actor_id END FROM")
                     + bulk(" WHERE rowid=10").replace("/hook/", "/other/")
                     + "COMMIT;\nSELECT request_url FROM apify_webhooks;\n")
        self.assertIn("condition", r.err)
        self.assertEqual(r.lines, ["https://example.com/hook/name1",
                                   "https://example.com/hook/name2",
                                   "https://example.com/other/name10"], r)
        self.assertEqual(len(self.emu.posts()), 3)

    def test_python_sends_at_commit(self):
        conn = connect(self.emu, self.db)
        conn.execute("CREATE TABLE actors(actor_id TEXT, name TEXT)")
        conn.executemany("INSERT INTO actors VALUES (?, ?)", [(f"a{i}", f"n{i}") for i in range(7)])
        conn.commit()
        conn.execute(bulk())
        self.assertEqual(self.emu.posts(), [], "nothing is sent before commit()")
        conn.commit()
        self.assertEqual(len(self.emu.posts()), 7)
        self.assertEqual(conn.execute("SELECT count(*) FROM apify_webhooks"
                                      " WHERE status='created'").fetchone()[0], 7)
        conn.execute(bulk().replace("/hook/", "/rolled-back/"))
        self.assertEqual(conn.execute("SELECT status, count(*) FROM apify_webhooks GROUP BY 1"
                                      " ORDER BY 1").fetchall(), [("created", 7), ("pending", 7)])
        conn.rollback()
        self.assertEqual(len(self.emu.posts()), 7)
        self.assertEqual(conn.execute("SELECT count(*) FROM apify_webhooks WHERE request_url"
                                      " LIKE '%/rolled-back/%'").fetchone()[0], 0)
        conn.close()


class Failures(TableCase):

    def test_rejected_rows_are_failed_and_a_rerun_sends_only_those(self):
        self.emu.configure(max_webhooks=15)
        r = self.sql(ACTORS.format(n=20) + bulk())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.rows("SELECT status, http_status, error_type, count(*)"
                                   " FROM apify_webhooks GROUP BY 1, 2, 3;"),
                         ["created|201||15", "failed|403|too-many-webhooks|5"])
        message = self.rows("SELECT DISTINCT error_message FROM apify_webhooks"
                            " WHERE status='failed';")
        self.assertEqual(len(message), 1)
        self.assertTrue(message[0], "the API's message is kept")
        failed_keys = self.rows("SELECT idempotency_key FROM apify_webhooks"
                                " WHERE status='failed';")
        # the first run POSTed each key once: a 403 is final, not retried
        first = collections.Counter(json.loads(p["body"])["idempotencyKey"]
                                    for p in self.emu.posts())
        self.assertEqual(len(first), 20)
        self.assertEqual(set(first.values()), {1}, first)
        self.assertEqual(sorted(p["status"] for p in self.emu.posts()), [201] * 15 + [403] * 5)
        self.emu.configure(max_webhooks=100)
        before = len(self.emu.posts())
        r = self.sql(bulk())
        posts = self.emu.posts()[before:]
        # a list, not a set: each failed key is POSTed exactly once, no other key at all
        self.assertEqual(sorted(json.loads(p["body"])["idempotencyKey"] for p in posts),
                         sorted(failed_keys))
        self.assertEqual(self.rows("SELECT status, count(*) FROM apify_webhooks GROUP BY 1;"),
                         ["created|20"])
        self.assertEqual(len(self.emu.webhooks()), 20)

    def test_insert_select_from_itself_terminates_and_sends_each_key_once(self):
        self.emu.configure(max_webhooks=4)
        self.sql(ACTORS.format(n=6) + bulk())
        self.emu.configure(max_webhooks=100)
        before = len(self.emu.posts())
        r = self.sql("INSERT INTO apify_webhooks(webhook) SELECT webhook FROM apify_webhooks;\n",
                     timeout=60)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()[before:]
        self.assertEqual(len(posts), 2)
        self.assertEqual(self.rows("SELECT status, count(*) FROM apify_webhooks GROUP BY 1;"),
                         ["created|6"])

    def test_no_token_fails_the_commit_and_sends_nothing(self):
        r = self.sql(ACTORS.format(n=3) + bulk() + "SELECT count(*) FROM apify_webhooks;\n",
                     token=None)
        self.assertIn("apify: no API token", r.err)
        self.assertEqual(r.lines, ["0"])
        self.assertEqual(self.emu.posts(), [])

    def test_401_fails_the_commit(self):
        r = self.sql(ACTORS.format(n=5) + bulk() + "SELECT count(*) FROM apify_webhooks;\n",
                     token="not-a-token")
        self.assertRegex(r.err, "apify: 401 user-or-token-not-found: .+; nothing was created")
        self.assertEqual(r.lines, ["0"])
        self.assertEqual(self.emu.webhooks(), [])

    def test_unreachable_api_fails_the_commit(self):
        from tests.harness import closed_port
        port = closed_port()
        r = self.sql(FAST + f"SELECT apify_config('base_url', 'http://127.0.0.1:{port}');\n"
                     + ACTORS.format(n=3) + bulk() + "SELECT count(*) FROM apify_webhooks;\n")
        self.assertRegex(r.err, rf"apify: POST http://127\.0\.0\.1:{port}/v2/webhooks failed: "
                                r".+ \(after 3 attempts\); nothing was created")
        self.assertEqual(r.lines[-1], "0")

    def test_key_reused_for_a_different_request_names_both(self):
        r = self.sql("INSERT INTO apify_webhooks(request_url, event_types, actor_id,"
                     " idempotency_key) VALUES ('https://example.com/a', '[\"TEST\"]', 'a', 'k'),"
                     " ('https://example.com/b', '[\"TEST\"]', 'a', 'k');\n")
        self.assertIn("apify: row 2: idempotencyKey 'k' of row 2 was already used by row 1 for a"
                      " different request", r.err)
        self.assertEqual(self.emu.posts(), [])
        self.sql("INSERT INTO apify_webhooks(request_url, event_types, actor_id,"
                 " idempotency_key) VALUES ('https://example.com/a', '[\"TEST\"]', 'a', 'k');\n")
        r = self.sql("INSERT INTO apify_webhooks(request_url, event_types, actor_id,"
                     " idempotency_key) VALUES ('https://example.com/b', '[\"TEST\"]', 'a', 'k');\n")
        self.assertIn("apify: row 1: idempotencyKey 'k' of row 1 already belongs to a different"
                      " created request", r.err)
        self.assertEqual(len(self.emu.posts()), 1)

    def test_outcome_columns_cannot_be_inserted(self):
        r = self.sql("INSERT INTO apify_webhooks(request_url, event_types, actor_id, status)"
                     " VALUES ('https://example.com/a', '[\"TEST\"]', 'a', 'created');\n")
        self.assertIn("apify: row 1: status is set by the extension; leave it out", r.err)
        self.assertEqual(self.emu.posts(), [])

    def test_outcome_columns_cannot_be_updated_and_nothing_is_sent(self):
        self.sql(ACTORS.format(n=2) + bulk())
        before = self.rows("SELECT * FROM apify_webhooks;")
        self.emu.reset()
        for column, value in (("status", "'failed'"), ("id", "'x'"), ("verified", "1"),
                              ("idempotency_key", "'k'"), ("rowid", "rowid+100")):
            with self.subTest(column=column):
                r = self.sql(f"UPDATE apify_webhooks SET {column}={value};\n")
                self.assertRegex(r.err, r"apify: row 1: .*(cannot be (updated|changed))", r)
        self.assertEqual(self.rows("SELECT * FROM apify_webhooks;"), before)
        self.assertEqual(self.emu.log(), [])


class Reading(TableCase):

    def test_lookups_use_an_index(self):
        plans = {
            "id": "SELECT * FROM apify_webhooks WHERE id = 'x'",
            "status": "SELECT * FROM apify_webhooks WHERE status = 'failed'",
            "idempotency_key": "SELECT * FROM apify_webhooks WHERE idempotency_key = 'k'",
        }
        for column, query in plans.items():
            with self.subTest(column=column):
                r = self.sql(f"EXPLAIN QUERY PLAN {query};\n")
                self.assertIn("VIRTUAL TABLE INDEX", r.out)
                self.assertIn(f"{column}=?", r.out)
        self.sql(ACTORS.format(n=1) + bulk())
        for column in ("id", "status", "idempotency_key"):
            with self.subTest(store=column):
                r = self.sql(f"EXPLAIN QUERY PLAN SELECT * FROM apify_webhooks_store"
                             f" WHERE {column} = 'x';\n")
                self.assertIn("SEARCH apify_webhooks_store USING INDEX", r.out)

    def test_lookups_find_the_row(self):
        self.sql(ACTORS.format(n=5) + bulk())
        wid, key = self.rows("SELECT id, idempotency_key FROM apify_webhooks LIMIT 1 OFFSET 2;")[0].split("|")
        self.assertEqual(self.rows(f"SELECT actor_id FROM apify_webhooks WHERE id='{wid}';"),
                         ["actor00003"])
        self.assertEqual(self.rows(f"SELECT actor_id FROM apify_webhooks"
                                   f" WHERE idempotency_key='{key}';"), ["actor00003"])
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["5"])

    def test_views_read_the_store_not_the_table(self):
        self.sql(ACTORS.format(n=2) + bulk())
        r = self.sql("CREATE VIEW bad AS SELECT id FROM apify_webhooks;\nSELECT * FROM bad;\n")
        self.assertEqual(r.err,
                         'Parse error near line 3: unsafe use of virtual table "apify_webhooks"\n')
        r = self.sql("CREATE VIEW good AS SELECT id, status FROM apify_webhooks_store;\n"
                     "SELECT count(*) FROM good WHERE status='created';\n")
        self.assertEqual(r.lines, ["2"], r)

    def test_created_tables_are_separate(self):
        r = self.sql("CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n"
                     "INSERT INTO nightly(request_url, event_types, actor_id)"
                     " VALUES ('https://example.com/n', '[\"TEST\"]', 'a');\n"
                     "SELECT count(*) FROM nightly;\nSELECT count(*) FROM apify_webhooks;\n"
                     "SELECT name FROM sqlite_schema WHERE name LIKE 'nightly%' ORDER BY 1;\n"
                     "DROP TABLE nightly;\n"
                     "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'nightly%';\n")
        # the store and its index; the operations a transaction queues live in TEMP
        self.assertEqual(r.lines, ["1", "0", "nightly", "nightly_store", "nightly_store_status",
                                   "0"], r)


    def test_rename_takes_the_store_along(self):
        insert = ("INSERT INTO {t}(request_url, event_types, actor_id)"
                  " VALUES ('https://example.com/{t}', '[\"TEST\"]', 'a');\n")
        r = self.sql("CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n"
                     + insert.format(t="nightly") + "ALTER TABLE nightly RENAME TO weekly;\n"
                     "SELECT status FROM weekly;\n"
                     + insert.format(t="weekly") + "SELECT count(*) FROM weekly;\n"
                     # a new table under the old name gets a store and indexes of its own
                     "CREATE VIRTUAL TABLE nightly USING apify_webhooks;\n"
                     + insert.format(t="nightly") +
                     "SELECT tbl_name, name FROM sqlite_schema WHERE type='index'"
                     " AND name NOT LIKE 'sqlite_%' ORDER BY 1, 2;\n"
                     "SELECT count(*) FROM nightly;\n")
        # indexes keep their names through a rename; the new table's take the next free ones
        self.assertEqual(r.lines, ["created", "2",
                                   "nightly_store|nightly_store_status_2",
                                   "weekly_store|nightly_store_status", "1"], r)
        self.assertEqual(len(self.emu.posts()), 3)


class TokenStaysOut(TableCase):
    tokens = ["tok-SECRET-5d1e7a"]

    def test_token_is_nowhere_in_the_database_file(self):
        r = self.sql(ACTORS.format(n=5) + bulk() + "SELECT apify_create_webhook(webhook)"
                     " FROM apify_webhooks LIMIT 1;\n", token="tok-SECRET-5d1e7a")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.emu.webhooks()), 5)
        for path in (self.db, self.db + "-journal", self.db + "-wal"):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    self.assertNotIn(b"tok-SECRET-5d1e7a", f.read())
        self.assertNotIn("tok-SECRET-5d1e7a", r.out + r.err)


if __name__ == "__main__":
    unittest.main()
