"""What a newcomer runs first, proven: every sql/*.sql file, the demo and its story, the
README's examples and commands, `make install`, and the README's two quick-start commands in a
fresh copy of the repository.

The README is checked as a runnable document:
  - every ```sql block runs, in order, in one database file, through the sqlite3 shell against
    the local emulator (with `.load build/apify` put first unless the block loads it itself);
    when a ```text block follows, the shell's output (stdout and stderr, in the order a
    terminal shows them) must match it, after normalize() has blurred what changes from run to
    run (webhook ids, times, ports, durations); without one, the block must print no error;
  - every ```sh block marked `<!-- test: {"sh": true} -->` runs with bash in a scratch folder
    that sees the repository's build/, sql/ and tests/;
  - the ```python and ```js blocks must appear word for word in tests/hosts/, whose files
    tests/test_hosts.py runs;
  - the demo transcript (the ```text block after `<!-- demo transcript -->`) must match a fresh
    run of the demo.
A `<!-- test: {...} -->` line right before a block sets, in JSON: "emulator" (knobs for that
block), "env" (variables for that block; null unsets one), "skip" (true: not run), "sh".

The fresh-copy test copies the working tree (committed and untracked files that git does not
ignore; APIFY_README_FROM=head clones the committed HEAD instead), runs `make demo` and
`make test` there, and checks both outputs. The inner `make test` runs with
APIFY_README_NESTED=1, which skips the fresh-copy test itself (no recursion).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from tests.harness import EmulatorCase, ROOT, SQLITE3, TOKEN, Emulator

README = ROOT / "README.md"
SQL_DIR = ROOT / "sql"
HOSTS = ROOT / "tests" / "hosts"
DEBIAN_PYTHON = "/usr/bin/python3"
NESTED = os.environ.get("APIFY_README_NESTED") == "1"
SANITIZER = os.environ.get("APIFY_SANITIZER", "")
EMULATOR = {"max_webhooks": 100000}
SQL_TIMEOUT = 120
DEMO_TIMEOUT = 300
MAKE_TEST_TIMEOUT = 2400

# The pieces of the demo's story, in order; each must appear in its output.
DEMO_STORY = [
    "== 1. Your data: a table of actors",
    "│ ElULtm4UAWTWqIpO0 │ amazon-product-scraper    │",
    "== 2. Load the extension",
    "│ 0.1.0   │ http://127.0.0.1:",
    "== 3. What would be sent, without sending it: apify_dry_run()",
    "   auth = Bearer <redacted>",
    "   [emulator: 0 POST /v2/webhooks in this step, 0 in all; 0 webhooks exist]",
    "== 4. One webhook: apify_create_webhook()",
    "   [emulator: 1 POST /v2/webhooks in this step, 1 in all; 1 webhook exists]",
    "== 5. One webhook per actor: INSERT ... SELECT into apify_webhooks",
    "apify: 8 requests in ",
    "│     actor_id      │ status  │        id         │",
    "   [emulator: 8 POST /v2/webhooks in this step, 9 in all; 9 webhooks exist]",
    "== 6. The same INSERT again: every row is known already, so nothing is sent",
    "   [emulator: 0 POST /v2/webhooks in this step, 9 in all; 9 webhooks exist]",
    "== 7. A new actor, the same INSERT once more: only the new row is sent",
    "│ 9        │ 9        │",
    "   [emulator: 1 POST /v2/webhooks in this step, 10 in all; 10 webhooks exist]",
    "== 8. A bad row",
    "Runtime error near line ",
    ': apify: row 2: eventTypes[0]: "ACTOR.RUN.SUCCEDED" is not an event type; did you mean'
    ' "ACTOR.RUN.SUCCEEDED"?',
    "   [emulator: 0 POST /v2/webhooks in this step, 10 in all; 10 webhooks exist]",
    "== 9. Reports and views read the store table, apify_webhooks_store",
    "│ zillow-listings           │ created │",
    # The store and its index, nothing else: the queue lives in TEMP.
    "├─────────────────────────────┼───────┤\n"
    "│ apify_webhooks_store        │ table │\n"
    "│ apify_webhooks_store_status │ index │\n"
    "└",
    "Parse error near line ",
    ': unsafe use of virtual table "apify_webhooks"',
    "== 10. Alerts for failed runs of three actors",
    "│ created │ https://alerts.exmaple.com/youtube-comments       │",
    "   [emulator: 3 POST /v2/webhooks in this step, 13 in all; 13 webhooks exist]",
    "== 11. UPDATE fixes the typo: one PUT /v2/webhooks/{id} per row at commit",
    "│ created │ update    │ https://alerts.example.com/amazon-product-scraper │ 200         │",
    "   [emulator: 0 POST /v2/webhooks in this step, 13 in all; 3 PUT /v2/webhooks/{id} in this"
    " step; 13 webhooks exist]",
    "== 12. Retired actors: DELETE sends DELETE /v2/webhooks/{id} at commit",
    "│ 0        │",
    "│ deleted │ delete    │ 3       │",
    "   [emulator: 0 POST /v2/webhooks in this step, 13 in all; 3 DELETE /v2/webhooks/{id} in"
    " this step; 10 webhooks exist]",
    "== 13. Your own endpoints",
    "/hooks/website-content-crawler │",
    "/down/linkedin-jobs-monitor    │",
    "   [emulator: 0 POST /v2/webhooks in this step, 13 in all; 2 PUT /v2/webhooks/{id} in this"
    " step; 10 webhooks exist]",
    "== 14. What the endpoint will receive, offline: apify_preview_dispatch()",
    "request = POST http://127.0.0.1:",
    'headers = {"X-Demo":"apify-sqlite","Content-Type":"application/json",',
    'payload = {"runId": "7wKpQzR3mXn8YtBvL", "status": "SUCCEEDED", "datasetId":'
    ' "bPk2nTq9LwXe4RzCy"}',
    "   [emulator: 0 POST /v2/webhooks in this step, 13 in all; 10 webhooks exist]",
    "== 15. A test delivery: apify_test_webhook()",
    "│ TEST       │ SUCCEEDED │ 200             │",
    "   [receiver: POST /hooks/website-content-crawler, answered 200; what arrived:]\n"
    "   |  X-Demo: apify-sqlite\n"
    "   |  Content-Type: application/json\n"
    "   |  X-Apify-Webhook: ",
    "   |  X-Apify-Request-Origin: APIFY\n"
    '   |  {"runId": "TestRunIdAbcdefgh", "status": "SUCCEEDED", "datasetId": "TestDatasetIdAbcd"}',
    "   [emulator: 0 POST /v2/webhooks in this step, 13 in all; 1 POST /v2/webhooks/{id}/test in"
    " this step; 10 webhooks exist]",
    "== 16. Both actors ran; one endpoint answered 500",
    "   [emulator: a run of XwOADhUViWuyvwYmu succeeded (POST /_emulator/events): 1 dispatch]\n"
    "   [receiver: POST /hooks/website-content-crawler, answered 200; what arrived:]",
    '   |  {"runId": "RunWccDemo0000001", "status": "SUCCEEDED", "datasetId": "DatasetDemo000001"}',
    "   [emulator: a run of 2GuX9KZTANhv2PMXo succeeded (POST /_emulator/events): 1 dispatch]\n"
    "   [receiver: POST /down/linkedin-jobs-monitor, answered 500; what arrived:]",
    '   |  {"runId": "RunLjmDemo0000001", "status": "SUCCEEDED", "datasetId": "DatasetDemo000001"}',
    "│ TEST                │ SUCCEEDED │ 200             │",
    "│ ACTOR.RUN.SUCCEEDED │ SUCCEEDED │ 200             │",
    "│ ACTOR.RUN.SUCCEEDED │ FAILED    │ 500             │",
    "│ FAILED │ 500             │ receiver is down │               │\n└",
    "The emulator received 13 POST /v2/webhooks, 5 PUT /v2/webhooks/{id}, 3 DELETE"
    " /v2/webhooks/{id}, 1 POST /v2/webhooks/{id}/test, 2 GET /v2/webhook-dispatches in all and"
    " holds 10 webhooks; it stops now.",
]


def normalize(text, base_url=None):
    """Blur what differs from run to run, so a documented output can be compared with a fresh
    one: the emulator's URL reads as the real API's, webhook and user ids as <id>, times as
    <time>, durations and rates as <n>, and the shell's "near line N" goes."""
    if base_url:
        text = text.replace(base_url, "https://api.apify.com")
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:<port>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<time>", text)
    text = re.sub(r"(?<![A-Za-z0-9_-])[A-Za-z0-9]{17}(?![A-Za-z0-9_-])", "<id>", text)
    text = re.sub(r"\b\d+(\.\d+)? (s|ms)\b", "<n> \\2", text)
    text = re.sub(r"\b\d+\.\d/s\b", "<n>/s", text)
    text = re.sub(r" near line \d+:", ":", text)
    return [line.rstrip() for line in text.rstrip().splitlines()]


