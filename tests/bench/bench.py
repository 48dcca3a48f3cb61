#!/usr/bin/env python3
"""`make bench`: the extension against the official JavaScript client, on the local emulator.

    /usr/bin/python3 tests/bench/bench.py            # full run, writes tests/bench/RESULTS.md
    /usr/bin/python3 tests/bench/bench.py --quick    # small smoke run, 1 repetition, stdout only
    BENCH_QUICK=1 make bench                         # the same smoke run through make

Everything runs against tests/emulator.py on 127.0.0.1, started here through tests/harness.py
(one emulator for the whole run, reset before every measured run, max_webhooks raised). Every
child process has a timeout and the whole run a time budget (--budget): runs that do not fit are
skipped and reported as not measured. Standard library only.

What is measured (the method is also written into RESULTS.md, next to the numbers):

  a. Throughput under a rate limit: N webhooks, emulator latency 50 ms and a limit of 60 POSTs/s
     (429 above it, X-RateLimit-Limit: 60). Wall time of the bulk operation, achieved rate as a
     fraction of the limit (N / wall / 60) and the 429s the emulator answered (its counts).
  b. CPU: N webhooks with no added latency and no limit (X-RateLimit-Limit 100000 so nobody is
     throttled). Client CPU = ru_utime + ru_stime of the client process alone, from os.wait4.
  c. Peak memory of the sqlite3 shell for a small and a big INSERT: ru_maxrss from os.wait4, and
     the process's own VmHWM read at the end of its script. On Linux, ru_maxrss of an exec'd
     child is at least what its forking parent (this Python process) had resident when it
     forked, because exec carries the pre-exec high-water mark over; VmHWM is the peak of the
     program's own address space since exec. Both are reported; the verdict uses VmHWM.
  d. Re-running a completed INSERT: requests received by the emulator, and the time taken.
  e. Bulk UPDATE under a's limit and latency: N webhooks created first (not measured), then one
     UPDATE apify_webhooks SET description = ... (a PUT per row) against apify-client's
     webhook(id).update() loop on the same webhooks with the same bodies; reported as a is.
  f. Bulk DELETE likewise: DELETE FROM apify_webhooks against webhook(id).delete().

The extension runs in the real sqlite3 shell (one fresh database file per run, the script fed on
stdin, `.timer on` around the INSERT). The official client is tests/bench/js_client.mjs on Node
with npm apify-client from tests/js/node_modules, at 1, 8 and 32 requests in flight, sending the
very bodies the extension sends (taken from apify_dry_run, idempotencyKey included); every run
checks on the emulator's log that the set of bodies received is exactly that set (e and f: that
exactly the expected PUTs or DELETEs arrived, each answered once, and what the emulator holds). Every run
loads one copy of build/apify.so taken when the bench starts, so a rebuild meanwhile (make test
in another shell) cannot mix two builds into one report.
"""

import argparse
import collections
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import harness  # noqa: E402  (after the path is set)

BENCH = ROOT / "tests" / "bench"
RESULTS = BENCH / "RESULTS.md"
JS_CLIENT = BENCH / "js_client.mjs"
JS_DIR = ROOT / "tests" / "js"
APIFY_CLIENT_PKG = JS_DIR / "node_modules" / "apify-client" / "package.json"

LIMIT = 60                    # a: the emulator's rate limit (POSTs per second per user)
LATENCY_MS = 50               # a: the emulator's added latency
HEADER_UNLIMITED = 100000     # b, c, d: X-RateLimit-Limit high enough that nobody paces
JS_CONCURRENCY = (1, 8, 32)

FULL = {"reps": 3, "a": 600, "e": 600, "b": 2000, "c": (1000, 20000), "d": 10000}
QUICK = {"reps": 1, "a": 120, "e": 120, "b": 200, "c": (1000, 2000), "d": 1000}

KNOBS_A = {"latency_ms": LATENCY_MS, "rate_limit": LIMIT, "rate_limit_header": None}
KNOBS_FAST = {"latency_ms": 0, "rate_limit": None, "rate_limit_header": HEADER_UNLIMITED}

EVENTS = '["ACTOR.RUN.SUCCEEDED"]'
ACTORS_SQL = (
    "CREATE TABLE actors(actor_id TEXT, name TEXT);\n"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{n})\n"
    "  INSERT INTO actors SELECT printf('bench%012d', i), 'actor' || i FROM c;\n")
INSERT_SQL = (
    "INSERT INTO apify_webhooks(request_url, event_types, actor_id)\n"
    f"  SELECT 'https://example.com/hook/' || name, '{EVENTS}', actor_id FROM actors;\n")
# The same webhooks as INSERT_SQL, as the bodies the extension would send (nothing is sent).
DRY_RUN_SQL = (
    ".mode list\n"
    "SELECT apify_dry_run(json_object('requestUrl', 'https://example.com/hook/' || name,"
    f" 'eventTypes', json('{EVENTS}'), 'condition', json_object('actorId', actor_id)))"
    " -> '$.body' FROM actors ORDER BY rowid;\n")
# e and f: the bulk UPDATE and DELETE, on the webhooks INSERT_SQL created (not measured), and
# the request the extension sends for each row (the JS client is given the same ones).
DESCRIPTION_SQL = "'updated by the bench: ' || actor_id"
UPDATE_SQL = f"UPDATE apify_webhooks SET description = {DESCRIPTION_SQL};\n"
DELETE_SQL = "DELETE FROM apify_webhooks;\n"
# What each changing scenario does: the SQL, the HTTP method, the status of a success, the
# js_client.mjs --op, and the items it is given, one JSON line per record of the setup.
CHANGES = {
    "e": {"verb": "UPDATE", "sql": UPDATE_SQL, "method": "PUT", "ok": 200, "op": "update",
          "items": f"json_object('id', id, 'body', json_object('description', {DESCRIPTION_SQL}))"},
    "f": {"verb": "DELETE", "sql": DELETE_SQL, "method": "DELETE", "ok": 204, "op": "delete",
          "items": "json_object('id', id)"},
}
TIMER_RE = re.compile(r"Run Time: real ([0-9.]+) user ([0-9.]+) sys ([0-9.]+)")
HWM_RE = re.compile(r"^VmHWM:\s+(\d+) kB", re.M)
# The end of every extension script: the sqlite3 process's own peak RSS, read by the shell
# itself (no child process, so the CPU measured stays the shell's alone). readfile() cannot read
# /proc (it sizes files first); .import reads them line by line, and in ascii mode the whole
# file lands in one row.
HWM_SQL = ("CREATE TEMP TABLE bench_proc_status(text TEXT);\n"
           ".import --ascii /proc/self/status bench_proc_status\n"
           "SELECT text FROM bench_proc_status;\n")

