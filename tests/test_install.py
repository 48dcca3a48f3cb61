"""What `make dist` built, installed as a user would, from the files in dist/ alone: the wheel
into a fresh virtual environment of Debian's Python (pip install --no-index), the npm package
into a fresh Node project beside better-sqlite3 12 (npm install of the packed .tgz; the npm
registry gives better-sqlite3). Each then loads the extension with its loader's load(), creates
one webhook with apify_create_webhook() and one per actor with INSERT INTO apify_webhooks ...
SELECT, against the emulator, whose log proves what arrived. Also: the one version (ext/apify.h)
is the one every package and apify_version() carry, and SHA256SUMS is right.

`make test` runs `make dist` first; run alone: make dist && /usr/bin/python3 tests/run.py
test_install. The npm part compiles better-sqlite3 when no prebuilt binary can be fetched (a
minute or two)."""

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import unittest
import zipfile

from tests.harness import DEBIAN_PYTHON, ROOT, SANITIZER, EmulatorCase, header, shell

DIST = ROOT / "dist"
VENV_TIMEOUT = 300
NPM_TIMEOUT = 900          # npm install, compiling better-sqlite3 on two cores included
RUN_TIMEOUT = 120
ACTORS = {"ElULtm4UAWTWqIpO0": "amazon-product-scraper",
          "VFwAHUN9ntITvHeUX": "google-maps-reviews"}


def header_version():
    with open(ROOT / "ext" / "apify.h", encoding="utf-8") as f:
        return re.search(r'^#define APIFY_VERSION "([^"]+)"', f.read(), re.M).group(1)


def artifact(pattern):
    """The one file of dist/ whose name matches pattern (a regex); fails when there is not
    exactly one."""
    names = sorted(n for n in os.listdir(DIST) if re.fullmatch(pattern, n)) \
        if DIST.is_dir() else []
    if len(names) != 1:
        raise AssertionError(f"dist/ should hold one file matching {pattern}, not {names}:"
                             " run make dist")
    return DIST / names[0]


def wheel():
    return artifact(r"apify_sqlite-[^-]+-py3-none-[a-z0-9_]+\.whl")


def npm_tgz():
    return artifact(r"apify-sqlite-[^-]+\.tgz")


def tarball():
    return artifact(r"apify-sqlite-[^-]+-[a-z]+-[a-z0-9_]+\.tar\.gz")


