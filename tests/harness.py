"""Shared helpers for the project's Python tests (standard library only).

    from tests.harness import Emulator, ROOT, TOKEN

    with Emulator(rate_limit=10, latency_ms=5) as emu:      # knobs as in tests/emulator.py
        r = emu.request("POST", "/v2/webhooks", {"requestUrl": ...})
        emu.configure(script=["503", "cut"])                 # change knobs at run time
        emu.posts()                                          # log entries of POST /v2/webhooks
        emu.webhooks()                                       # what exists on the "server"

Every network call here has a timeout, and nothing goes through an HTTP proxy.
"""

import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
EMULATOR_SCRIPT = TESTS / "emulator.py"
TOKEN = "test-token"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CONTROL_TIMEOUT = 10.0

# urllib honours http_proxy & co. from the environment; the emulator is local, so never use one.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _open(req, timeout, context):
    """urllib without a proxy; context: the SSL context of an https emulator, or None."""
    if context is None:
        return _opener.open(req, timeout=timeout)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    return opener.open(req, timeout=timeout)

# Knobs with a command-line flag of their own; a list becomes a repeated or comma-joined flag.
_CLI_KNOBS = ("latency_ms", "rate_limit", "rate_limit_header", "retry_after", "fail_5xx",
              "cut_after_create", "slow_ms", "slow", "malformed", "max_webhooks", "seed", "script",
              "draw_by_body", "deleted_keys", "delivery_timeout_ms")