def run_in_terminal(argv, stdin_text, env, cwd, timeout):
    """Run argv with stdin_text on a pipe and stdout/stderr on a pseudo-terminal; the output as
    a terminal shows it (errors in their place among the results)."""
    from tests.demo import Terminal
    term = Terminal(argv, env, str(cwd))
    try:
        term.send(stdin_text)
        term.close_input()
        lines = list(term.lines(time.monotonic() + timeout))
    finally:
        term.finish()
    return "\n".join(lines)


# -- the README as blocks ----------------------------------------------------------------------

class Block:
    def __init__(self, lang, text, line, options):
        self.lang, self.text, self.line, self.options = lang, text, line, options
        self.expected = None        # the ```text block right after, if any

    def __repr__(self):
        return f"README.md:{self.line} ```{self.lang}"


def readme_blocks(path=README):
    """The fenced blocks of the README, each with its `<!-- test: -->` options and, for code,
    the ```text block that follows it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i, options, after_code = [], 0, {}, None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^<!-- test: (.*) -->$", line)
        if m:
            options = json.loads(m.group(1))
        elif line.startswith("```"):
            lang, start, body = line[3:].strip(), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            block = Block(lang, "\n".join(body) + "\n", start, options)
            options = {}
            if lang == "text" and after_code is not None:
                after_code.expected = block
            else:
                blocks.append(block)
            after_code = block if lang != "text" else None
        elif line.strip() and after_code is not None:
            after_code = None
        i += 1
    return blocks


def demo_transcript():
    """The ```text block after `<!-- demo transcript -->` in the README."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- demo transcript -->\s*```text\n(.*?)```", text, re.S)
    return m.group(1) if m else None


def check_demo_output(test, out):
    """The demo's output tells the whole story, in order."""
    position = 0
    for piece in DEMO_STORY:
        found = out.find(piece, position)
        test.assertGreaterEqual(found, 0, f"the demo's output lacks, after position {position}:"
                                          f"\n{piece}\n--- output:\n{out[-6000:]}")
        position = found + len(piece)


# -- the tests ---------------------------------------------------------------------------------

class SqlFiles(EmulatorCase):
    """Every sql/*.sql file runs as its header says: `sqlite3 DB < sql/FILE` from the root."""
    knobs = EMULATOR
    db_name = "hooks.db"

    def run_file(self, name, env=None):
        path = SQL_DIR / name
        environ = dict(self.emu.env(), **(env or {}))
        with path.open("rb") as script:
            proc = subprocess.run([SQLITE3, self.db], stdin=script, capture_output=True,
                                  env=environ, cwd=str(ROOT), timeout=SQL_TIMEOUT)
        return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")

    def test_every_file_starts_with_a_comment_saying_what_it_does(self):
        files = sorted(SQL_DIR.glob("*.sql"))
        self.assertGreaterEqual(len(files), 9, files)
        for path in files:
            with self.subTest(file=path.name):
                first = path.read_text(encoding="utf-8").splitlines()[0]
                self.assertTrue(first.startswith(f"-- {path.name}: "), first)

    def test_every_example_runs_without_an_error_and_creates_its_webhooks(self):
        for path in sorted(SQL_DIR.glob("*.sql")):
            if path.name in ("demo.sql", "retry_failed.sql", "dry_run.sql",
                             "preview_and_test.sql"):
                continue
            with self.subTest(file=path.name):
                self.emu.reset()
                rc, out, err = self.run_file(path.name)
                self.assertEqual((rc, err), (0, ""), out)
                posts = self.emu.posts()
                self.assertGreater(len(posts), 0)
                self.assertTrue(all(p["status"] == 201 for p in posts), posts)
                self.assertNotIn("failed", out)
                # Run again: nothing new is created.
                before = len(self.emu.webhooks())
                rc, out, err = self.run_file(path.name)
                self.assertEqual((rc, err), (0, ""), out)
                self.assertEqual(len(self.emu.webhooks()), before)

    def test_dry_run_sends_nothing_and_needs_no_token(self):
        rc, out, err = self.run_file("dry_run.sql", env={"APIFY_TOKEN": ""})
        self.assertEqual((rc, err), (0, ""), out)
        self.assertNotIn("Authorization", out, "no token, no Authorization header")
        self.assertIn("apify-sqlite-", out)
        self.assertEqual(self.emu.posts(), [])

    def test_retry_failed_sends_the_failed_rows_again(self):
        self.emu.configure(max_webhooks=1)
        rc, out, err = self.run_file("actors.sql")
        self.assertEqual((rc, err), (0, ""), out)
        self.assertEqual(out.count("created"), 1, out)
        self.assertEqual(out.count("You have reached the maximum number of webhooks"), 2, out)
        self.emu.configure(max_webhooks=100)
        before = len(self.emu.posts())
        rc, out, err = self.run_file("retry_failed.sql")
        self.assertEqual((rc, err), (0, ""), out)
        self.assertIn("│ failed  │ 403         │ too-many-webhooks │ 2    │", out)
        self.assertIn("Outcomes now:", out)
        self.assertIn("│ created │ 3    │", out.split("Outcomes now:")[1])
        self.assertEqual(len(self.emu.posts()) - before, 2)
        self.assertEqual(len(self.emu.webhooks()), 3)

    def test_preview_and_test_tests_each_webhook_once_and_lists_what_failed(self):
        from tests.demo import Receiver
        from tests.harness import shell
        with Receiver() as receiver:
            made = shell("INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES"
                         f" ('{receiver.url}/hooks/ok', '[\"ACTOR.RUN.SUCCEEDED\"]',"
                         " 'OkActorIdAbcdefg'),"
                         f" ('{receiver.url}/down/broken', '[\"ACTOR.RUN.SUCCEEDED\"]',"
                         " 'DownActorIdAbcde');\n"
                         "SELECT id FROM apify_webhooks ORDER BY rowid;\n", self.emu, self.db)
            self.assertEqual((made.rc, made.err), (0, ""), made)
            ok_id, down_id = made.lines
            for run in (1, 2):
                with self.subTest(run=run):
                    rc, out, err = self.run_file("preview_and_test.sql")
                    self.assertEqual((rc, err), (0, ""), out)
                    hooks = self.emu.webhooks()
                    self.assertEqual(len(hooks), 4, "the two samples are created once")
                    samples = sorted(h["id"] for h in hooks if h["id"] not in (ok_id, down_id))
                    # Every webhook previewed, with its own id, then tested exactly once.
                    preview, failed = out.split("What failed (or is still being delivered):")
                    for hook in hooks:
                        self.assertIn(f'"X-Apify-Webhook":"{hook["id"]}"', preview)
                    tests = [e["path"] for e in self.emu.log() if e["path"].endswith("/test")]
                    self.assertEqual(sorted(tests), sorted(
                        [f"/v2/webhooks/{h['id']}/test" for h in hooks] * run))
                    self.assertIn("│ 4        │ 4               │", preview)
                    got = receiver.take()
                    self.assertEqual(sorted(path for path, _, _, _ in got),
                                     ["/down/broken", "/hooks/ok"])
                    # What failed: the endpoint that answered 500 and the two samples, which
                    # the emulator does not deliver (not loopback); not the one that got 200.
                    self.assertNotIn(ok_id, failed)
                    self.assertRegex(failed, rf"│ {down_id} │ {re.escape(receiver.url)}"
                                             r"/down/broken +│ FAILED │ 500 +│ receiver is down │")
                    for sample in samples:
                        self.assertRegex(failed, rf"│ {sample} │ https://hooks\.example\.com/"
                                                 r"preview/\w+ +│ FAILED │ +│ +│ not delivered")
                    self.assertEqual(failed.count("│ FAILED │"), 3, failed)

    def test_demo_sql_tells_its_story_in_the_shell(self):
        rc, out, err = self.run_file("demo.sql")
        self.assertIn("== 9. Reports and views read the store table", out)
        self.assertIn('apify: row 2: eventTypes[0]: "ACTOR.RUN.SUCCEDED"', err)
        self.assertIn('unsafe use of virtual table "apify_webhooks"', err)
        self.assertEqual(err.count("error"), 2, err)
        self.assertEqual(len(self.emu.posts()), 13)
        self.assertEqual(len(self.emu.webhooks()), 10)
        methods = [e["method"] for e in self.emu.log()]
        self.assertEqual((methods.count("PUT"), methods.count("DELETE")), (5, 3))
        # Without make demo's receiver, the endpoints are example.com's: never contacted.
        self.assertIn("== 16. Both actors ran", out)
        tests = [d for d in self.emu.dispatches() if d["eventType"] == "TEST"]
        self.assertEqual([(d["status"], d["sent"]) for d in tests], [("FAILED", False)])


class Demo(unittest.TestCase):
    """`make demo`'s script: the story, and the README's transcript of it."""

    def test_demo_tells_the_story_and_matches_the_readme(self):
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "demo.py")],
                              capture_output=True, text=True, timeout=DEMO_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stderr, "")
        check_demo_output(self, proc.stdout)
        self.assertNotIn(TOKEN, proc.stdout.replace("APIFY_TOKEN", ""))
        transcript = demo_transcript()
        self.assertIsNotNone(transcript, "README.md has no <!-- demo transcript --> block")
        self.assertEqual(normalize(proc.stdout), normalize(transcript),
                         "the README's demo transcript is out of date: paste a fresh "
                         "`make demo` into it")


class ReadmeExamples(unittest.TestCase):
    """The README's examples, run as written."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(**EMULATOR)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.tmp.cleanup()

    def env(self, block):
        environ = self.emu.env()
        for name, value in block.options.get("env", {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        return environ

    def test_sql_examples_print_what_the_readme_says(self):
        db = os.path.join(self.tmp.name, "readme.db")
        blocks = [b for b in readme_blocks() if b.lang == "sql" and not b.options.get("skip")]
        self.assertGreater(len(blocks), 10)
        self.emu.reset()
        for block in blocks:
            with self.subTest(block=block):
                knobs = block.options.get("emulator")
                if knobs:
                    self.emu.configure(**knobs)
                script = block.text if ".load" in block.text else ".load build/apify\n" + block.text
                try:
                    out = run_in_terminal([SQLITE3, db], script, self.env(block), ROOT,
                                          SQL_TIMEOUT)
                finally:
                    if knobs:
                        self.emu.configure(**{k: EMULATOR.get(k, 0 if k != "script" else [])
                                              for k in knobs})
                if block.expected is None:
                    self.assertNotRegex(out, r"(Parse|Runtime) error|^Error", out)
                else:
                    self.assertEqual(normalize(out, self.emu.base_url),
                                     normalize(block.expected.text),
                                     f"README.md:{block.expected.line}")

    def test_shell_commands_run(self):
        blocks = [b for b in readme_blocks() if b.lang == "sh" and b.options.get("sh")]
        self.assertGreater(len(blocks), 1)
        work = Path(self.tmp.name) / "sh"
        work.mkdir()
        for name in ("build", "sql", "tests"):
            (work / name).symlink_to(ROOT / name)
        for block in blocks:
            with self.subTest(block=block):
                if "node " in block.text:
                    from tests.test_hosts import ensure_better_sqlite3, usable_node
                    if usable_node()[0] is None:
                        continue
                    ensure_better_sqlite3()
                if "sqlite-utils " in block.text:
                    from tests.test_hosts import ensure_sqlite_utils
                    ensure_sqlite_utils()
                proc = subprocess.run(["bash", "-eo", "pipefail", "-c", block.text],
                                      capture_output=True, text=True, cwd=str(work),
                                      env=self.env(block), timeout=SQL_TIMEOUT)
                self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
                if block.expected is not None:
                    self.assertEqual(normalize(proc.stdout + proc.stderr, self.emu.base_url),
                                     normalize(block.expected.text),
                                     f"README.md:{block.expected.line}")

    def test_host_snippets_are_the_files_the_host_tests_run(self):
        # the hosts' files, and the scripts the install test runs with the installed packages
        from tests import test_install
        texts = {"python": [(HOSTS / "create_webhooks.py").read_text(encoding="utf-8"),
                            test_install.PY_SCRIPT],
                 "js": [(HOSTS / "create_webhooks.js").read_text(encoding="utf-8"),
                        test_install.MJS, test_install.CJS]}
        seen = set()
        for block in readme_blocks():
            if block.lang in texts:
                seen.add(block.lang)
                with self.subTest(block=block):
                    self.assertTrue(any(block.text in text for text in texts[block.lang]),
                                    block.text)
        self.assertEqual(seen, set(texts))


class MakeInstall(unittest.TestCase):

    def test_make_install_puts_the_module_where_the_readme_says(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(["make", "-s", "install", "PREFIX=/x", f"DESTDIR={tmp}"],
                                  capture_output=True, text=True, cwd=str(ROOT), timeout=600)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            suffix = ".dylib" if sys.platform == "darwin" else ".so"
            installed = Path(tmp) / "x" / "lib" / "sqlite3" / ("apify" + suffix)
            self.assertTrue(installed.is_file(), list(Path(tmp).rglob("*")))
            proc = subprocess.run([SQLITE3, ":memory:"], capture_output=True, text=True,
                                  input=f".load {tmp}/x/lib/sqlite3/apify\n"
                                        "SELECT apify_version();\n", timeout=60)
            self.assertEqual((proc.returncode, proc.stderr), (0, ""))
            self.assertRegex(proc.stdout.strip(), r"^\d+\.\d+\.\d+$")
        readme = README.read_text(encoding="utf-8")
        self.assertIn("$(DESTDIR)$(PREFIX)/lib/sqlite3/apify.so", readme)
        self.assertIn(".load /usr/local/lib/sqlite3/apify", readme)


@unittest.skipIf(NESTED, "inside the fresh copy's own `make test`")
@unittest.skipIf(SANITIZER, f"not under a sanitizer build (APIFY_SANITIZER={SANITIZER})")
class FreshCopy(unittest.TestCase):
    """The README's two commands in a fresh copy of the repository."""

    def test_make_demo_and_make_test_in_a_fresh_copy(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "apify-sqlite"
            fresh_copy(copy)
            env = dict(os.environ, APIFY_README_NESTED="1")
            for name in ("APIFY_EXT", "APIFY_SANITIZER", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
                env.pop(name, None)
            demo = subprocess.run(["make", "demo"], capture_output=True, text=True,
                                  cwd=str(copy), env=env, timeout=DEMO_TIMEOUT + 600)
            self.assertEqual(demo.returncode, 0, demo.stdout[-4000:] + demo.stderr[-4000:])
            check_demo_output(self, demo.stdout)
            test = subprocess.run(["make", "test"], capture_output=True, text=True,
                                  cwd=str(copy), env=env, timeout=MAKE_TEST_TIMEOUT)
            tail = test.stdout[-6000:] + test.stderr[-3000:]
            self.assertEqual(test.returncode, 0, tail)
            m = re.search(r"^(\d+) passed, (\d+) failed(, \d+ skipped)?$", test.stdout, re.M)
            self.assertIsNotNone(m, tail)
            self.assertGreater(int(m.group(1)), 0, tail)
            self.assertEqual(m.group(2), "0", tail)


def fresh_copy(dest):
    """The repository as a newcomer gets it, in dest: the working tree's files that git tracks
    or would track (APIFY_README_FROM=head: a clone of the committed HEAD). Installed npm
    packages are copied along, as a cache: they are what `npm ci` would install again."""
    if os.environ.get("APIFY_README_FROM") == "head":
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(dest)],
                       check=True, capture_output=True, timeout=300)
    else:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                  "--exclude-standard"], cwd=str(ROOT), check=True,
                                 capture_output=True, timeout=60).stdout.decode("utf-8")
        for name in filter(None, listing.split("\0")):
            source = ROOT / name
            if not source.is_file():          # deleted in the working tree
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for cache in ("tests/hosts/node_modules", "tests/js/node_modules"):
        if (ROOT / cache).is_dir() and not (dest / cache).exists() and (dest / cache).parent.is_dir():
            shutil.copytree(ROOT / cache, dest / cache, symlinks=True)


if __name__ == "__main__":
    unittest.main()