def run(argv, timeout, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


# The same story for both hosts: a table of actors, one webhook per actor through the table,
# one with the function; prints JSON {version, bulk: [[actor_id, status, id]], one: id}.
# The lines from `import apify_sqlite` (Python) and `import Database` / `const Database` (Node) to
# `load(db)` are the README's Install examples, word for word.
PY_SCRIPT = """\
import json, sqlite3, sys
db_path, actors = sys.argv[1], json.loads(sys.argv[2])

import apify_sqlite
conn = sqlite3.connect(db_path)
apify_sqlite.load(conn)

conn.execute("CREATE TABLE actors(actor_id TEXT PRIMARY KEY, name TEXT)")
conn.executemany("INSERT INTO actors VALUES (?, ?)", actors.items())
conn.commit()
conn.execute('''INSERT INTO apify_webhooks(request_url, event_types, actor_id)
                SELECT 'https://example.com/py/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id
                  FROM actors''')
conn.commit()
one = conn.execute("SELECT apify_create_webhook(?) ->> 'id'", (json.dumps({
    "requestUrl": "https://example.com/py/one", "eventTypes": ["ACTOR.RUN.FAILED"],
    "condition": {"actorId": "ElULtm4UAWTWqIpO0"}}),)).fetchone()[0]
print(json.dumps({
    "version": conn.execute("SELECT apify_version()").fetchone()[0],
    "module": apify_sqlite.__file__, "module_version": apify_sqlite.__version__,
    "bulk": conn.execute("SELECT actor_id, status, id FROM apify_webhooks"
                         " WHERE request_url LIKE '%/py/%' AND request_url NOT LIKE '%/one'"
                         " ORDER BY actor_id").fetchall(),
    "one": one}))
"""

PY_NO_NETWORK = """\
import sqlite3, apify_sqlite
conn = sqlite3.connect(":memory:")
apify_sqlite.load(conn, no_network=True)
print(sorted(r[0] for r in conn.execute(
    "SELECT name FROM pragma_function_list WHERE name LIKE 'apify%'"
    " UNION SELECT name FROM pragma_module_list WHERE name LIKE 'apify%'")))
"""

JS_BODY = """\
db.exec("CREATE TABLE actors(actor_id TEXT PRIMARY KEY, name TEXT)");
const add = db.prepare("INSERT INTO actors VALUES (?, ?)");
for (const [id, name] of Object.entries(JSON.parse(process.argv[3]))) add.run(id, name);
db.prepare(`INSERT INTO apify_webhooks(request_url, event_types, actor_id)
            SELECT 'https://example.com/LANG/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id
              FROM actors`).run();
const one = db.prepare("SELECT apify_create_webhook(?) ->> 'id' AS id").get(JSON.stringify({
  requestUrl: "https://example.com/LANG/one", eventTypes: ["ACTOR.RUN.FAILED"],
  condition: { actorId: "ElULtm4UAWTWqIpO0" } })).id;
console.log(JSON.stringify({
  version: db.prepare("SELECT apify_version() AS v").get().v,
  path: getLoadablePath(),
  bulk: db.prepare(`SELECT actor_id, status, id FROM apify_webhooks
                    WHERE request_url NOT LIKE '%/one' ORDER BY actor_id`).raw().all(),
  one }));
"""
MJS = ('const dbPath = process.argv[2];\n'
       'import Database from "better-sqlite3";\n'
       'import { load } from "apify-sqlite";\n'
       'const db = new Database(dbPath);\n'
       'load(db);\n\n'
       'import { getLoadablePath } from "apify-sqlite";\n' + JS_BODY.replace("LANG", "mjs"))
CJS = ('const dbPath = process.argv[2];\n'
       'const Database = require("better-sqlite3");\n'
       'const { load } = require("apify-sqlite");\n'
       'const db = new Database(dbPath);\n'
       'load(db);\n\n'
       'const { getLoadablePath } = require("apify-sqlite");\n' + JS_BODY.replace("LANG", "cjs"))
JS_NO_NETWORK = """\
import Database from "better-sqlite3";
import { load } from "apify-sqlite";
const db = new Database(":memory:");
load(db, { noNetwork: true });
console.log(JSON.stringify(db.prepare(`SELECT name FROM pragma_function_list WHERE name LIKE 'apify%'
  UNION SELECT name FROM pragma_module_list WHERE name LIKE 'apify%' ORDER BY 1`).raw().all()
  .map(r => r[0])));
"""


@unittest.skipIf(SANITIZER, f"the packages hold the plain build (APIFY_SANITIZER={SANITIZER})")
class Artifacts(unittest.TestCase):
    """dist/ as make dist left it: one version everywhere, right checksums, the same module."""

    def test_one_version_everywhere(self):
        version = header_version()
        r = shell("SELECT apify_version();")
        self.assertEqual(r.lines, [version], r)
        self.assertTrue(wheel().name.startswith(f"apify_sqlite-{version}-"))
        self.assertEqual(npm_tgz().name, f"apify-sqlite-{version}.tgz")
        self.assertTrue(tarball().name.startswith(f"apify-sqlite-{version}-"))
        with zipfile.ZipFile(wheel()) as whl:
            meta = whl.read(f"apify_sqlite-{version}.dist-info/METADATA").decode("utf-8")
            init = whl.read("apify_sqlite/__init__.py").decode("utf-8")
        self.assertIn("\nName: apify-sqlite\n", meta)
        self.assertIn(f"\nVersion: {version}\n", meta)
        self.assertIn(f'__version__ = "{version}"', init)
        with tarfile.open(npm_tgz()) as tgz:
            package = json.load(tgz.extractfile("package/package.json"))
        self.assertEqual((package["name"], package["version"]), ("apify-sqlite", version))
        with tarfile.open(tarball()) as tar:
            self.assertEqual(sorted(tar.getnames()), [
                tarball().name[:-len(".tar.gz")],
                tarball().name[:-len(".tar.gz")] + "/README.md",
                tarball().name[:-len(".tar.gz")] + "/apify.so"])

    def test_checksums(self):
        with open(DIST / "SHA256SUMS", encoding="utf-8") as f:
            sums = dict(reversed(line.split("  ", 1)) for line in f.read().splitlines())
        self.assertEqual(set(sums), {wheel().name, npm_tgz().name, tarball().name})
        for name, digest in sums.items():
            with open(DIST / name, "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)

    def test_every_package_carries_the_same_module_and_readme(self):
        with open(ROOT / "README.md", "rb") as f:
            readme = f.read()
        with zipfile.ZipFile(wheel()) as whl:
            module = whl.read("apify_sqlite/apify.so")
            record = whl.read(f"apify_sqlite-{header_version()}.dist-info/RECORD").decode()
        self.assertIn("apify_sqlite/apify.so,sha256=", record)
        with tarfile.open(npm_tgz()) as tgz:
            self.assertEqual(tgz.extractfile("package/lib/apify.so").read(), module)
            self.assertEqual(tgz.extractfile("package/README.md").read(), readme)
            names = set(tgz.getnames())
        self.assertLessEqual({"package/index.cjs", "package/index.mjs", "package/index.d.ts"},
                             names)
        top = tarball().name[:-len(".tar.gz")]
        with tarfile.open(tarball()) as tar:
            self.assertEqual(tar.extractfile(f"{top}/apify.so").read(), module)
            self.assertEqual(tar.extractfile(f"{top}/README.md").read(), readme)


class InstallCase(EmulatorCase):
    knobs = {"max_webhooks": 100000}

    def assertStory(self, out, lang):
        """out is the JSON a script printed; the emulator received exactly its three POSTs."""
        result = json.loads(out)
        self.assertEqual(result["version"], header_version())
        hooks = {w["id"]: w for w in self.emu.webhooks()}
        self.assertEqual(len(hooks), 3, hooks)
        self.assertEqual([row[:2] for row in result["bulk"]],
                         [[actor, "created"] for actor in sorted(ACTORS)])
        for actor, status, webhook_id in result["bulk"]:
            self.assertEqual(hooks[webhook_id]["condition"], {"actorId": actor})
            self.assertEqual(hooks[webhook_id]["requestUrl"],
                             f"https://example.com/{lang}/{ACTORS[actor]}")
        self.assertEqual(hooks[result["one"]]["requestUrl"], f"https://example.com/{lang}/one")
        posts = self.emu.posts()
        self.assertEqual(len(posts), 3, posts)
        for post in posts:
            self.assertEqual((post["status"], post["auth"]), (201, "valid"), post)
            self.assertTrue(header(post, "User-Agent").startswith(
                f"apify-sqlite/{header_version()} "), post)
        return result


@unittest.skipIf(SANITIZER, f"the packages hold the plain build (APIFY_SANITIZER={SANITIZER})")
class PythonWheel(InstallCase):
    """pip install --no-index dist/*.whl into a fresh venv of Debian's Python."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.venv_dir = tempfile.TemporaryDirectory()
        venv = os.path.join(cls.venv_dir.name, "venv")
        cls.python = os.path.join(venv, "bin", "python")
        proc = run([DEBIAN_PYTHON, "-m", "venv", venv], VENV_TIMEOUT)
        cls.venv_error = proc.stderr if proc.returncode else None
        if cls.venv_error is None:
            proc = run([cls.python, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                        "--disable-pip-version-check", str(wheel())], VENV_TIMEOUT)
            cls.venv_error = (proc.stdout + proc.stderr) if proc.returncode else None

    @classmethod
    def tearDownClass(cls):
        cls.venv_dir.cleanup()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.venv_error, "python3 -m venv / pip install --no-index failed")

    def test_load_and_create_webhooks(self):
        proc = run([self.python, "-c", PY_SCRIPT, self.db, json.dumps(ACTORS)], RUN_TIMEOUT,
                   cwd=self.tmp.name, env=self.emu.env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = self.assertStory(proc.stdout, "py")
        # The module imported is the installed one, not the tree's.
        self.assertTrue(result["module"].startswith(self.venv_dir.name), result["module"])
        self.assertEqual(result["module_version"], header_version())

    def test_load_no_network(self):
        proc = run([self.python, "-c", PY_NO_NETWORK], RUN_TIMEOUT, cwd=self.tmp.name,
                   env=self.emu.env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(),
                         "['apify_dry_run', 'apify_preview_dispatch', 'apify_version']")
        self.assertEqual(self.emu.log(), [])


@unittest.skipIf(SANITIZER, f"node cannot run with the ASan runtime (APIFY_SANITIZER={SANITIZER})")
class NpmPackage(InstallCase):
    """npm install dist/apify-sqlite-V.tgz better-sqlite3@12 into a fresh Node project."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.project_dir = tempfile.TemporaryDirectory()
        cls.project = cls.project_dir.name
        with open(os.path.join(cls.project, "package.json"), "w", encoding="utf-8") as f:
            json.dump({"name": "apify-sqlite-install-test", "version": "0.0.0", "private": True},
                      f)
        env = dict(os.environ)
        # better-sqlite3 is compiled here (its prebuilt binaries are on a host this machine
        # cannot reach: trying first only waits), against the installed Node headers rather
        # than downloaded ones, as tests/test_hosts.py does.
        env.setdefault("npm_config_build_from_source", "true")
        if os.path.exists("/usr/include/node/node.h"):
            env.setdefault("npm_config_nodedir", "/usr")
        proc = run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                    str(npm_tgz()), "better-sqlite3@12"], NPM_TIMEOUT, cwd=cls.project, env=env)
        cls.npm_error = (proc.stdout + proc.stderr)[-4000:] if proc.returncode else None

    @classmethod
    def tearDownClass(cls):
        cls.project_dir.cleanup()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.npm_error, "npm install failed")

    def node(self, name, source, *args):
        path = os.path.join(self.project, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        return run(["node", path, *args], RUN_TIMEOUT, cwd=self.project, env=self.emu.env())

    def assertInstalledPath(self, path):
        self.assertEqual(path, os.path.join(self.project, "node_modules", "apify-sqlite", "lib",
                                            "apify.so"))

    def test_es_module(self):
        proc = self.node("story.mjs", MJS, self.db, json.dumps(ACTORS))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertInstalledPath(self.assertStory(proc.stdout, "mjs")["path"])

    def test_commonjs(self):
        proc = self.node("story.cjs", CJS, self.db, json.dumps(ACTORS))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertInstalledPath(self.assertStory(proc.stdout, "cjs")["path"])

    def test_load_no_network(self):
        proc = self.node("no_network.mjs", JS_NO_NETWORK)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout),
                         ["apify_dry_run", "apify_preview_dispatch", "apify_version"])
        self.assertEqual(self.emu.log(), [])

    def test_types_name_what_is_exported(self):
        with open(os.path.join(self.project, "node_modules", "apify-sqlite", "index.d.ts"),
                  encoding="utf-8") as f:
            types = f.read()
        proc = self.node("keys.cjs", 'console.log(Object.keys(require("apify-sqlite")).sort()'
                                     '.join(" "))')
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in proc.stdout.split():
            self.assertRegex(types, rf"export declare (function|const) {name}\b")


if __name__ == "__main__":
    unittest.main()
