"""The extension in the programs people load it into: the sqlite3 shell, Debian's Python
sqlite3 module, Node.js with better-sqlite3 12, and the sqlite-utils command line. Each host
loads build/apify, creates one webhook per actor with INSERT ... SELECT and one with
apify_create_webhook(), and each test proves from the emulator's log and state that the
requests arrived and the webhooks exist with the ids the host printed.

What is missing is installed with bounded time: better-sqlite3 by `npm ci` in tests/hosts (from
the pinned package-lock.json; it compiles from source when no prebuilt binary can be fetched,
a minute or two), sqlite-utils by `tests/deps.sh sqlite-utils` (Debian's package, as root)."""

import json
import os
import shutil
import subprocess
import unittest
from pathlib import Path

from tests.harness import EmulatorCase, EXT, ROOT, SQLITE3

HOSTS = ROOT / "tests" / "hosts"
DEBIAN_PYTHON = "/usr/bin/python3"
NPM_TIMEOUT = 900          # npm ci, compiling better-sqlite3 on two cores included
APT_TIMEOUT = 600          # tests/deps.sh sqlite-utils
RUN_TIMEOUT = 120          # one host run
SANITIZER = os.environ.get("APIFY_SANITIZER", "")   # the module is an ASan build (make test-asan)

ACTORS = {"ElULtm4UAWTWqIpO0": "amazon-product-scraper",
          "VFwAHUN9ntITvHeUX": "google-maps-reviews"}

# The same work as tests/hosts/create_webhooks.{js,py}, for the hosts that take SQL text.
SETUP_SQL = ("CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);\n"
             "INSERT OR IGNORE INTO actors VALUES ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),"
             " ('VFwAHUN9ntITvHeUX', 'google-maps-reviews');\n")
BULK_SQL = ("INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
            " SELECT 'https://example.com/hooks/' || name, '[\"ACTOR.RUN.SUCCEEDED\"]', actor_id"
            " FROM actors")
LIST_SQL = "SELECT actor_id, status, id FROM apify_webhooks"


def one_hook(host):
    return {"requestUrl": f"https://example.com/hooks/{host}", "eventTypes": ["ACTOR.RUN.FAILED"],
            "condition": {"actorId": "ElULtm4UAWTWqIpO0"}}


def run(argv, timeout, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


class HostCase(EmulatorCase):
    knobs = {"max_webhooks": 100000}
    db_name = "hooks.db"

    def assertCreated(self, host, out):
        """out lists `ACTOR_ID created ID` per actor and `apify_create_webhook: ID`; the emulator
        received exactly those three requests and holds those webhooks."""
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 3, out)
        hooks = {w["id"]: w for w in self.emu.webhooks()}
        self.assertEqual(len(hooks), 3, hooks)
        for line, (actor, name) in zip(lines[:2], ACTORS.items()):
            actor_id, status, webhook_id = line.split()
            self.assertEqual((actor_id, status), (actor, "created"), out)
            self.assertEqual(hooks[webhook_id]["condition"], {"actorId": actor})
            self.assertEqual(hooks[webhook_id]["requestUrl"], f"https://example.com/hooks/{name}")
        label, webhook_id = lines[2].split(": ")
        self.assertEqual(label, "apify_create_webhook")
        self.assertEqual(hooks[webhook_id]["requestUrl"], one_hook(host)["requestUrl"])
        posts = self.emu.posts()
        self.assertEqual(len(posts), 3)
        self.assertTrue(all(p["status"] == 201 and p["auth"] == "valid" for p in posts), posts)