CHILD_TIMEOUT = 600.0         # seconds: no child process of the bench lives longer


class Budget:
    """The run's time budget: a run that cannot start before the deadline is skipped."""

    def __init__(self, seconds):
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.skipped = []

    def left(self):
        return self.deadline - time.monotonic()

    def allows(self, what):
        if self.left() > 0:
            return True
        self.skipped.append(what)
        return False

    def elapsed(self):
        return time.monotonic() - self.start


# ---------------------------------------------------------------------------------------------
# Child processes, measured with os.wait4

class Measured:
    """A finished child: rc, stdout, stderr, wall seconds, and its own rusage."""

    def __init__(self, rc, out, err, wall, ru):
        self.rc, self.out, self.err, self.wall = rc, out, err, wall
        self.user, self.sys, self.maxrss_kb = ru.ru_utime, ru.ru_stime, ru.ru_maxrss

    @property
    def cpu(self):
        return self.user + self.sys


def run_measured(argv, stdin_text, env, timeout):
    """Run argv with stdin_text on stdin; reap it with os.wait4 so the rusage is this child's
    alone (sqlite3 and node start no children of their own). Killed after timeout seconds."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr:
        fin.write(stdin_text.encode("utf-8"))
        fin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=str(ROOT))
        killed = []
        timer = threading.Timer(timeout, lambda: (killed.append(1), proc.kill()))
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
        fout.seek(0)
        ferr.seek(0)
        out = fout.read().decode("utf-8", "replace")
        err = ferr.read().decode("utf-8", "replace")
    if killed:
        err += f"\n(killed by the bench after {timeout:.0f} s)"
    return Measured(proc.returncode, out, err, wall, ru)


def proc_cpu(pid):
    """CPU seconds (user+sys) used so far by a live process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy_seconds():
    """CPU seconds all cores spent outside idle and iowait since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU seconds of this process and every child reaped so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def fingerprint(path):
    """Which build of the module this is: the start of its SHA-256, and its mtime."""
    data = Path(path).read_bytes()
    mtime = datetime.datetime.fromtimestamp(Path(path).stat().st_mtime).astimezone()
    return f"sha256 {hashlib.sha256(data).hexdigest()[:12]}, built {mtime.strftime('%Y-%m-%d %H:%M:%S %Z')}"


def own_rss_kb():
    """What this Python process has resident now (VmRSS): the floor under a child's ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            found = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
        return int(found.group(1)) if found else float("nan")
    except OSError:
        return float("nan")


def counts(emu):
    """The emulator's counts; /_emulator/counts where the emulator has it, else /state."""
    if hasattr(emu, "counts"):
        try:
            return emu.counts()
        except RuntimeError:
            pass
    return emu.state()["counts"]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------------------------------------
# The two clients

def shell_env(emu):
    env = emu.env()
    env.pop("SQLITE_HISTORY", None)
    return env


def run_extension(emu, db, n, budget, create_actors=True, config=(), statement=INSERT_SQL):
    """One INSERT ... SELECT of n rows (or another statement: e and f) through the sqlite3
    shell into db. Returns a dict."""
    script = [".bail on", f".load {harness.EXT}"]
    if create_actors:
        script.append(ACTORS_SQL.format(n=n) if n else ACTORS_SQL.split("\n")[0] + "\n")
    for name, value in config:
        script.append(f"SELECT apify_config('{name}', {value});")
    script += [".timer on", statement, ".timer off", HWM_SQL]
    spawner_rss = own_rss_kb()
    emu_cpu0 = proc_cpu(emu.process.pid)
    m = run_measured([harness.SQLITE3, str(db)], "\n".join(script) + "\n", shell_env(emu),
                     min(CHILD_TIMEOUT, max(budget.left(), 0) + 120))
    emu_cpu = proc_cpu(emu.process.pid) - emu_cpu0
    timers = TIMER_RE.findall(m.out)
    row = {"rc": m.rc, "proc_wall": m.wall, "cpu": m.cpu, "user": m.user, "sys": m.sys,
           "maxrss_kb": m.maxrss_kb, "emu_cpu": emu_cpu, "spawner_rss_kb": spawner_rss,
           "error": "" if m.rc == 0 else m.err.strip()}
    hwm = HWM_RE.findall(m.out)
    if hwm:
        row["hwm_kb"] = int(hwm[-1])
    if timers:
        real, user, sys_ = map(float, timers[-1])
        row.update(op_wall=real, op_cpu=user + sys_)
    elif m.rc == 0:
        row["error"] = f"no .timer line in the output: {m.out[-300:]!r}"
    return row


def extension_outcomes(emu, db, n):
    """The statuses the extension recorded, as {status: (rows, attempts)}."""
    r = harness.shell(".mode list\nSELECT status, count(*), sum(attempts) FROM apify_webhooks"
                      " GROUP BY status;\n", emu, db=db)
    out = {}
    for line in r.lines:
        status, count, attempts = line.split("|")
        out[status] = (int(count), int(attempts or 0))
    return out


