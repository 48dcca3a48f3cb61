"""Nothing lost, nothing duplicated, under faults: bulk INSERT ... SELECT through 5xx answers,
connections cut after the webhook was created, answers slower than the timeout, malformed
answers and bursts of 429, and faults that outlast the retries followed by a re-run.

Every check compares the emulator's state (the webhooks it holds, with their idempotency keys)
to the local store, key by key: one webhook per row, the same id on both sides. The emulator
draws each request's fault from its seed and its body (draw_by_body), so which row meets which
fault does not depend on the order concurrent requests arrive in, and a run is repeatable.
"""

import collections
import json
import os
import subprocess
import tempfile
import unittest

from tests.harness import Emulator, assert_one_per_row, local_rows, start_shell

ACTORS = ("CREATE TABLE actors(actor_id TEXT, name TEXT);\n"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})"
          " INSERT INTO actors SELECT printf('actor%05d', i), 'name' || i FROM c;\n")
BULK = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
        " SELECT 'https://example.com/hook/' || name, '[\"ACTOR.RUN.SUCCEEDED\"]', actor_id"
        " FROM actors;\n")
# Timeouts shorter than the emulator's slow answers (slow_ms below), enough attempts that no row
# runs out of them at these fault rates, and a retry-time cap that bounds the run. 64 requests in
# flight: a request waiting for its retry keeps its slot, so at the default 16 a run through 26%
# faults goes at a quarter of its pace.
FAST = ("SELECT apify_config('timeout_ms', 1000), apify_config('connect_timeout_ms', 1000),"
        " apify_config('concurrency', 64),"
        " apify_config('max_attempts', 10), apify_config('max_retry_time_ms', 60000);\n")
# A run that takes longer than this is stuck (each of these runs takes seconds when healthy).
RUN_LIMIT = 120
# Seed of the faults of the 1,000-row run, chosen so that with these bodies few rows meet many
# faults in a row and the retry tail stays short. Any seed is correct; others are only slower.
SEED = 57
INJECTED_500 = ("internal-server-error", "Internal server error (injected by the emulator)")