class Response:
    """What Emulator.request() returns: status, headers (case-insensitive), raw body."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class Emulator:
    """tests/emulator.py in a subprocess on a free loopback port.

    Emulator(tokens=None, tls=None, host=None, **knobs): tokens is a list of accepted tokens
    (default [TOKEN]); knobs are the emulator's (latency_ms, rate_limit, script=[...], ...),
    given as flags; tls=(cert_pem, key_pem) serves https (see self_signed_cert()), and the
    control calls then trust that certificate; host is a loopback address other than 127.0.0.1
    ("127.0.0.2", "::1").
    """

    def __init__(self, tokens=None, tls=None, host=None, **knobs):
        unknown = set(knobs) - set(_CLI_KNOBS)
        if unknown:
            raise TypeError(f"unknown emulator knobs: {sorted(unknown)}")
        cmd = [sys.executable, str(EMULATOR_SCRIPT), "--port", "0"]
        if host:
            cmd += ["--host", host]
        for token in tokens or [TOKEN]:
            cmd += ["--token", token]
        self._ssl = None
        if tls:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
            self._ssl = ssl.create_default_context(cafile=str(tls[0]))
        for name, value in knobs.items():
            if value is None:
                continue
            if name == "script":
                value = ",".join(value)
            cmd += ["--" + name.replace("_", "-"), str(value)]
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self._stderr, cwd=str(ROOT))
        # Should a test forget stop(), the emulator still dies with the test process.
        weakref.finalize(self, _kill, self.process)
        line = self._first_line(START_TIMEOUT)
        if not line.startswith(("listening on http://", "listening on https://")):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}\n{self.stderr_text()}")
        self.base_url = line[len("listening on "):].strip()
        self.port = int(self.base_url.rsplit(":", 1)[1])
        self.host = self.base_url.split("://", 1)[1].rsplit(":", 1)[0]

    def _first_line(self, timeout):
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: lines.put(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        try:
            return lines.get(timeout=timeout).decode("utf-8", "replace")
        except queue.Empty:
            return f"(no line within {timeout} s)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the emulator's API ---------------------------------------------------------------

    def url(self, path):
        return self.base_url + path

    def env(self, token=TOKEN):
        """os.environ plus APIFY_API_BASE_URL and APIFY_TOKEN pointing at this emulator."""
        env = dict(os.environ, APIFY_API_BASE_URL=self.base_url, APIFY_TOKEN=token)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
        return env

    def request(self, method, path, body=None, headers=None, token=TOKEN, timeout=CONTROL_TIMEOUT):
        """One API request. body: dict/list (sent as JSON), bytes or str (sent as is).
        token=None sends no Authorization header. Returns a Response, also for 4xx/5xx."""
        headers = dict(headers or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers)
        try:
            with _open(req, timeout, self._ssl) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return Response(err.code, err.headers, err.read())

    def _control(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with _open(req, CONTROL_TIMEOUT, self._ssl) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            with err:
                raise RuntimeError(f"{method} {path}: {err.code} {err.read()!r}") from None

    def configure(self, **knobs):
        """Change knobs at run time; returns all knobs as they now are."""
        return self._control("POST", "/_emulator/config", knobs)

    def config(self):
        return self._control("GET", "/_emulator/config")

    def reset(self):
        """Forget webhooks and the log; knobs back to the ones this Emulator was started with."""
        self._control("POST", "/_emulator/reset", {})

    def log(self):
        """Every API request received, in arrival order (see tests/emulator.py)."""
        return self._control("GET", "/_emulator/log")

    def posts(self):
        """The log entries of POST /v2/webhooks."""
        return [e for e in self.log() if e["method"] == "POST" and e["path"] == "/v2/webhooks"]

    def state(self):
        return self._control("GET", "/_emulator/state")

    def seed(self, count, webhook=None, dispatches=0, suffix=False, token=TOKEN):
        """Store count webhooks (fields of webhook) and dispatches of the first at once;
        returns {"webhookIds": [...], "dispatchIds": [...]}."""
        return self._control("POST", "/_emulator/seed", {
            "token": token, "count": count, "webhook": webhook or {}, "suffix": suffix,
            "dispatches": dispatches})

    def event(self, event_type, event_data, resource=None, created_at=None, token=TOKEN):
        """A simulated platform event: the matching webhooks are dispatched and delivered
        before this returns; returns the list of dispatches."""
        body = {"token": token, "eventType": event_type, "eventData": event_data,
                "resource": resource}
        if created_at is not None:
            body["createdAt"] = created_at
        return self._control("POST", "/_emulator/events", body)["dispatches"]

    def dispatches(self):
        """Every dispatch, with the variables, payload text and header list it was sent with."""
        return self._control("GET", "/_emulator/dispatches")

    def webhooks(self):
        """All webhooks of all users, each with its idempotencyKey and userId."""
        return self.state()["webhooks"]

    def counts(self):
        """Counts only (webhooks, requests, posts, byStatus, ...): cheap to poll."""
        return self._control("GET", "/_emulator/counts")

    def wait_for(self, predicate, timeout=5.0, interval=0.02):
        """Poll predicate(self) until it is true (returns its value) or raise after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(interval)

    # -- lifetime ---------------------------------------------------------------------------

    def stop(self):
        """Terminate the emulator: SIGTERM, wait, SIGKILL after STOP_TIMEOUT seconds."""
        process = self.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if process.stdout:
            process.stdout.close()
        if not self._stderr.closed:
            self._stderr_text = self.stderr_text()
            self._stderr.close()
        return process.returncode

    def stderr_text(self):
        """What the emulator wrote to stderr so far (tracebacks of emulator bugs land here)."""
        if self._stderr.closed:
            return self._stderr_text
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")


def _kill(process):
    if process.poll() is None:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def header(entry, name):
    """A header of a request-log entry, looked up case-insensitively (clients differ in case:
    Node sends `content-encoding`, curl `Content-Encoding`). None when absent."""
    for key, value in entry["headers"].items():
        if key.lower() == name.lower():
            return value
    return None


# The lead engineer adds the sqlite3-shell helpers below.

# -- the extension through the sqlite3 shell and through Python's sqlite3 -----------------------

