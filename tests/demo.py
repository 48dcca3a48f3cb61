#!/usr/bin/env python3
"""`make demo`: the story of sql/demo.sql, told by the real sqlite3 shell against the local
Apify emulator. Nothing here ever reaches api.apify.com.

    /usr/bin/python3 tests/demo.py            # from anywhere; `make demo` builds first

What it does:
  1. starts tests/emulator.py on a free 127.0.0.1 port (20 ms of latency on every request, so
     it feels like a network; a webhook limit high enough never to get in the way);
  2. runs `sqlite3 build/demo.db` from the repository root, with APIFY_API_BASE_URL and
     APIFY_TOKEN pointing at the emulator (whatever they were before), and feeds it
     sql/demo.sql on standard input, one step (a `.print '== ...'` header) at a time;
  3. after each step, says how many requests the emulator received during it, which the shell
     itself cannot see;
  4. stops the emulator. The database stays in build/demo.db for you to look at.

The story's end needs two things the shell cannot do, so this script does them:
  - a receiver: a tiny HTTP server on a free 127.0.0.1 port standing for your endpoints (any
    path answers 200 "ok", except paths under /down/, which answer 500). Before the shell
    starts, build/demo.db gets the table `endpoints` naming it (the rows sql/demo.sql would
    otherwise insert with INSERT OR IGNORE, pointing at example.com), so the webhooks of step
    13 post to it; what it receives (headers and body) is shown after each run and step;
  - the runs: before step 16, one simulated run of each actor of `endpoints` succeeds
    (POST /_emulator/events), which the emulator delivers to the webhooks' endpoints.

The shell writes to a pseudo-terminal, as it would in your terminal: its output and its error
messages arrive in the order they happen, and the progress line of a bulk insert is shown
(its last state only). Standard input stays a pipe, so the shell prints no prompts, and its
error messages say "near line N" with N a line of sql/demo.sql.

Exit status: 0 when the whole story ran; 1 (with the reason on stderr) otherwise.
"""

import http.server
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import EXT, SQLITE3, Emulator  # noqa: E402

DEMO_SQL = ROOT / "sql" / "demo.sql"
DEMO_DB = ROOT / "build" / "demo.db"
HEADER = "== "                    # the output of a step's `.print '== N. ...'` line
STEP_TIMEOUT = 60.0               # seconds one step may take before the demo gives up
EMULATOR = {"latency_ms": 20, "max_webhooks": 100000}
# The receiver's endpoints, by actor (the rows of the endpoints table of sql/demo.sql): the
# first answers 200, the second 500.
ENDPOINTS = [("XwOADhUViWuyvwYmu", "/hooks/website-content-crawler"),
             ("2GuX9KZTANhv2PMXo", "/down/linkedin-jobs-monitor")]
RUNS_STEP = "== 16. "         # the runs happen before this step is sent
RUN_IDS = ["RunWccDemo0000001", "RunLjmDemo0000001"]
# Headers the transport adds to a delivery; the rest is what the platform sends.
TRANSPORT_HEADERS = ("host", "content-length")


def steps(text):
    """Split the script into (header line, body lines) steps. The lines before the first
    header come first with header None."""
    out, header, body = [], None, []
    for line in text.splitlines(keepends=True):
        if line.startswith(".print '" + HEADER):
            out.append((header, body))
            header, body = line, []
        else:
            body.append(line)
    out.append((header, body))
    return out


class Terminal:
    """sqlite3 with stdin a pipe and stdout/stderr a pseudo-terminal; lines as the screen
    would show them."""

    def __init__(self, argv, env, cwd):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=slave, stderr=slave,
                                     env=env, cwd=cwd, close_fds=True)
        os.close(slave)
        self.pending = b""
        self.eof = False

    def send(self, text):
        self.proc.stdin.write(text.encode("utf-8"))
        self.proc.stdin.flush()

    def close_input(self):
        self.proc.stdin.close()

    def lines(self, deadline):
        """Yield each complete output line as shown on a screen, until EOF or the deadline."""
        while True:
            while b"\n" in self.pending:
                raw, self.pending = self.pending.split(b"\n", 1)
                yield screen_line(raw.decode("utf-8", "replace"))
            if self.eof:
                if self.pending:
                    yield screen_line(self.pending.decode("utf-8", "replace"))
                    self.pending = b""
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:       # Linux: EIO once the shell has exited
                    chunk = b""
                if chunk:
                    self.pending += chunk
                else:
                    self.eof = True

    def finish(self, timeout=10.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=timeout)
        finally:
            os.close(self.master)


class Receiver:
    """Your endpoints, played by a tiny http.server on a free 127.0.0.1 port: a POST to a path
    under /down/ answers 500, any other 200. Keeps every request it receives."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                status = 500 if self.path.startswith("/down/") else 200
                answer = b"receiver is down" if status == 500 else b"ok"
                with receiver.lock:
                    receiver.received.append((self.path, list(self.headers.items()), body,
                                              status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def take(self):
        """The requests received since the last call."""
        with self.lock:
            out, self.received = self.received, []
        return out


def prepare_database(receiver):
    """A fresh build/demo.db whose endpoints table names the receiver."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(DEMO_DB) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(str(DEMO_DB))
    try:
        with db:
            db.execute("CREATE TABLE endpoints(actor_id TEXT PRIMARY KEY, url TEXT NOT NULL)")
            db.executemany("INSERT INTO endpoints(actor_id, url) VALUES (?, ?)",
                           [(actor, receiver.url + path) for actor, path in ENDPOINTS])
    finally:
        db.close()


def request_kind(entry):
    """"PUT /v2/webhooks/{id}" for a log entry of PUT /v2/webhooks/AbC..."""
    path = re.sub(r"^/v2/webhooks/[^/]+", "/v2/webhooks/{id}", entry["path"])
    return f"{entry['method']} {path}"