class FaultCase(unittest.TestCase):
    """One emulator per test (its knobs are the test's), one fresh database file."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.db = os.path.join(self.tmp.name, "t.db")

    def emulator(self, **knobs):
        emu = Emulator(max_webhooks=1000000, rate_limit_header=100000, **knobs)
        self.addCleanup(emu.stop)
        return emu

    def run_sql(self, emu, sql, limit=RUN_LIMIT):
        """Run sql in the shell on the test's database; fail (not hang) if it takes over limit
        seconds."""
        proc = start_shell(sql, emu, db=self.db)
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            self.fail(f"the statement did not finish within {limit} s (stuck?); "
                      f"emulator counts: {emu.counts()}; stderr: {err[-800:]!r}")
        return proc.returncode, out, err

    def local(self, emu):
        return local_rows(self.db, emu)

    def assertOnePerRow(self, emu, n):
        return assert_one_per_row(self, emu, self.db, n)

    def actions(self, emu):
        return collections.Counter(str(p.get("action")) for p in emu.posts())


class BulkUnderFaults(FaultCase):

    def test_1000_rows_through_5xx_cuts_slow_malformed_and_429s_with_retry_after(self):
        # 10% 500, 10% cut after create, 3% slower than the timeout, 3% malformed 201; after
        # 300 and 600 requests a burst of ten 429s, each with Retry-After: 1.
        burst = ["429"] * 10
        emu = self.emulator(seed=SEED, draw_by_body=True, fail_5xx=0.1, cut_after_create=0.1,
                            slow=0.03, slow_ms=2500, malformed=0.03, retry_after=1,
                            script=["draw"] * 300 + burst + ["draw"] * 300 + burst)
        rc, out, err = self.run_sql(emu, FAST + ACTORS.format(n=1000) + BULK)
        self.assertEqual((rc, err), (0, ""), out)
        rows = self.assertOnePerRow(emu, 1000)
        posts = emu.posts()
        actions = self.actions(emu)
        for action in ("500", "cut", "slow", "malformed"):
            self.assertGreater(actions[action], 0, f"no {action} fault was met: {actions}")
        self.assertEqual(actions["429"], 20, actions)
        self.assertEqual(actions["ok"], 1000, "one successful create per row")
        # Every attempt the extension counted reached the emulator. There can be more POSTs
        # than attempts only where an answer was cut: libcurl itself sends a request again,
        # once per dead connection, when a reused connection closes without a byte.
        attempts = sum(r["attempts"] for r in rows)
        self.assertLessEqual(attempts, len(posts))
        self.assertLessEqual(len(posts) - attempts, actions["cut"])
        # Each key's attempts carry one body, byte for byte.
        bodies = collections.defaultdict(set)
        for p in posts:
            bodies[json.loads(p["body"])["idempotencyKey"]].add(p["body"])
        self.assertEqual({len(b) for b in bodies.values()}, {1})

    def test_1000_rows_through_bursts_of_429_without_retry_after(self):
        # At the default concurrency (16), ten 429s in a row come from requests that were in
        # flight together: one burst, not ten doublings of a pause that every request waits
        # for. The run must go on within seconds, and no row may fail for it.
        burst = ["429"] * 10
        emu = self.emulator(script=["draw"] * 200 + burst + ["draw"] * 300 + burst)
        rc, out, err = self.run_sql(emu, FAST + "SELECT apify_config('concurrency', 16);\n"
                                    + ACTORS.format(n=1000) + BULK, limit=60)
        self.assertEqual((rc, err), (0, ""), out)
        self.assertOnePerRow(emu, 1000)
        self.assertEqual(self.actions(emu)["429"], 20)


class FaultsOutlastTheRetries(FaultCase):

    def test_failed_rows_keep_the_reason_and_a_rerun_completes_them_once(self):
        # Two attempts only: a row whose both attempts meet a fault is recorded failed. Some
        # of those exist on the server anyway (the answer of the create was cut).
        n = 200
        emu = self.emulator(seed=3, draw_by_body=True, fail_5xx=0.4, cut_after_create=0.2)
        limits = ("SELECT apify_config('max_attempts', 2), apify_config('timeout_ms', 2000),"
                  " apify_config('max_retry_time_ms', 60000);\n")
        rc, out, err = self.run_sql(emu, limits + ACTORS.format(n=n) + BULK)
        self.assertEqual((rc, err), (0, ""), out)

        rows = self.local(emu)
        self.assertEqual(len(rows), n)
        last = {}                                   # key -> the last POST of it
        for p in emu.posts():
            last[json.loads(p["body"])["idempotencyKey"]] = p
        failed = [r for r in rows if r["status"] == "failed"]
        created = [r for r in rows if r["status"] == "created"]
        self.assertEqual(len(failed) + len(created), n)
        reasons = collections.Counter()
        wrong = []                                  # rows whose reason is not their last answer
        for row in failed:
            post = last[row["idempotency_key"]]
            self.assertEqual(row["attempts"], 2, row)
            self.assertIsNone(row["id"], row)
            if post["status"] == 500:
                reason = (500, *INJECTED_500)
            else:
                self.assertEqual(post["status"], "cut", post)
                reason = (None, None, "Empty reply from server")
            got = (row["http_status"], row["error_type"], row["error_message"])
            if got != reason:
                wrong.append((row["rowid"], got, reason))
            reasons[post["status"]] += 1
        self.assertGreater(reasons[500], 0, reasons)
        self.assertGreater(reasons["cut"], 0, reasons)
        remote = {w["idempotencyKey"]: w["id"] for w in emu.webhooks()}
        for row in created:
            self.assertEqual(remote[row["idempotency_key"]], row["id"])
        # Failed locally but created remotely: only the cut answers of those rows know it.
        failed_keys = {r["idempotency_key"] for r in failed}
        self.assertTrue(failed_keys & set(remote), "no failed row exists remotely")

        # The same INSERT again, the faults gone: only the failed rows are sent, once each.
        emu.configure(fail_5xx=0.0, cut_after_create=0.0)
        before = len(emu.posts())
        rc, out, err = self.run_sql(emu, BULK)
        self.assertEqual((rc, err), (0, ""), out)
        resent = [json.loads(p["body"])["idempotencyKey"] for p in emu.posts()[before:]]
        self.assertEqual(sorted(resent), sorted(failed_keys))
        self.assertOnePerRow(emu, n)

        # And once more: nothing is sent.
        before = len(emu.posts())
        rc, out, err = self.run_sql(emu, BULK)
        self.assertEqual((rc, err), (0, ""), out)
        self.assertEqual(len(emu.posts()), before)
        self.assertOnePerRow(emu, n)

        # (rowid, recorded (http_status, error_type, error_message), the last answer's)
        self.assertEqual(wrong, [], "failed rows recorded with a reason not their own")

    def test_a_row_without_an_answer_records_no_http_status(self):
        # Row 1 fails with two 500s, then row 2 with two cut connections (no answer at all):
        # row 2's http_status is NULL, not row 1's 500. One request at a time, so the order
        # is fixed; libcurl may send a cut request once more on its own, hence the spare cuts.
        emu = self.emulator(script=["500", "500"] + ["cut"] * 8)
        limits = ("SELECT apify_config('max_attempts', 2), apify_config('concurrency', 1);\n")
        rc, out, err = self.run_sql(emu, limits + ACTORS.format(n=2) + BULK)
        self.assertEqual((rc, err), (0, ""), out)
        rows = self.local(emu)
        self.assertEqual([(r["status"], r["http_status"], r["error_type"], r["error_message"])
                          for r in rows],
                         [("failed", 500, *INJECTED_500),
                          ("failed", None, None, "Empty reply from server")])

    def test_lost_answers_of_created_webhooks_are_not_called_nothing_created(self):
        # Every attempt is created on the server and its answer cut. Whatever the extension
        # does with the commit, it must not claim that nothing was created; a re-run then
        # records the webhooks that exist, none twice.
        emu = self.emulator(script=["cut"] * 6)
        limits = ("SELECT apify_config('max_attempts', 2), apify_config('timeout_ms', 2000);\n")
        rc, out, first_err = self.run_sql(emu, limits + ACTORS.format(n=3) + BULK)
        self.assertEqual(len(emu.webhooks()), 3)
        rc, out, err = self.run_sql(emu, BULK)
        self.assertEqual((rc, err), (0, ""), out)
        self.assertOnePerRow(emu, 3)
        self.assertNotIn("nothing was created", first_err)


class EmulatorFaultDraws(unittest.TestCase):
    """The emulator features the runs above rely on: per-body draws and scripted draws."""

    def post(self, emu, key):
        body = {"requestUrl": "https://example.com/h", "eventTypes": ["TEST"],
                "condition": {"actorId": "a"}, "idempotencyKey": key}
        return emu.request("POST", "/v2/webhooks", body).status

    def test_draw_by_body_does_not_depend_on_arrival_order(self):
        with Emulator(seed=5, draw_by_body=True, fail_5xx=0.5) as emu:
            keys = [f"k{i}" for i in range(12)]
            forward = {k: [self.post(emu, k), self.post(emu, k)] for k in keys}
            emu.reset()
            backward = {k: [self.post(emu, k), self.post(emu, k)] for k in reversed(keys)}
            self.assertEqual(forward, backward)
            self.assertEqual({s for pair in forward.values() for s in pair}, {201, 500})

    def test_scripted_draw_takes_the_random_draw(self):
        with Emulator(fail_5xx=1.0, script=["draw", "429", "ok"]) as emu:
            self.assertEqual([self.post(emu, k) for k in ("a", "b", "c", "d")],
                             [500, 429, 201, 500])


if __name__ == "__main__":
    unittest.main()