def run_js(emu, bodies_path, concurrency, budget, op="create"):
    """js_client.mjs over the bodies file at the given concurrency, the calls of --op op.
    Returns a dict."""
    spawner_rss = own_rss_kb()
    emu_cpu0 = proc_cpu(emu.process.pid)
    m = run_measured(["node", str(JS_CLIENT), "--bodies", str(bodies_path),
                      "--concurrency", str(concurrency), "--op", op], "", emu.env(),
                     min(CHILD_TIMEOUT, max(budget.left(), 0) + 120))
    emu_cpu = proc_cpu(emu.process.pid) - emu_cpu0
    row = {"rc": m.rc, "proc_wall": m.wall, "cpu": m.cpu, "user": m.user, "sys": m.sys,
           "maxrss_kb": m.maxrss_kb, "emu_cpu": emu_cpu, "spawner_rss_kb": spawner_rss, "error": ""}
    try:
        report = json.loads(m.out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        row["error"] = f"rc {m.rc}: {(m.err or m.out).strip()[-400:]}"
        return row
    row.update(op_wall=report["elapsedMs"] / 1000,
               op_cpu=(report["cpuUserUs"] + report["cpuSysUs"]) / 1e6,
               client_done=report.get("done", report.get("created")),
               client_failed=report["failed"])
    if report.get("vmHwmKb"):
        row["hwm_kb"] = report["vmHwmKb"]
    if report["failed"] or m.rc != 0:
        row["error"] = f"{report['failed']} failed: {report['errors']}"
    return row


def canonical(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def server_view(emu, row, n, expected_bodies=None):
    """Add what the emulator saw to a run's row: POSTs, statuses, webhooks, and whether the
    distinct bodies it received are exactly the expected ones."""
    c = counts(emu)
    by_status = c["byStatus"]
    row.update(posts=c["posts"], n429=by_status.get("429", 0), n201=by_status.get("201", 0),
               statuses=dict(sorted(by_status.items())), server_webhooks=c["webhooks"])
    if c["webhooks"] != n and not row["error"]:
        row["error"] = f"{c['webhooks']} webhooks on the emulator, expected {n}"
    if expected_bodies is not None:
        posts = emu.posts()
        seen = {canonical(e["body"]) for e in posts}
        times = [e["time"] for e in posts]
        if len(times) > 1:
            # Mean gap between POST arrivals, from the first to the last: the client's pace.
            row["spacing_ms"] = (times[-1] - times[0]) / (len(times) - 1) * 1000
        row["bodies_ok"] = seen == expected_bodies
        if not row["bodies_ok"] and not row["error"]:
            row["error"] = "the bodies received differ from the extension's"
    return row


def dry_run_bodies(emu, n, directory):
    """Write the n bodies the extension sends for the bench's actors table to a JSON-lines file;
    return (path, set of canonical bodies)."""
    r = harness.shell(ACTORS_SQL.format(n=n) + DRY_RUN_SQL, emu, db=":memory:", timeout=300)
    if r.rc != 0 or len(r.lines) != n:
        raise RuntimeError(f"apify_dry_run gave {len(r.lines)} bodies for {n} rows: {r.err[-400:]}")
    path = Path(directory) / f"bodies-{n}.jsonl"
    path.write_text("\n".join(r.lines) + "\n")
    return path, {canonical(line) for line in r.lines}


def fresh(emu, knobs):
    emu.reset()
    emu.configure(**knobs)


# ---------------------------------------------------------------------------------------------
# The scenarios

def scenario_throughput(emu, cfg, budget, tmp, label, n, knobs, log):
    """a and b: the extension and the JS client at each concurrency, interleaved per repetition
    so a disturbance on the machine hits every client alike. Returns {client: [rows]}."""
    bodies_path, bodies = dry_run_bodies(emu, n, tmp)
    runs = {"extension": [], **{f"js c={c}": [] for c in JS_CONCURRENCY}}
    for rep in range(cfg["reps"]):
        for client in runs:
            if not budget.allows(f"{label} {client} rep {rep + 1}"):
                continue
            fresh(emu, knobs)
            if client == "extension":
                db = Path(tmp) / f"{label}-{rep}.db"
                row = run_extension(emu, db, n, budget)
                row["outcomes"] = extension_outcomes(emu, db, n)
                db.unlink(missing_ok=True)
            else:
                row = run_js(emu, bodies_path, int(client.split("=")[1]), budget)
            server_view(emu, row, n, bodies)
            runs[client].append(row)
            log(f"  {label} rep {rep + 1} {client:<10} {describe(row)}")
    return runs


def setup_records(emu, db, n, change):
    """The starting point of one e or f run: a fresh emulator holding the n webhooks that
    INSERT_SQL creates, at full speed (not measured), and their records in db. Returns the
    JS client's items (one JSON line per webhook) and the log position where the run starts."""
    fresh(emu, KNOBS_FAST)
    r = harness.shell(ACTORS_SQL.format(n=n) + INSERT_SQL + ".mode list\n"
                      f"SELECT {change['items']} FROM apify_webhooks;\n", emu, db=db, timeout=300)
    c = counts(emu)
    if r.rc != 0 or len(r.lines) != n or c["webhooks"] != n:
        raise RuntimeError(f"setup: {len(r.lines)} records and {c['webhooks']} webhooks for {n} "
                           f"rows: {r.err[-400:]}")
    return r.lines, c["requests"]


def change_view(emu, row, n, change, expected, start):
    """e and f: add what the emulator received from the measured run (the log from start on)
    to its row, and check it: every request is change['method'] on one of the n webhooks with
    the expected body, each webhook answered change['ok'] exactly once, and the emulator ends
    as the statement says (every webhook updated, or none left)."""
    entries = emu.log()[start:]
    by_status = collections.Counter(str(e["status"]) for e in entries)
    mine = [e for e in entries if e["method"] == change["method"]]
    row.update(sent=len(entries), n429=by_status.get("429", 0), statuses=dict(sorted(by_status.items())))
    times = [e["time"] for e in mine]
    if len(times) > 1:
        row["spacing_ms"] = (times[-1] - times[0]) / (len(times) - 1) * 1000
    seen = {(e["path"], canonical(e["body"]) if e["body"] else "") for e in mine}
    done = collections.Counter(e["path"] for e in mine if e["status"] == change["ok"])
    problems = []
    if len(mine) != len(entries):
        problems.append(f"{len(entries) - len(mine)} requests other than {change['method']}")
    if seen != expected:
        problems.append(f"the {change['method']} requests received differ from the expected ones "
                        f"({len(seen - expected)} unexpected, {len(expected - seen)} missing)")
    if len(done) != n or any(v != 1 for v in done.values()):
        problems.append(f"{sum(done.values())} answers {change['ok']} for {len(done)} of {n} webhooks")
    state = emu.state()
    left = [w for w in state["webhooks"]]
    row["server_webhooks"] = len(left)
    if change["op"] == "delete" and left:
        problems.append(f"{len(left)} webhooks left on the emulator, expected none")
    if change["op"] == "update":
        wanted = {e["path"].rsplit("/", 1)[1]: json.loads(e["body"])["description"] for e in mine}
        wrong = [w["id"] for w in left if w.get("description") != wanted.get(w["id"])]
        if len(left) != n or wrong:
            problems.append(f"{len(left)} webhooks on the emulator, {len(wrong)} without the new description")
    if problems and not row["error"]:
        row["error"] = "; ".join(problems)
    return row


def change_expected(change, items):
    """The set of (path, canonical body) the emulator must receive for these JS items."""
    out = set()
    for line in items:
        item = json.loads(line)
        body = canonical(json.dumps(item["body"])) if "body" in item else ""
        out.add((f"/v2/webhooks/{item['id']}", body))
    return out


def scenario_change(emu, cfg, budget, tmp, label, log):
    """e and f: a bulk UPDATE or DELETE of n webhooks at the limit and latency of a, by the
    extension (one statement in the sqlite3 shell) and by the JS client's update() or delete()
    loop at each concurrency, interleaved per repetition. Before every run the webhooks are
    created anew (setup_records); only the UPDATE or DELETE is measured."""
    change = CHANGES[label]
    n = cfg["e"]
    runs = {"extension": [], **{f"js c={c}": [] for c in JS_CONCURRENCY}}
    for rep in range(cfg["reps"]):
        for client in runs:
            if not budget.allows(f"{label} {client} rep {rep + 1}"):
                continue
            db = Path(tmp) / f"{label}-{rep}.db"
            db.unlink(missing_ok=True)
            items, start = setup_records(emu, db, n, change)
            expected = change_expected(change, items)
            emu.configure(**KNOBS_A)
            if client == "extension":
                row = run_extension(emu, db, n, budget, create_actors=False, statement=change["sql"])
                left = harness.shell(".mode list\nSELECT status, count(*) FROM apify_webhooks"
                                     " GROUP BY status;\n", emu, db=db).lines
                row["outcomes"] = left
                wanted = [] if change["op"] == "delete" else [f"created|{n}"]
                if left != wanted and not row["error"]:
                    row["error"] = f"rows of apify_webhooks after the {change['verb']}: {left}"
            else:
                items_path = Path(tmp) / f"{label}-items.jsonl"
                items_path.write_text("\n".join(items) + "\n")
                row = run_js(emu, items_path, int(client.split("=")[1]), budget, op=change["op"])
            db.unlink(missing_ok=True)
            change_view(emu, row, n, change, expected, start)
            runs[client].append(row)
            log(f"  {label} rep {rep + 1} {client:<10} {describe(row)}")
    return runs


def scenario_startup(emu, cfg, budget, tmp, log):
    """b's fixed costs: the extension loaded and an INSERT of no rows; the JS client creating
    nothing. Gives the per-webhook CPU without start-up, next to the measured one."""
    empty = Path(tmp) / "bodies-0.jsonl"
    empty.write_text("")
    runs = {"extension": [], "js": []}
    for rep in range(cfg["reps"]):
        if not budget.allows(f"start-up rep {rep + 1}"):
            continue
        fresh(emu, KNOBS_FAST)
        db = Path(tmp) / f"startup-{rep}.db"
        runs["extension"].append(run_extension(emu, db, 0, budget))
        db.unlink(missing_ok=True)
        runs["js"].append(run_js(emu, empty, 1, budget))
    for client, rows in runs.items():
        if rows:
            log(f"  start-up {client:<10} cpu {med(rows, 'cpu'):.3f} s")
    return runs


def scenario_memory(emu, cfg, budget, tmp, log):
    """c: the sqlite3 shell's peak RSS for each row count, interleaved per repetition."""
    runs = {n: [] for n in cfg["c"]}
    for rep in range(cfg["reps"]):
        for n in cfg["c"]:
            if not budget.allows(f"c {n} rows rep {rep + 1}"):
                continue
            fresh(emu, KNOBS_FAST)
            db = Path(tmp) / f"mem-{n}-{rep}.db"
            row = run_extension(emu, db, n, budget)
            row["outcomes"] = extension_outcomes(emu, db, n)
            db.unlink(missing_ok=True)
            server_view(emu, row, n)
            runs[n].append(row)
            log(f"  c {n} rows rep {rep + 1}: VmHWM {row.get('hwm_kb', float('nan')) / 1024:.1f} MiB, "
                f"ru_maxrss {row['maxrss_kb'] / 1024:.1f} MiB (bench RSS {row['spawner_rss_kb'] / 1024:.1f}), "
                f"{describe(row)}")
    return runs


def scenario_rerun(emu, cfg, budget, tmp, log):
    """d: one INSERT of n rows, then the same INSERT again on the same database, reps times;
    each time the emulator's request count before and after."""
    n = cfg["d"]
    out = {"n": n, "first": None, "reruns": []}
    if not budget.allows("d first run"):
        return out
    fresh(emu, KNOBS_FAST)
    db = Path(tmp) / "rerun.db"
    first = run_extension(emu, db, n, budget)
    first["outcomes"] = extension_outcomes(emu, db, n)
    server_view(emu, first, n)
    out["first"] = first
    log(f"  d first run of {n} rows: {describe(first)}")
    for rep in range(cfg["reps"]):
        if not budget.allows(f"d rerun {rep + 1}"):
            continue
        before = counts(emu)["requests"]
        row = run_extension(emu, db, n, budget, create_actors=False)
        row["requests"] = counts(emu)["requests"] - before
        row["outcomes"] = extension_outcomes(emu, db, n)
        out["reruns"].append(row)
        log(f"  d rerun {rep + 1}: {row['requests']} requests, INSERT "
            f"{row.get('op_wall', float('nan')):.3f} s, process {row['proc_wall']:.3f} s")
    db.unlink(missing_ok=True)
    return out


def describe(row):
    parts = [f"wall {row.get('op_wall', float('nan')):.2f} s", f"cpu {row['cpu']:.2f} s"]
    if "posts" in row:
        parts.append(f"{row['posts']} POSTs, {row['n429']} x 429")
    elif "sent" in row:
        parts.append(f"{row['sent']} requests, {row['n429']} x 429")
    if row["error"]:
        parts.append("ERROR " + row["error"][:300])
    return ", ".join(parts)


def emulator_floor_ms(emu, count=6):
    """Median time of a cheap API request (GET /v2/webhooks?limit=1) on one keep-alive
    connection with TCP_NODELAY on the client side: the emulator's own per-request floor."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
    times = []
    try:
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", "/v2/webhooks?limit=1",
                         headers={"Authorization": f"Bearer {harness.TOKEN}"})
            conn.getresponse().read()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        conn.close()
    return times[0], statistics.median(times[1:])


# ---------------------------------------------------------------------------------------------
# Statistics and the report

def med(rows, key):
    values = [r[key] for r in rows if key in r and r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def spread(rows, key, fmt, unit=1):
    """' (min–max)' of a series, each value divided by unit first; '' for a single run."""
    values = [r[key] / unit for r in rows if key in r]
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}–{fmt.format(max(values))})"


def noisy(rows, key):
    values = [r[key] for r in rows if key in r]
    if len(values) < 2 or statistics.mean(values) == 0:
        return False
    return statistics.pstdev(values) / statistics.mean(values) > 0.10


def all_ok(rows):
    return bool(rows) and all(not r["error"] for r in rows)


def verdict(ok):
    return "PASS" if ok else "MISS"


def versions(emu):
    def command(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"
    agent = harness.shell(".mode list\nSELECT apify_dry_run('{\"requestUrl\":\"https://e.com/h\","
                          "\"eventTypes\":[\"TEST\"],\"condition\":{\"actorId\":\"x\"}}')"
                          " ->> '$.headers.User-Agent';\n", emu).out.strip()
    found = re.search(r"SQLite ([^;]+); libcurl ([^)]+)", agent)
    try:
        client = json.loads(APIFY_CLIENT_PKG.read_text())["version"]
    except (OSError, ValueError):
        client = "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    head = command(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = command(["git", "-C", str(ROOT), "status", "--porcelain", "--", "ext"])
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "mem": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB",
        "agent": agent,
        "sqlite_lib": found.group(1) if found else "?",
        "libcurl": found.group(2) if found else "?",
        "sqlite_shell": command([harness.SQLITE3, "--version"]).split(" ")[0],
        "node": command(["node", "--version"]),
        "apify_client": client,
        "python": platform.python_version(),
        "tree": head + (" (ext/ modified, not committed)" if dirty else ""),
    }


def fmt_s(x, digits=2):
    return "n/a" if x != x else f"{x:.{digits}f}"


def change_rows(runs, n):
    """e and f: per client (rows, wall, requests, 429s, 429 share, rate / limit), medians."""
    out = []
    for client, rows in runs.items():
        share = [r["n429"] / r["sent"] for r in rows if r.get("sent")]
        timed = [r for r in rows if r.get("op_wall")]
        for r in timed:
            r["rate"] = n / r["op_wall"] / LIMIT
        out.append((client, rows, med(rows, "op_wall"), med(rows, "sent"), med(rows, "n429"),
                    statistics.median(share) if share else float("nan"),
                    statistics.median([r["rate"] for r in timed]) if timed else float("nan")))
    return out


def report(cfg, info, floor, a, changes, b, startup, c, d, budget, other_load, emulator_script):
    """The Markdown report, and the PASS/MISS lines (a list) for the summary."""
    reps = cfg["reps"]
    md = []
    w = md.append
    targets = []

    # -- a --------------------------------------------------------------------------------------
    na = cfg["a"]
    a_rows = []
    ext_a = a["extension"]
    ext_a_wall = med(ext_a, "op_wall")
    for client, rows in a.items():
        wall = med(rows, "op_wall")
        posts, n429 = med(rows, "posts"), med(rows, "n429")
        share = [r["n429"] / r["posts"] for r in rows if r.get("posts")]
        rate = [na / r["op_wall"] / LIMIT for r in rows if r.get("op_wall")]
        for r, value in zip([r for r in rows if r.get("op_wall")], rate):
            r["rate"] = value
        a_rows.append((client, rows, wall, posts, n429,
                       statistics.median(share) if share else float("nan"),
                       statistics.median(rate) if rate else float("nan")))
    ext_rate = a_rows[0][6]
    ext_share = a_rows[0][5]
    a_ok = all_ok(ext_a) and ext_rate >= 0.95 and ext_share < 0.01
    targets.append(("a", f"extension at {ext_rate:.1%} of the limit, {ext_share:.2%} of requests "
                    f"answered 429 (target: ≥ 95%, < 1%)", verdict(a_ok)))

    # -- e, f -----------------------------------------------------------------------------------
    ne = cfg["e"]
    change_tables = {}
    for label, runs in changes.items():
        table = change_rows(runs, ne)
        change_tables[label] = table
        _, ext_rows, ext_wall, _, _, share, rate = table[0]
        js = [t for t in table[1:] if t[6] == t[6] and all_ok(t[1])]
        best = max(js, key=lambda t: t[6]) if js else None
        ok = all_ok(ext_rows) and rate >= 0.95 and share < 0.01
        method = CHANGES[label]["method"]
        versus = (f"; the official client's best setting, {best[0]}, at {best[6]:.1%} with "
                  f"{best[5]:.2%} answered 429, its wall {best[2] / ext_wall:.2f}× the extension's"
                  if best else "; no JS run completed without errors")
        targets.append((label, f"bulk {CHANGES[label]['verb']} ({method}) of {ne} webhooks: extension "
                        f"at {rate:.1%} of the limit, {share:.2%} of requests answered 429 (target: "
                        f"≥ 95%, < 1%){versus}", verdict(ok)))

    # -- b --------------------------------------------------------------------------------------
    nb = cfg["b"]
    b_cpu = {client: med(rows, "cpu") / nb for client, rows in b.items()}
    js_b = {k: v for k, v in b_cpu.items() if k != "extension" and v == v}
    best_js = min(js_b, key=js_b.get) if js_b else None
    ext_cpu = b_cpu["extension"]
    b_ratio = ext_cpu / js_b[best_js] if best_js else float("nan")
    b_ok = all_ok(b["extension"]) and b_ratio <= 0.25
    targets.append(("b", f"extension CPU per webhook {ext_cpu * 1e3:.3f} ms = {b_ratio:.2f}× the "
                    f"official client's best setting ({best_js}, {js_b.get(best_js, float('nan')) * 1e3:.3f} ms)"
                    " (target: ≤ 0.25×)", verdict(b_ok)))

    # -- c --------------------------------------------------------------------------------------
    small, big = cfg["c"]
    rss_small, rss_big = med(c[small], "hwm_kb"), med(c[big], "hwm_kb")
    c_growth = rss_big / rss_small - 1 if rss_small == rss_small and rss_small else float("nan")
    c_ok = all_ok(c[small]) and all_ok(c[big]) and abs(c_growth) <= 0.10
    targets.append(("c", f"peak RSS (VmHWM) {rss_small / 1024:.1f} MiB for {small:,} rows, "
                    f"{rss_big / 1024:.1f} MiB for {big:,} rows ({c_growth:+.1%}) (target: within 10%)",
                    verdict(c_ok)))

    # -- d --------------------------------------------------------------------------------------
    reruns = d["reruns"]
    d_requests = sum(r["requests"] for r in reruns) if reruns else float("nan")
    d_wall = med(reruns, "op_wall")
    d_ok = (bool(reruns) and d["first"] is not None and not d["first"]["error"]
            and all(not r["error"] for r in reruns) and d_requests == 0 and d_wall <= 0.5)
    targets.append(("d", f"re-running the completed {d['n']:,}-row INSERT: {d_requests} requests, "
                    f"INSERT {fmt_s(d_wall, 3)} s (target: no request, well under a second, taken as ≤ 0.5 s)",
                    verdict(d_ok)))

    # -- the document ---------------------------------------------------------------------------
    w("# apify-sqlite benchmark: the extension vs the official JavaScript client")
    w("")
    w(f"Written by `make bench` (tests/bench/bench.py) on {info['date']}, tree {info['tree']}. "
      f"Every number is the median of {reps} run{'s' if reps > 1 else ''} "
      "(min–max in parentheses), measured in one bench run against the project's emulator "
      f"({emulator_script}) on 127.0.0.1.")
    w("")
    w("## Targets")
    w("")
    if cfg is QUICK:
        w("(--quick smoke run: sizes are far below the targets' own, so a verdict here says little; "
          "the fixed costs of a, e and f, the first request alone and the last answer, weigh more in "
          "a short run.)")
        w("")
    w("| | measured | result |")
    w("|---|---|---|")
    for name, text, v in targets:
        w(f"| {name} | {text} | **{v}** |")
    w("")
    w("## Machine")
    w("")
    w(f"- {info['nproc']} CPUs available ({info['cpu']}), {info['mem']} RAM, {info['kernel']}")
    w(f"- SQLite {info['sqlite_lib']} (sqlite3 shell {info['sqlite_shell']}), libcurl {info['libcurl']}"
      f" — as loaded, from the extension's User-Agent `{info['agent']}`")
    w(f"- Module {info['build_file']}: {info['build']}; every run loaded a copy taken when the bench "
      "started" + ("." if info["build"] == info["build_end"] else
                   f" ({info['build_file']} was rebuilt during the bench: now {info['build_end']})."))
    w(f"- Node {info['node']}, apify-client {info['apify_client']}; the emulator runs on Python "
      f"{info['python']}")
    w(f"- Load average at start / end: {info['load_start']} / {info['load_end']}. CPU used by "
      f"other processes during the bench: {other_load[0]:.0f} CPU-seconds over {other_load[1]:.0f} s "
      f"({other_load[0] / max(other_load[1], 1):.2f} cores on average)"
      + (" — the machine was shared; expect noise." if other_load[0] / max(other_load[1], 1) > 0.2
         else "."))
    w(f"- Emulator per-request floor (GET on one keep-alive connection, no injected latency): "
      f"{floor[1]:.1f} ms (first request on a new connection: {floor[0]:.1f} ms).")
    w("")
    w("## Method")
    w("")
    w(f"- One emulator (tests/emulator.py through tests/harness.py, max_webhooks 1,000,000) for the "
      "whole run; before every measured run it is reset (webhooks and log forgotten) and its knobs "
      "set for the scenario. Runs of the different clients are interleaved within each repetition.")
    w("- Extension: the real `sqlite3` shell, one fresh temporary database file per run, script on "
      "stdin: `.load`, create and fill `actors(actor_id, name)`, `.timer on`, "
      "`INSERT INTO apify_webhooks(request_url, event_types, actor_id) SELECT 'https://example.com/hook/' "
      f"|| name, '{EVENTS}', actor_id FROM actors`. Configuration: the defaults (concurrency 16, "
      "rate_limit 0 = learn from X-RateLimit-Limit, max_attempts 8); nothing is tuned per scenario.")
    w("- Official client: tests/bench/js_client.mjs (Node, npm apify-client, its defaults: 8 retries, "
      "500 ms first backoff) calls `client.webhooks().create(body)` for every body with 1, 8 or 32 "
      "calls in flight. The bodies are the extension's own, from `apify_dry_run` on the same actors "
      "table, idempotencyKey included; every run checks on the emulator log that the set of bodies "
      "received is exactly that set, and that the emulator ends with exactly N webhooks.")
    w("- **wall** is the bulk operation alone: the INSERT statement's `Run Time: real` for the "
      "extension, `performance.now()` around the create loop for the client. **process** is the "
      "whole child process (start-up included). **CPU** is ru_utime + ru_stime of the client process "
      "alone, from `os.wait4` on it (sqlite3 shell or node; neither has children). **Peak RSS** is "
      "the process's own VmHWM from /proc/self/status, read by the process itself at the end of "
      "its work (the shell script ends with `.import --ascii /proc/self/status` into a temp table; "
      "js_client.mjs reads the file). ru_maxrss from `os.wait4` is shown too, but on Linux it cannot go below "
      "what the forking parent (this Python bench) had resident when it forked the child, since "
      "exec carries the old address space's high-water mark over; the column 'bench RSS at fork' "
      "shows that floor. **429s** and **POSTs** come from the emulator's own counts (`/_emulator/counts`, or "
      "`/_emulator/state` where the emulator has no counts endpoint). "
      "**emulator CPU** is the emulator process's CPU during the run (/proc/PID/stat).")
    w(f"- a: emulator latency_ms {LATENCY_MS}, rate_limit {LIMIT} (sliding 1 s window per user, "
      f"X-RateLimit-Limit: {LIMIT}); rate = N / wall / {LIMIT}.")
    w(f"- e, f: the same latency and limit as a (the emulator limits every request, not only "
      f"POSTs). Before every run, with no latency and no limit, a fresh emulator and a fresh "
      f"database get N webhooks from the extension's INSERT (as in a; not measured), and the "
      "limit's window is empty when the run starts. Extension: a new sqlite3 process on that "
      f"database runs `{UPDATE_SQL.strip()}` (e: one PUT /v2/webhooks/{{id}} per row, body "
      f"`{{\"description\": ...}}`) or `{DELETE_SQL.strip()}` (f: one DELETE /v2/webhooks/{{id}} "
      "per row), timed by `.timer on`. Official client: js_client.mjs calls "
      "`client.webhook(id).update({description})` or `client.webhook(id).delete()` for the same "
      "webhooks with the same bodies (read from the records), with 1, 8 or 32 calls in flight, "
      "timed around the loop. Every run checks on the emulator's log that it received only those "
      "requests, that each webhook was answered 200 (PUT) or 204 (DELETE) exactly once, and that "
      "the emulator ends with every webhook holding the new description (e) or with none (f); "
      "the extension's table must show every row created (e) or no row (f).")
    w(f"- b, c, d: no added latency, no rate limit, and X-RateLimit-Limit {HEADER_UNLIMITED} so that "
      f"neither client is throttled (the extension learns {HEADER_UNLIMITED}/s and paces just under it, "
      "far above what the emulator serves).")
    w("- c: the extension alone, same script, two row counts. d: one INSERT of N rows, then the same "
      "INSERT run again (same database, new sqlite3 process, actors already there) "
      f"{reps} time{'s' if reps > 1 else ''}; requests = the emulator's request count after minus before.")
    w("")

    w(f"## a. {na} webhooks at {LIMIT} requests/s and {LATENCY_MS} ms latency")
    w("")
    w("| client | wall s | rate / limit | POSTs | 429s | 429 share | POST spacing ms | process s | CPU s "
      "| wall vs extension |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for client, rows, wall, posts, n429, share, rate in a_rows:
        w(f"| {client} | {fmt_s(wall)}{spread(rows, 'op_wall', '{:.2f}')} | {rate:.1%}"
          f"{spread(rows, 'rate', '{:.1%}')} | {posts:.0f} | {n429:.0f}{spread(rows, 'n429', '{:.0f}')} "
          f"| {share:.2%} | {fmt_s(med(rows, 'spacing_ms'))} | {fmt_s(med(rows, 'proc_wall'))} | "
          f"{fmt_s(med(rows, 'cpu'))} | {fmt_s(wall / ext_a_wall)}× |")
    w("")
    w(f"POST spacing: mean gap between POST arrivals at the emulator, first to last (retries "
      f"included). Evenly spaced at the limit it would be {1000 / LIMIT:.2f} ms; at 95% of it "
      f"{1000 / LIMIT / 0.95:.2f} ms.")
    w("")

    for label, table in change_tables.items():
        change = CHANGES[label]
        ext_wall = table[0][2]
        w(f"## {label}. Bulk {change['verb']} of {ne} webhooks at {LIMIT} requests/s and "
          f"{LATENCY_MS} ms latency")
        w("")
        w(f"| client | wall s | rate / limit | requests | 429s | 429 share | {change['method']} "
          "spacing ms | process s | CPU s | wall vs extension |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for client, rows, wall, sent, n429, share, rate in table:
            w(f"| {client} | {fmt_s(wall)}{spread(rows, 'op_wall', '{:.2f}')} | {rate:.1%}"
              f"{spread(rows, 'rate', '{:.1%}')} | {sent:.0f} | {n429:.0f}{spread(rows, 'n429', '{:.0f}')} "
              f"| {share:.2%} | {fmt_s(med(rows, 'spacing_ms'))} | {fmt_s(med(rows, 'proc_wall'))} | "
              f"{fmt_s(med(rows, 'cpu'))} | {fmt_s(wall / ext_wall)}× |")
        w("")
    if change_tables:
        w(f"Requests: every request the emulator received during the run, retries included "
          f"(each is a PUT or a DELETE; the run fails otherwise). Spacing: mean gap between "
          f"their arrivals, first to last; evenly spaced at the limit it would be "
          f"{1000 / LIMIT:.2f} ms.")
        w("")

    w(f"## b. {nb:,} webhooks, no latency, no limit: client CPU")
    w("")
    w("| client | CPU s | CPU ms / webhook | extension CPU vs this | op-only CPU ms / webhook | wall s "
      "| webhooks/s | process s | peak RSS MiB | emulator CPU s |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for client, rows in b.items():
        cpu = med(rows, "cpu")
        wall = med(rows, "op_wall")
        w(f"| {client}{' (best JS)' if client == best_js else ''} | {fmt_s(cpu)}{spread(rows, 'cpu', '{:.2f}')} "
          f"| {cpu / nb * 1e3:.3f} | {ext_cpu / (cpu / nb):.2f}× | {med(rows, 'op_cpu') / nb * 1e3:.3f} "
          f"| {fmt_s(wall)}{spread(rows, 'op_wall', '{:.2f}')} | {nb / wall:.0f} | "
          f"{fmt_s(med(rows, 'proc_wall'))} | {med(rows, 'hwm_kb') / 1024:.1f} | {fmt_s(med(rows, 'emu_cpu'))} |")
    w("")
    if startup["extension"] and startup["js"]:
        s_ext, s_js = med(startup["extension"], "cpu"), med(startup["js"], "cpu")
        w(f"Start-up alone (same processes with 0 webhooks): sqlite3 + `.load` {s_ext:.3f} CPU s, "
          f"node + apify-client {s_js:.3f} CPU s. Without it, per webhook: extension "
          f"{(med(b['extension'], 'cpu') - s_ext) / nb * 1e3:.3f} ms"
          + "".join(f", {k} {(med(v, 'cpu') - s_js) / nb * 1e3:.3f} ms"
                    for k, v in b.items() if k != "extension")
          + ". The PASS/MISS line uses the whole-process CPU, start-up included, as specified.")
        w("")

    w(f"## c. Peak memory of the sqlite3 shell")
    w("")
    w("| rows | peak RSS (VmHWM) MiB | ru_maxrss MiB | bench RSS at fork MiB | process s | CPU s | wall s "
      "| emulator CPU s |")
    w("|---|---|---|---|---|---|---|---|")
    for n, rows in c.items():
        w(f"| {n:,} | {med(rows, 'hwm_kb') / 1024:.2f}{spread(rows, 'hwm_kb', '{:.2f}', 1024)} | "
          f"{med(rows, 'maxrss_kb') / 1024:.1f}{spread(rows, 'maxrss_kb', '{:.1f}', 1024)} | "
          f"{med(rows, 'spawner_rss_kb') / 1024:.1f} | "
          f"{fmt_s(med(rows, 'proc_wall'))} | {fmt_s(med(rows, 'cpu'))} | {fmt_s(med(rows, 'op_wall'))} "
          f"| {fmt_s(med(rows, 'emu_cpu'))} |")
    w("")
    w(f"{big:,} rows vs {small:,} rows: {c_growth:+.1%} (VmHWM).")
    w("")

    w(f"## d. Re-running a completed {d['n']:,}-row INSERT")
    w("")
    if d["first"]:
        f = d["first"]
        w(f"First run: {f.get('server_webhooks', 0):,} webhooks created in {fmt_s(f.get('op_wall', float('nan')))} s"
          f" ({f.get('posts', 0):,} POSTs; extension CPU {fmt_s(f['cpu'])} s, emulator CPU "
          f"{fmt_s(f['emu_cpu'])} s).")
        w("")
    w("| re-run | requests received | INSERT wall s | process s | CPU s |")
    w("|---|---|---|---|---|")
    for i, r in enumerate(reruns, 1):
        w(f"| {i} | {r['requests']} | {fmt_s(r.get('op_wall', float('nan')), 3)} | {fmt_s(r['proc_wall'], 3)} "
          f"| {fmt_s(r['cpu'], 3)} |")
    if reruns:
        w(f"| median | {d_requests} in all | {fmt_s(d_wall, 3)} | {fmt_s(med(reruns, 'proc_wall'), 3)} "
          f"| {fmt_s(med(reruns, 'cpu'), 3)} |")
    w("")

    notes = []
    for name, rows in [*(("a " + k, v) for k, v in a.items()),
                       *((f"{label} {k}", v) for label, runs in changes.items() for k, v in runs.items()),
                       *(("b " + k, v) for k, v in b.items())]:
        errors = [r["error"] for r in rows if r["error"]]
        if errors:
            notes.append(f"{name}: {len(errors)} run(s) with errors, e.g. {errors[0][:300]}")
        if noisy(rows, "op_wall"):
            notes.append(f"{name}: wall times vary by more than 10% between runs.")
    if noisy(reruns, "op_wall"):
        notes.append("d: re-run times vary by more than 10% between runs (the re-run is CPU-bound, "
                     "so it slows down with the machine's other load).")
    for n, rows in c.items():
        for r in rows:
            if r["error"]:
                notes.append(f"c {n} rows: {r['error'][:300]}")
    timed = [*((f"b {k}", r) for k, v in b.items() for r in v),
             *((f"c {n:,} rows", r) for n, v in c.items() for r in v),
             *([(f"d first run", d["first"])] if d["first"] else [])]
    busy = [(name, r["emu_cpu"] / r["op_wall"]) for name, r in timed
            if r.get("op_wall") and r["emu_cpu"] == r["emu_cpu"]]
    busy = [kv for kv in busy if kv[1] > 0.7]
    if busy:
        notes.append("The emulator (one Python process) was busy for more than 70% of the wall time "
                     "in: " + ", ".join(sorted({f"{name} (up to {max(x for n, x in busy if n == name):.0%})"
                                                for name, _ in busy}))
                     + ". There the emulator, not the client, sets the wall time; client CPU and "
                     "memory are not affected.")
    if floor[1] > 20:
        notes.append(
            f"The emulator answers each request on a reused keep-alive connection about "
            f"{floor[1]:.0f} ms late, even with no injected latency (the first request on a new "
            "connection: {:.1f} ms). This looks like Nagle's algorithm meeting delayed ACKs: the "
            "response headers and body leave in two send() calls on a socket without TCP_NODELAY. "
            "It is a floor under every request of both clients, so throughput in b is about "
            "(requests in flight) / floor, and a's latency is really "
            f"{LATENCY_MS} ms + floor. CPU (b) and memory (c) are not throttled by it, but the "
            "wall times are the emulator's, not the clients'.".format(floor[0]))
    if budget.skipped:
        notes.append("Not run, the time budget was spent: " + ", ".join(budget.skipped))
    if notes:
        w("## Notes")
        w("")
        for note in notes:
            w(f"- {note}")
        w("")
    w(f"Bench time: {budget.elapsed() / 60:.1f} min.")
    return "\n".join(md) + "\n", targets


# ---------------------------------------------------------------------------------------------

def ensure_js_client(log):
    if APIFY_CLIENT_PKG.exists():
        return
    if not shutil.which("npm"):
        raise SystemExit("bench: npm is missing (Debian: apt-get install nodejs npm)")
    log("installing apify-client in tests/js (npm ci)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=str(JS_DIR), check=True,
                   timeout=600)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small smoke run, 1 repetition, report on stdout only")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds after which no new run starts (default 1200, quick 300)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the report (default {RESULTS.relative_to(ROOT)} for a "
                             "full run with the project's emulator; --quick writes none)")
    parser.add_argument("--emulator-script", type=Path, default=None,
                        help="run another emulator script (to try a fix); the report is then "
                             "written only where --out says")
    args = parser.parse_args(argv)
    if os.environ.get("BENCH_QUICK", "") not in ("", "0"):
        args.quick = True     # BENCH_QUICK=1 make bench: the smoke run through make
    cfg = QUICK if args.quick else FULL
    budget = Budget(args.budget or (300 if args.quick else 1200))
    out_path = args.out
    if out_path is None and not args.quick and args.emulator_script is None:
        out_path = RESULTS
    emulator_script = "tests/emulator.py"
    if args.emulator_script:
        harness.EMULATOR_SCRIPT = args.emulator_script.resolve()
        emulator_script = str(args.emulator_script)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    for tool in (harness.SQLITE3, "node"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing")
    ext_file = Path(str(harness.EXT) + (".dylib" if sys.platform == "darwin" else ".so"))
    if not ext_file.exists():
        raise SystemExit(f"bench: {ext_file} is missing; run make first")
    ensure_js_client(log)

    busy0, own0, wall0 = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="apify-bench-") as tmp:
        # Every run loads one snapshot of the module, taken now: a rebuild of build/ while the
        # bench runs (make test elsewhere) cannot mix two builds into one report.
        snapshot = Path(tmp) / "module" / ext_file.name
        snapshot.parent.mkdir()
        shutil.copy2(ext_file, snapshot)
        harness.EXT = snapshot.with_suffix("")
        build_start = fingerprint(snapshot)
        with harness.Emulator(max_webhooks=1000000) as emu:
            results = run_all(emu, cfg, budget, tmp, args, log)
    a, changes, b, startup, c, d, info, floor, emu_cpu_total = results
    # The emulator has been reaped now: its CPU is in own_cpu_seconds() too.
    info["load_end"], info["load_start"] = loadavg(), load_start
    info["build"], info["build_end"] = build_start, fingerprint(ext_file)
    info["build_file"] = os.path.relpath(ext_file, ROOT)
    wall = time.monotonic() - wall0
    other = max(0.0, (machine_busy_seconds() - busy0) - (own_cpu_seconds() - own0))
    log(f"(emulator used {emu_cpu_total:.0f} CPU s in all)")

    text, targets = report(cfg, info, floor, a, changes, b, startup, c, d, budget,
                           (other, wall), emulator_script)
    print(text)
    if out_path:
        out_path.write_text(text)
        log(f"bench: wrote {out_path}")
    for name, line, v in targets:
        log(f"{v} {name}: {line}")
    if info["build"] != info["build_end"]:
        log(f"bench: note: {ext_file} was rebuilt during the run; every run used the copy taken "
            "at the start")
    return 0


def run_all(emu, cfg, budget, tmp, args, log):
    """The four scenarios against one emulator. Returns everything report() needs."""
    emu_pid = emu.process.pid
    info = versions(emu)
    floor = emulator_floor_ms(emu)
    log(f"bench: {'quick' if args.quick else 'full'} run, {cfg['reps']} repetition(s), "
        f"emulator {emu.base_url} (per-request floor {floor[1]:.1f} ms)")
    log(f"a. {cfg['a']} webhooks, latency {LATENCY_MS} ms, limit {LIMIT}/s")
    a = scenario_throughput(emu, cfg, budget, tmp, "a", cfg["a"], KNOBS_A, log)
    changes = {}
    for label, change in CHANGES.items():
        log(f"{label}. bulk {change['verb']} of {cfg['e']} webhooks, latency {LATENCY_MS} ms, "
            f"limit {LIMIT}/s")
        changes[label] = scenario_change(emu, cfg, budget, tmp, label, log)
    log(f"b. {cfg['b']} webhooks, no latency, no limit")
    b = scenario_throughput(emu, cfg, budget, tmp, "b", cfg["b"], KNOBS_FAST, log)
    startup = scenario_startup(emu, cfg, budget, tmp, log)
    log(f"c. peak memory, {cfg['c'][0]} and {cfg['c'][1]} rows")
    c = scenario_memory(emu, cfg, budget, tmp, log)
    log(f"d. re-running a completed {cfg['d']}-row INSERT")
    d = scenario_rerun(emu, cfg, budget, tmp, log)
    emu_cpu_total = proc_cpu(emu_pid)
    return a, changes, b, startup, c, d, info, floor, emu_cpu_total


if __name__ == "__main__":
    sys.exit(main())