# .load finds apify.so (apify.dylib on macOS). APIFY_EXT points the suites at another build of
# the module (make test-asan: build-asan/apify; make coverage: build-cov/apify).
EXT = Path(os.environ["APIFY_EXT"]) if os.environ.get("APIFY_EXT") else ROOT / "build" / "apify"
# Set (to "asan", say) when EXT is a sanitizer build: the host processes then run with the ASan
# runtime preloaded, so tests that run them under valgrind, or in hosts that cannot take that
# runtime, skip themselves (skip_under_sanitizer; shell() with a valgrind prefix does it itself).
SANITIZER = os.environ.get("APIFY_SANITIZER", "")
# The SQLite the suites run on (make test-sqlite-3.53): APIFY_SQLITE3 is the sqlite3 shell to
# run (Debian's by default), APIFY_SQLITE_LIB a directory holding the libsqlite3.so.0 that
# Python's sqlite3 module and every other host process load (through LD_LIBRARY_PATH: set here
# for the children; tests/run.py restarts itself with it so that its own sqlite3 module has it).
SQLITE3 = os.environ.get("APIFY_SQLITE3") or "sqlite3"
SQLITE_LIB = os.environ.get("APIFY_SQLITE_LIB", "")
if SQLITE_LIB and os.environ.get("LD_LIBRARY_PATH", "").split(":")[0] != SQLITE_LIB:
    os.environ["LD_LIBRARY_PATH"] = ":".join(
        p for p in (SQLITE_LIB, os.environ.get("LD_LIBRARY_PATH")) if p)
# Debian's Python: its sqlite3 module can load extensions (the pyenv one on PATH cannot).
DEBIAN_PYTHON = "/usr/bin/python3"


_sqlite_version = None


def sqlite_version():
    """The version of the SQLite the sqlite3 shell (SQLITE3) runs on, as a tuple: (3, 40, 1).
    Where versions differ in what they allow (3.53 refuses DIRECTONLY functions in CHECK
    constraints; json() reads JSON5 from 3.42), tests expect each version's own answer."""
    global _sqlite_version
    if _sqlite_version is None:
        proc = subprocess.run([SQLITE3, ":memory:", "SELECT sqlite_version();"],
                              capture_output=True, text=True, timeout=30, cwd=str(ROOT))
        _sqlite_version = tuple(int(x) for x in proc.stdout.strip().split("."))
    return _sqlite_version


class ShellResult:
    """What shell() returns: rc, stdout, stderr, and the stdout lines."""

    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr
        self.lines = proc.stdout.splitlines()

    def __repr__(self):
        return f"<ShellResult rc={self.rc} out={self.out[-600:]!r} err={self.err[-600:]!r}>"


def shell(sql, emu=None, db=":memory:", token=TOKEN, env=None, load=True, timeout=120,
          args=(), prefix=()):
    """Run sql through the real sqlite3 shell with the extension loaded (from stdin, in
    autocommit mode, like a user typing). APIFY_API_BASE_URL and APIFY_TOKEN point at emu;
    token=None unsets the token. prefix: a command line to run the shell under (valgrind)."""
    if SANITIZER and prefix and os.path.basename(prefix[0]) == "valgrind":
        raise unittest.SkipTest(f"valgrind cannot run a {SANITIZER} build of the module")
    environ = dict(emu.env(token or "") if emu else os.environ)
    if token is None:
        environ.pop("APIFY_TOKEN", None)
    environ.update(env or {})
    script = (f".load {EXT}\n" if load else "") + sql
    proc = subprocess.run([*prefix, SQLITE3, *args, str(db)], input=script, capture_output=True,
                          text=True, env=environ, cwd=str(ROOT), timeout=timeout)
    return ShellResult(proc)


def skip_under_sanitizer(reason):
    """Decorator: skip a test or class when the suites run against a sanitizer build (valgrind
    on top of ASan, or a host such as node that cannot run with the ASan runtime preloaded)."""
    return unittest.skipIf(SANITIZER, f"{reason} (APIFY_SANITIZER={SANITIZER})")


def connect(emu, db=":memory:", token=TOKEN, **kwargs):
    """A Python sqlite3 connection with the extension loaded and pointed at emu."""
    import sqlite3
    conn = sqlite3.connect(str(db), **kwargs)
    conn.enable_load_extension(True)
    conn.load_extension(str(EXT))
    conn.enable_load_extension(False)
    conn.execute("SELECT apify_config('base_url', ?)", (emu.base_url,))
    if token is not None:
        conn.execute("SELECT apify_config('token', ?)", (token,))
    return conn


