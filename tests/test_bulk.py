"""Bulk sending: the sliding window, pacing under the rate limit and its reaction to 429,
progress output, and Ctrl-C (sqlite3_interrupt). Proven from the emulator's log: what arrived
when. Bounds below are loose on purpose (shared machines): each one follows from the mechanism,
not from how fast this machine is."""

import json
import threading
import time
import unittest

from tests.harness import connect
from tests.test_vtab import ACTORS, TableCase, bulk


def arrivals(emu):
    return [p["time"] for p in emu.posts()]


class Window(TableCase):

    def test_never_more_in_flight_than_the_concurrency(self):
        latency = 0.4
        self.emu.configure(latency_ms=int(latency * 1000))
        r = self.sql("SELECT apify_config('concurrency', 4), apify_config('rate_limit', 1000);\n"
                     + ACTORS.format(n=12) + bulk())
        self.assertEqual(r.rc, 0, r)
        times = sorted(arrivals(self.emu))
        self.assertEqual(len(times), 12)
        # A new request starts only when one of the 4 finished, at least `latency` after it
        # arrived: so no interval shorter than the latency holds more than 4 arrivals.
        for i, t in enumerate(times):
            self.assertLessEqual(sum(1 for u in times[i:] if u - t < latency * 0.9), 4)
        # And they do run side by side: the first 4 all arrive before the first answer.
        self.assertLess(times[3] - times[0], latency)

    def test_one_slow_request_does_not_hold_up_the_others(self):
        self.emu.configure(script=["slow"], slow_ms=3000)
        r = self.sql("SELECT apify_config('concurrency', 4), apify_config('rate_limit', 1000);\n"
                     + ACTORS.format(n=20) + bulk())
        self.assertEqual(r.rc, 0, r)
        times = arrivals(self.emu)
        self.assertEqual(len(times), 20)
        # All 19 others arrived while the first one's answer was still being held back.
        self.assertLess(max(times) - times[0], 3.0)
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["20"])


class Pacing(TableCase):

    def test_learns_the_limit_and_stays_under_it(self):
        self.emu.configure(rate_limit=20, rate_limit_header=20)
        r = self.sql(ACTORS.format(n=50) + bulk())
        self.assertEqual(r.rc, 0, r)
        statuses = [p["status"] for p in self.emu.posts()]
        self.assertEqual(statuses.count(201), 50)
        self.assertLessEqual(statuses.count(429), 1)
        times = sorted(arrivals(self.emu))
        # The first request goes alone to learn X-RateLimit-Limit; then 98% of 20/s, evenly.
        # The log's timestamps are taken by a thread of a busy emulator, so one more than the
        # limit may appear in a window now and then; the 429 count above is the real judge.
        for i, t in enumerate(times):
            self.assertLessEqual(sum(1 for u in times[i:] if u - t < 1.0), 21)

    def test_a_429_pauses_the_whole_run_for_retry_after(self):
        # The header claims 50/s but only 8/s are allowed: 429s come; each must stop every
        # new start for Retry-After (1 s), not just delay the request that got it.
        self.emu.configure(rate_limit=8, rate_limit_header=50, retry_after=1)
        r = self.sql("SELECT apify_config('concurrency', 8);\n" + ACTORS.format(n=30) + bulk(),
                     timeout=120)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["30"])
        limited = [p["time"] for p in posts if p["status"] == 429]
        self.assertTrue(limited, "the test needs at least one 429")
        times = [p["time"] for p in posts]
        for t in limited:
            # requests already on the wire may land just after; nothing new starts for ~1 s
            late = [u for u in times if t + 0.1 < u < t + 0.9]
            self.assertEqual(late, [], f"requests started during the pause after {t}")
        self.assertLess(len(limited), 30 * 0.5)

    def test_a_429_without_retry_after_backs_off_the_whole_run(self):
        self.emu.configure(rate_limit=8, rate_limit_header=50)
        r = self.sql("SELECT apify_config('concurrency', 8);\n" + ACTORS.format(n=30) + bulk(),
                     timeout=120)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()
        limited = [p["time"] for p in posts if p["status"] == 429]
        self.assertTrue(limited)
        times = [p["time"] for p in posts]
        for t in limited:
            # the backoff waits at least 500 ms
            self.assertEqual([u for u in times if t + 0.1 < u < t + 0.45], [])
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["30"])

    def test_a_429_slows_the_pace_that_follows(self):
        # A set rate of 10/s, then three 429s in a row (each for a request started after the
        # last pause): the pace must drop (to ~0.34 of it, recovering 2% per answer), so the
        # gaps between the POSTs after the pause are clearly longer than before it.
        self.emu.configure(script=["ok"] * 8 + ["429"] * 3)
        r = self.sql("SELECT apify_config('concurrency', 1), apify_config('rate_limit', 10);\n"
                     + ACTORS.format(n=16) + bulk(), timeout=120)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()
        statuses = [p["status"] for p in posts]
        self.assertEqual(statuses, [201] * 8 + [429] * 3 + [201] * 8, statuses)
        times = [p["time"] for p in posts]
        before = sorted(b - a for a, b in zip(times[1:8], times[2:9]))
        after = sorted(b - a for a, b in zip(times[11:17], times[12:18]))
        # unslowed both would be ~0.1 s; slowed, the gaps after are ~0.25 s
        self.assertGreater(after[len(after) // 2], 1.6 * before[len(before) // 2],
                           (before, after))
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["16"])

    def test_a_burst_of_429s_is_one_pause_not_sixteen(self):
        # 16 requests in flight together all get a 429: that is one event, one short pause
        # (backoff 0.5-1 s), not 16 doublings (30 s); the run goes on within seconds.
        self.emu.configure(script=["429"] * 16, latency_ms=300)
        start = time.monotonic()
        r = self.sql("SELECT apify_config('concurrency', 16), apify_config('rate_limit', 1000);\n"
                     + ACTORS.format(n=16) + bulk(), timeout=120)
        self.assertEqual(r.rc, 0, r)
        posts = self.emu.posts()
        self.assertEqual([p["status"] for p in posts[:16]], [429] * 16)
        last_429 = max(p["time"] for p in posts[:16])
        self.assertLess(max(p["time"] for p in posts[:16]) - posts[0]["time"], 0.3,
                        "the 16 were in flight together")
        self.assertEqual(len(posts), 32)
        self.assertLess(posts[16]["time"] - last_429, 5.0, "the pause after the burst")
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual(self.rows("SELECT count(*) FROM apify_webhooks WHERE status='created';"),
                         ["16"])


