"""kill -9 in the middle of a bulk commit, then run the same statement again: the database is
intact, and every row ends with exactly one webhook on the server and one created record
locally. Also: a database lost after a completed run, and the run repeated from scratch.

The sqlite3 shell runs the INSERT ... SELECT while the emulator answers with some latency and
the extension paces itself, so the commit (xSync, where the requests go out and the outcomes
are written) lasts a second or two; the test polls the emulator's counts and sends SIGKILL once
it has received k POSTs. The killed transaction never commits, so nothing of it is recorded
locally; the webhooks it created remotely come back on the re-run through their idempotency
keys instead of being created twice.
"""

import os
import signal
import time
import unittest

from tests.harness import EmulatorCase, assert_one_per_row, local_rows, shell, start_shell

N = 300
ACTORS = ("CREATE TABLE actors(actor_id TEXT, name TEXT);\n"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})"
          " INSERT INTO actors SELECT printf('actor%05d', i), 'name' || i FROM c;\n")
BULK = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
        " SELECT 'https://example.com/hook/' || name, '[\"ACTOR.RUN.SUCCEEDED\"]', actor_id"
        " FROM actors{where};\n")
FAST = ("SELECT apify_config('timeout_ms', 5000), apify_config('connect_timeout_ms', 2000),"
        " apify_config('max_attempts', 5);\n")
RUN_LIMIT = 120        # seconds: a run that takes longer is stuck
KILL_LIMIT = 60        # seconds to wait for the k-th POST


def bulk(where=""):
    return BULK.format(where=where)


