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

The shell writes to a pseudo-terminal, as it would in your terminal: its output and its error
messages arrive in the order they happen, and the progress line of a bulk insert is shown
(its last state only). Standard input stays a pipe, so the shell prints no prompts, and its
error messages say "near line N" with N a line of sql/demo.sql.

Exit status: 0 when the whole story ran; 1 (with the reason on stderr) otherwise.
"""

import os
import pty
import select
import shutil
import subprocess
import sys
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


def screen_line(text):
    """What a terminal shows for one line: carriage returns rewrite it (the progress line),
    so keep what was written last."""
    text = text.rstrip("\r")
    if "\r" in text:
        text = text.rsplit("\r", 1)[1]
    return text.rstrip()


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
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(DEMO_DB) + suffix).unlink(missing_ok=True)

    with Emulator(**EMULATOR) as emu:
        say(f"apify-sqlite demo: sql/demo.sql in the sqlite3 shell "
            f"({version[0] if version else 'unknown version'}),")
        say(f"against the local Apify emulator at {emu.base_url} (tests/emulator.py, 20 ms latency).")
        say("APIFY_API_BASE_URL and APIFY_TOKEN point at the emulator; nothing reaches api.apify.com.")
        say()
        term = Terminal([SQLITE3, str(DEMO_DB.relative_to(ROOT))], emu.env(), str(ROOT))
        seen = 0

        def report():
            nonlocal seen
            posts = len(emu.posts())
            say(f"   [emulator: {posts - seen} POST /v2/webhooks in this step, {posts} in all;"
                f" {plural(len(emu.webhooks()), 'webhook exists', 'webhooks exist')}]")
            seen = posts

        story = steps(DEMO_SQL.read_text(encoding="utf-8"))
        try:
            for i, (header, body) in enumerate(story):
                last = i == len(story) - 1
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
        say(f"The emulator received {seen} POST /v2/webhooks in all and holds "
            f"{len(emu.webhooks())} webhooks; it stops now.")
    say(f"The database is kept: sqlite3 {DEMO_DB.relative_to(ROOT)} "
        "'SELECT status, count(*) FROM apify_webhooks_store GROUP BY 1'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