def closed_port():
    """A loopback port nobody listens on (bound, then released)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- helpers of the fault, crash and security suites ---------------------------------------------

def shell_env(emu=None, token=TOKEN, env=None):
    """The environment shell() gives the sqlite3 shell (see shell())."""
    environ = dict(emu.env(token or "") if emu else os.environ)
    if token is None:
        environ.pop("APIFY_TOKEN", None)
    environ.update(env or {})
    return environ


def start_shell(sql, emu=None, db=":memory:", token=TOKEN, env=None, load=True, args=()):
    """Start the sqlite3 shell like shell() does, without waiting for it: it reads sql from its
    stdin (a temporary file). Returns the Popen; stdout and stderr are pipes, read them with
    communicate(timeout=...) once it ends or after killing it."""
    script = tempfile.TemporaryFile()
    script.write(((f".load {EXT}\n" if load else "") + sql).encode("utf-8"))
    script.seek(0)
    with script:
        proc = subprocess.Popen([SQLITE3, *args, str(db)], stdin=script,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=shell_env(emu, token, env), cwd=str(ROOT))
    weakref.finalize(proc, _kill, proc)
    return proc


def self_signed_cert(directory, host="127.0.0.1"):
    """Make a self-signed certificate for host (also valid for localhost) with the openssl
    command, in directory. Returns (cert_pem, key_pem) paths. Raises if openssl is missing."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("the openssl command is not installed")
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext",
                    f"subjectAltName=IP:{host},DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def local_rows(db, emu=None, token=TOKEN):
    """The rows of apify_webhooks in database file db, as dicts, read through the virtual
    table in the sqlite3 shell (rowid included), in rowid order, with the token that wrote them
    (records written under another token read as 'unverified')."""
    r = shell(".mode json\nSELECT rowid, * FROM apify_webhooks ORDER BY rowid;\n", emu, db=db,
              token=token)
    if r.rc != 0 or r.err:
        raise AssertionError(f"reading apify_webhooks failed: {r}")
    return json.loads(r.out) if r.out.strip() else []


def assert_one_per_row(test, emu, db, n):
    """Nothing lost, nothing duplicated: the emulator holds exactly n webhooks with n distinct
    idempotency keys, apify_webhooks in db has n rows, all 'created', with the same keys, and
    ids, conditions, URLs and Locations agree key by key. test is the unittest.TestCase that
    asserts. Returns the local rows."""
    hooks = emu.webhooks()
    rows = local_rows(db, emu)
    remote = {w["idempotencyKey"]: w for w in hooks}
    local = {r["idempotency_key"]: r for r in rows}
    test.assertEqual(len(hooks), n, "webhooks on the emulator")
    test.assertEqual(len(remote), n, "distinct idempotency keys on the emulator")
    test.assertEqual(len(rows), n, "rows in apify_webhooks")
    test.assertEqual(set(remote), set(local), "keys: emulator vs apify_webhooks")
    statuses = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    test.assertEqual(statuses, {"created": n}, "statuses in apify_webhooks")
    test.assertEqual({k: w["id"] for k, w in remote.items()},
                     {k: r["id"] for k, r in local.items()}, "ids, key by key")
    for key, row in local.items():
        test.assertEqual(remote[key]["condition"], {"actorId": row["actor_id"]}, key)
        test.assertEqual(remote[key]["requestUrl"], row["request_url"], key)
        test.assertEqual(row["http_status"], 201, key)
        test.assertEqual(row["location"], f"{emu.base_url}/v2/webhooks/{row['id']}", key)
    test.assertEqual(len({w["condition"].get("actorId") for w in hooks}), n, "one per actor")
    test.assertNotIn("emulator bug", emu.stderr_text())
    return rows


class EmulatorCase(unittest.TestCase):
    """A test class with one emulator (class attributes `knobs` and `tokens`), reset before each
    test, and a fresh temporary directory per test: self.tmp, with self.db a database path
    (named `db_name`) inside it."""
    knobs = {}
    tokens = None
    db_name = "t.db"

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(tokens=cls.tokens, **cls.knobs)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.reset()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.db = os.path.join(self.tmp.name, self.db_name)