def screen_line(text):
    """What a terminal shows for one line: carriage returns rewrite it (the progress line),
    so keep what was written last."""
    text = text.rstrip("\r")
    if "\r" in text:
        text = text.rsplit("\r", 1)[1]
    return text.rstrip()


def sample_run(actor, run_id):
    """The run object of a simulated run (the `resource` of its event)."""
    return {"id": run_id, "actId": actor, "status": "SUCCEEDED",
            "startedAt": "2026-01-01T12:00:00.000Z", "finishedAt": "2026-01-01T12:03:00.000Z",
            "defaultDatasetId": "DatasetDemo000001", "defaultKeyValueStoreId": "KvStoreDemo000001",
            "defaultRequestQueueId": "RqDemo00000000001"}


def plural(n, one, many):
    return f"{n} {one if n == 1 else many}"


def say(text=""):
    print(text, flush=True)


def fail(message):
    print(f"demo: {message}", file=sys.stderr, flush=True)
    return 1


def main():
    if not Path(str(EXT) + ".so").exists() and not Path(str(EXT) + ".dylib").exists():
        return fail("build/apify.so is missing: run `make demo` (it builds first) or `make`")
    if shutil.which(SQLITE3) is None:
        return fail("the sqlite3 shell is not installed (Debian: apt-get install sqlite3)")
    version = subprocess.run([SQLITE3, "--version"], capture_output=True, text=True).stdout.split()
    DEMO_DB.parent.mkdir(exist_ok=True)

    with Emulator(**EMULATOR) as emu, Receiver() as receiver:
        prepare_database(receiver)
        say(f"apify-sqlite demo: sql/demo.sql in the sqlite3 shell "
            f"({version[0] if version else 'unknown version'}),")
        say(f"against the local Apify emulator at {emu.base_url} (tests/emulator.py, 20 ms latency).")
        say("APIFY_API_BASE_URL and APIFY_TOKEN point at the emulator; nothing reaches api.apify.com.")
        say(f"Your endpoints are a receiver at {receiver.url} (tests/demo.py).")
        say()
        term = Terminal([SQLITE3, str(DEMO_DB.relative_to(ROOT))], emu.env(), str(ROOT))
        seen = 0                      # log entries already reported
        totals = {}                   # request kind -> count, in the order first seen

        def show_received():
            for path, headers, body, status in receiver.take():
                say(f"   [receiver: POST {path}, answered {status}; what arrived:]")
                for name, value in headers:
                    if name.lower() not in TRANSPORT_HEADERS:
                        say(f"   |  {name}: {value}")
                say(f"   |  {body.decode('utf-8', 'replace')}")

        def report():
            nonlocal seen
            log = emu.log()
            step = {}
            for entry in log[seen:]:
                kind = request_kind(entry)
                step[kind] = step.get(kind, 0) + 1
                totals[kind] = totals.get(kind, 0) + 1
            seen = len(log)
            show_received()
            posts = step.pop("POST /v2/webhooks", 0)
            others = "".join(f"{n} {kind} in this step; " for kind, n in step.items())
            say(f"   [emulator: {posts} POST /v2/webhooks in this step,"
                f" {totals.get('POST /v2/webhooks', 0)} in all; {others}"
                f"{plural(len(emu.webhooks()), 'webhook exists', 'webhooks exist')}]")

        def runs():
            """One simulated successful run of each actor of the endpoints table."""
            for (actor, _), run_id in zip(ENDPOINTS, RUN_IDS):
                dispatches = emu.event("ACTOR.RUN.SUCCEEDED",
                                       {"actorId": actor, "actorRunId": run_id},
                                       resource=sample_run(actor, run_id))
                say(f"   [emulator: a run of {actor} succeeded (POST /_emulator/events):"
                    f" {plural(len(dispatches), 'dispatch', 'dispatches')}]")
                show_received()

        story = steps(DEMO_SQL.read_text(encoding="utf-8"))
        try:
            for i, (header, body) in enumerate(story):
                last = i == len(story) - 1
                # The shell has printed this step's header and waits: the runs happen now,
                # before the step's SQL reads what they left.
                if header is not None and header.startswith(".print '" + RUNS_STEP):
                    runs()
                # Send this step and the next header; the next header's output marks the end
                # of this step, so no line is added to the script and line numbers stay true.
                term.send("".join(body) + ("" if last else story[i + 1][0]))
                if last:
                    term.close_input()
                deadline = time.monotonic() + STEP_TIMEOUT
                blanks = 0            # blank lines are held until a line follows them
                for line in term.lines(deadline):
                    if not last and line.startswith(HEADER):
                        if header is not None:
                            report()
                            say()
                        say(line)
                        break
                    if not line:
                        blanks += 1
                        continue
                    for _ in range(blanks if header is not None else 0):
                        say()
                    blanks = 0
                    say(line)
                else:
                    if not last:
                        return fail(f"the shell stopped before step {story[i + 1][0].strip()}")
            report()
        except TimeoutError:
            term.proc.kill()
            return fail(f"a step took more than {STEP_TIMEOUT:.0f} s; the emulator's log:\n"
                        + emu.stderr_text()[-2000:])
        finally:
            rc = term.finish()
        if rc < 0:
            return fail(f"sqlite3 died with signal {-rc}")
        say()
        received = ", ".join(f"{n} {kind}" for kind, n in totals.items())
        say(f"The emulator received {received} in all and holds "
            f"{len(emu.webhooks())} webhooks; it stops now.")
    say(f"The database is kept: sqlite3 {DEMO_DB.relative_to(ROOT)} "
        "'SELECT status, count(*) FROM apify_webhooks_store GROUP BY 1'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