class Progress(TableCase):

    def test_progress_line_when_switched_on(self):
        r = self.sql("SELECT apify_config('progress', 'on');\n" + ACTORS.format(n=20) + bulk())
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"(?m)^apify: \d+/20 sent, \d+ created, \d+ failed, \d+ retrying, "
                                r"[\d.]+/s, .+ left")
        self.assertRegex(r.err, r"(?m)^apify: 20 requests in [\d.]+ s: 20 created, 0 failed, "
                                r"[\d.]+/s +\n$")

    def test_progress_counts_failures(self):
        self.emu.configure(max_webhooks=15)
        r = self.sql("SELECT apify_config('progress', 'on');\n" + ACTORS.format(n=20) + bulk())
        self.assertRegex(r.err, r"20 requests in [\d.]+ s: 15 created, 5 failed")

    def test_no_progress_in_pipes_by_default_or_for_small_runs(self):
        r = self.sql(ACTORS.format(n=20) + bulk())
        self.assertEqual(r.err, "")
        r = self.sql("SELECT apify_config('progress', 'on');\n" + bulk(" WHERE rowid<=3")
                     .replace("/hook/", "/small/"))
        self.assertEqual(r.err, "")


class Interrupt(TableCase):
    knobs = {"max_webhooks": 100000, "latency_ms": 100}

    def test_interrupt_stops_sending_and_a_rerun_completes_without_duplicates(self):
        conn = connect(self.emu, self.db, check_same_thread=False)
        conn.execute("SELECT apify_config('concurrency', 2), apify_config('rate_limit', 1000)")
        conn.execute("CREATE TABLE actors(actor_id TEXT, name TEXT)")
        conn.executemany("INSERT INTO actors VALUES (?, ?)",
                         [(f"a{i:03d}", f"n{i}") for i in range(60)])
        conn.commit()
        conn.execute(bulk())
        outcome = {}

        def commit():
            try:
                conn.commit()
                outcome["ok"] = True
            except Exception as e:   # noqa: BLE001 - the test reads the message
                outcome["error"] = str(e)

        worker = threading.Thread(target=commit)
        worker.start()
        self.emu.wait_for(lambda e: len(e.posts()) >= 6, timeout=20)
        conn.interrupt()
        worker.join(timeout=30)
        self.assertFalse(worker.is_alive())
        self.assertIn("error", outcome, outcome)
        self.assertRegex(outcome["error"], r"^apify: interrupted after \d+ of 60 requests were sent;"
                                           r" this connection keeps the outcomes it heard")
        sent = len(self.emu.posts())
        self.assertLess(sent, 60)
        time.sleep(0.5)
        self.assertEqual(len(self.emu.posts()), sent, "nothing is sent after the interrupt")
        self.assertEqual(conn.execute("SELECT count(*) FROM apify_webhooks").fetchone()[0], 0)

        conn.execute(bulk())
        conn.commit()
        self.assertEqual(conn.execute("SELECT count(*) FROM apify_webhooks"
                                      " WHERE status='created'").fetchone()[0], 60)
        hooks = self.emu.webhooks()
        self.assertEqual(len(hooks), 60)
        self.assertEqual(len({h["idempotencyKey"] for h in hooks}), 60)
        conn.close()

    def test_interrupt_stops_a_single_call_waiting_for_retries(self):
        self.emu.configure(script=["503"] * 10, latency_ms=0)
        conn = connect(self.emu, check_same_thread=False)
        hook = {"requestUrl": "https://example.com/i", "eventTypes": ["TEST"],
                "condition": {"actorId": "a"}}
        outcome = {}

        def call():
            try:
                conn.execute("SELECT apify_create_webhook(?)", (json.dumps(hook),)).fetchone()
            except Exception as e:   # noqa: BLE001
                outcome["error"] = str(e)

        start = time.monotonic()
        worker = threading.Thread(target=call)
        worker.start()
        self.emu.wait_for(lambda e: len(e.posts()) >= 2, timeout=20)
        conn.interrupt()
        worker.join(timeout=30)
        self.assertEqual(outcome.get("error"), "apify: interrupted")
        # 8 attempts would take a minute or more of backoff; the interrupt ends it at once
        self.assertLess(time.monotonic() - start, 20)
        conn.close()


if __name__ == "__main__":
    unittest.main()