class CrashCase(EmulatorCase):
    # 20 ms per answer and X-RateLimit-Limit 150 (the extension paces at 98% of it): a 300-row
    # commit takes about two seconds, long enough to kill it at a chosen point.
    knobs = {"latency_ms": 20, "rate_limit_header": 150, "max_webhooks": 1000000}

    def sql(self, text, **kwargs):
        r = shell(text, self.emu, db=self.db, timeout=RUN_LIMIT, **kwargs)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        return r

    def posts(self):
        return self.emu.counts()["posts"]

    def settle(self):
        """Wait until the emulator has answered every request it received (the killed
        client's requests in flight still complete on the server)."""
        def settled(emu):
            return all(e["status"] is not None for e in emu.log())
        self.emu.wait_for(settled, timeout=20, interval=0.05)

    def kill_after(self, sql, k):
        """Run sql in the shell and SIGKILL it once the emulator has received k more POSTs.
        Returns the number of POSTs (of this run) seen when the kill was sent."""
        start = self.posts()
        proc = start_shell(sql, self.emu, db=self.db)
        deadline = time.monotonic() + KILL_LIMIT
        seen = 0
        while proc.poll() is None and time.monotonic() < deadline:
            seen = self.posts() - start
            if seen >= k:
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            self.fail(f"the shell ended before the emulator saw {k} POSTs (it saw {seen}): "
                      f"{proc.communicate(timeout=10)}")
        self.assertGreaterEqual(seen, k, f"no {k} POSTs within {KILL_LIMIT} s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        # The kill caught a write transaction open: its journal is left behind, hot.
        journal = "-wal" if getattr(self, "journal", None) == "WAL" else "-journal"
        self.assertTrue(os.path.exists(self.db + journal), f"no {journal} after the kill")
        self.settle()
        return seen

    def assertIntact(self):
        r = shell("PRAGMA integrity_check;\n", db=self.db, load=False)
        self.assertEqual((r.rc, r.out.strip(), r.err), (0, "ok", ""), r)

    def assertOnePerRow(self, n=N):
        return assert_one_per_row(self, self.emu, self.db, n)

    def created_remotely(self):
        return {w["idempotencyKey"]: w["id"] for w in self.emu.webhooks()}


class KillMidCommit(CrashCase):
    journal = None    # the shell's default, a rollback journal (DELETE)

    def setUp(self):
        super().setUp()
        setup = ACTORS.format(n=N)
        if self.journal:
            setup = f"PRAGMA journal_mode={self.journal};\n" + setup
        r = shell(setup, db=self.db, load=False)
        self.assertEqual((r.rc, r.err), (0, ""), r)

    def test_killed_at_several_points_then_rerun(self):
        # The same statement killed three times, later each time, then run to the end.
        for k in (1, 90, 240):
            with self.subTest(kill_after_posts=k):
                seen = self.kill_after(FAST + bulk(), k)
                self.assertIntact()
                # The kill rolled the whole commit back: nothing of it is recorded locally...
                self.assertEqual(local_rows(self.db, self.emu), [])
                # ...while the server kept what it created, each once.
                remote = self.created_remotely()
                self.assertGreaterEqual(len(remote), seen)
                self.assertEqual(len(remote), len(self.emu.webhooks()))
        self.sql(FAST + bulk())
        self.assertIntact()
        self.assertOnePerRow()

    def test_killed_in_an_explicit_transaction_with_other_writes(self):
        # BEGIN ... COMMIT: the kill during COMMIT takes the user's own writes of the
        # transaction with it (atomic), and the re-run makes both whole.
        txn = ("BEGIN;\nCREATE TABLE IF NOT EXISTS runs(note TEXT);\n"
               "INSERT INTO runs VALUES ('bulk');\n" + bulk() + "COMMIT;\n")
        self.kill_after(FAST + txn, 120)
        self.assertIntact()
        r = shell("SELECT count(*) FROM sqlite_schema WHERE name='runs';\n", db=self.db,
                  load=False)
        self.assertEqual(r.out.strip(), "0", r)
        self.sql(FAST + txn)
        self.assertIntact()
        self.assertOnePerRow()
        r = shell("SELECT note FROM runs;\n", db=self.db, load=False)
        self.assertEqual(r.out.strip(), "bulk", r)

    def test_killed_after_an_earlier_run_left_records(self):
        # The first half is created and recorded; the whole statement is then killed part
        # way: the first half's records are untouched, and the re-run sends only what is
        # missing locally, creating nothing twice.
        self.sql(FAST + bulk(" WHERE rowid <= 150"))
        first = {r["idempotency_key"]: r["id"] for r in local_rows(self.db, self.emu)}
        self.assertEqual(len(first), 150)
        self.kill_after(FAST + bulk(), 60)
        self.assertIntact()
        after = local_rows(self.db, self.emu)
        self.assertEqual({r["idempotency_key"]: r["id"] for r in after}, first)
        self.assertEqual({r["status"] for r in after}, {"created"})
        before = self.posts()
        self.sql(FAST + bulk())
        self.assertEqual(self.posts() - before, N - 150)
        self.assertIntact()
        rows = self.assertOnePerRow()
        self.assertEqual({r["idempotency_key"]: r["id"] for r in rows[:150]}, first)


class KillMidCommitWal(KillMidCommit):
    journal = "WAL"

    def test_database_is_in_wal_mode(self):
        r = shell("PRAGMA journal_mode;\n", db=self.db, load=False)
        self.assertEqual(r.out.strip(), "wal", r)


class LostDatabase(CrashCase):

    def test_database_deleted_after_a_completed_run_then_run_from_scratch(self):
        self.sql(ACTORS.format(n=N) + FAST + bulk())
        first = {r["idempotency_key"]: r["id"] for r in self.assertOnePerRow()}
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        before = self.posts()
        self.sql(ACTORS.format(n=N) + FAST + bulk())
        # Every row was sent again (the database knew nothing), and the API answered each
        # with the webhook created the first time.
        self.assertEqual(self.posts() - before, N)
        rows = self.assertOnePerRow()
        self.assertEqual({r["idempotency_key"]: r["id"] for r in rows}, first)

    def test_database_deleted_mid_way_through_a_killed_run(self):
        # The worst case: killed mid-commit, and the database (with its hot journal) lost
        # too. A fresh run from scratch still creates each webhook once.
        self.sql(ACTORS.format(n=N))
        self.kill_after(FAST + bulk(), 120)
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        self.sql(ACTORS.format(n=N) + FAST + bulk())
        self.assertOnePerRow()


if __name__ == "__main__":
    unittest.main()