class Hosts(HostCase):

    def test_sqlite3_shell(self):
        script = (f".load {EXT}\n" + SETUP_SQL + BULK_SQL + ";\n.mode list\n.separator ' '\n"
                  + LIST_SQL + ";\nSELECT 'apify_create_webhook: ' || (apify_create_webhook("
                  + "'" + json.dumps(one_hook("shell")) + "') ->> '$.id');\n")
        proc = run([SQLITE3, self.db], RUN_TIMEOUT, input=script, env=self.emu.env())
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), proc.stdout)
        self.assertCreated("shell", proc.stdout)

    @unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3 is not installed")
    def test_python_sqlite3(self):
        proc = run([DEBIAN_PYTHON, str(HOSTS / "create_webhooks.py"), self.db, str(EXT)],
                   RUN_TIMEOUT, env=self.emu.env(), cwd=self.tmp.name)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertCreated("python", proc.stdout)

    def test_python_sends_nothing_before_commit(self):
        """Python's sqlite3 opens a transaction before an INSERT: requests go out at commit()."""
        if not os.path.exists(DEBIAN_PYTHON):
            self.skipTest("Debian's python3 is not installed")
        code = ("import sqlite3, sys, urllib.request\n"
                "conn = sqlite3.connect(sys.argv[1])\n"
                "conn.enable_load_extension(True); conn.load_extension(sys.argv[2])\n"
                f"conn.executescript({SETUP_SQL!r})\n"
                f"conn.execute({BULK_SQL!r})\n"
                "print(conn.execute(\"SELECT count(*) FROM apify_webhooks"
                " WHERE status = 'created'\").fetchone()[0])\n"
                "sys.stdout.flush(); sys.stdin.readline()\n"
                "conn.commit()\n"
                "print(conn.execute(\"SELECT count(*) FROM apify_webhooks"
                " WHERE status = 'created'\").fetchone()[0])\n")
        proc = subprocess.Popen([DEBIAN_PYTHON, "-c", code, self.db, str(EXT)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.emu.env())
        try:
            self.assertEqual(proc.stdout.readline().strip(), "0")
            self.assertEqual(self.emu.posts(), [], "nothing is sent before commit()")
            out, err = proc.communicate("go\n", timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out.strip(), "2")
        self.assertEqual(len(self.emu.posts()), 2)

    def test_node_better_sqlite3(self):
        node, why_not = usable_node()
        if node is None:
            self.skipTest(why_not)
        ensure_better_sqlite3()
        version = json.loads((HOSTS / "node_modules" / "better-sqlite3" / "package.json")
                             .read_text())["version"]
        self.assertTrue(version.startswith("12."), version)
        proc = run([node, str(HOSTS / "create_webhooks.js"), self.db, str(EXT)], RUN_TIMEOUT,
                   env=self.emu.env(), cwd=self.tmp.name)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertCreated("node", proc.stdout)

    def test_sqlite_utils(self):
        tool = ensure_sqlite_utils()
        env = self.emu.env()
        load = ["--load-extension", str(EXT)]
        steps = [
            [tool, "query", self.db, SETUP_SQL.split(";\n")[0]],
            [tool, "query", self.db, SETUP_SQL.split(";\n")[1]],
            [tool, "query", self.db, *load, BULK_SQL],
            [tool, "query", self.db, *load, "--csv", "--no-headers", LIST_SQL],
            [tool, "query", self.db, *load, "--csv", "--no-headers",
             "SELECT apify_create_webhook(:hook) ->> '$.id'",
             "-p", "hook", json.dumps(one_hook("sqlite-utils"))],
        ]
        outputs = []
        for argv in steps:
            proc = run(argv, RUN_TIMEOUT, env=env)
            self.assertEqual(proc.returncode, 0, f"{argv}\n{proc.stdout}\n{proc.stderr}")
            outputs.append(proc.stdout)
        self.assertEqual(json.loads(outputs[2]), [{"rows_affected": 2}])
        listing = outputs[3].strip().replace(",", " ")
        self.assertCreated("sqlite-utils",
                           listing + "\napify_create_webhook: " + outputs[4].strip() + "\n")


def usable_node():
    """(path of node, None) when Node.js can run better-sqlite3 12 with this build of the
    module, else (None, why not)."""
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed (Debian: apt-get install nodejs npm)"
    if SANITIZER:
        return None, f"node cannot run the {SANITIZER} build of the module"
    version = run([node, "--version"], 30).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        return None, (f"better-sqlite3 12 needs Node.js 20 or later, not {version} "
                      "(Debian 12's own nodejs package is 18)")
    return node, None


def ensure_better_sqlite3():
    """npm ci in tests/hosts unless better-sqlite3 is already there and built."""
    module = HOSTS / "node_modules" / "better-sqlite3"
    if (module / "build" / "Release" / "better_sqlite3.node").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise unittest.SkipTest("npm is not installed (Debian: apt-get install npm)")
    env = dict(os.environ)
    # Compile against the installed Node headers rather than downloading them.
    if Path("/usr/include/node/node.h").exists():
        env.setdefault("npm_config_nodedir", "/usr")
    proc = run([npm, "ci", "--no-audit", "--no-fund"], NPM_TIMEOUT, cwd=str(HOSTS), env=env)
    if proc.returncode != 0:
        raise AssertionError(f"npm ci in tests/hosts failed:\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")


def ensure_sqlite_utils():
    """The sqlite-utils command, installed from Debian's package when missing (as root)."""
    tool = shutil.which("sqlite-utils")
    if tool:
        return tool
    proc = run([str(ROOT / "tests" / "deps.sh"), "sqlite-utils"], APT_TIMEOUT)
    tool = shutil.which("sqlite-utils")
    if tool:
        return tool
    if os.geteuid() != 0:
        raise unittest.SkipTest("sqlite-utils is not installed: " + proc.stderr.strip())
    raise AssertionError(f"tests/deps.sh sqlite-utils failed:\n{proc.stdout}\n{proc.stderr}")


if __name__ == "__main__":
    unittest.main()
