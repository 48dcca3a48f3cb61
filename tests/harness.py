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
import subprocess
import sys
import tempfile
import threading
import time
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

# Knobs with a command-line flag of their own; a list becomes a repeated or comma-joined flag.
_CLI_KNOBS = ("latency_ms", "rate_limit", "rate_limit_header", "retry_after", "fail_5xx",
              "cut_after_create", "slow_ms", "slow", "malformed", "max_webhooks", "seed", "script")


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

    Emulator(tokens=None, **knobs): tokens is a list of accepted tokens (default [TOKEN]);
    knobs are the emulator's (latency_ms, rate_limit, script=[...], ...), given as flags.
    """

    def __init__(self, tokens=None, **knobs):
        unknown = set(knobs) - set(_CLI_KNOBS)
        if unknown:
            raise TypeError(f"unknown emulator knobs: {sorted(unknown)}")
        cmd = [sys.executable, str(EMULATOR_SCRIPT), "--port", "0"]
        for token in tokens or [TOKEN]:
            cmd += ["--token", token]
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
        if not line.startswith("listening on http://"):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}\n{self.stderr_text()}")
        self.base_url = line[len("listening on "):].strip()
        self.port = int(self.base_url.rsplit(":", 1)[1])
        self.host = self.base_url[len("http://"):].rsplit(":", 1)[0]

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
            with _opener.open(req, timeout=timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return Response(err.code, err.headers, err.read())

    def _control(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with _opener.open(req, timeout=CONTROL_TIMEOUT) as resp:
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

    def webhooks(self):
        """All webhooks of all users, each with its idempotencyKey and userId."""
        return self.state()["webhooks"]

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

EXT = ROOT / "build" / "apify"           # .load finds apify.so (apify.dylib on macOS)
SQLITE3 = "sqlite3"
# Debian's Python: its sqlite3 module can load extensions (the pyenv one on PATH cannot).
DEBIAN_PYTHON = "/usr/bin/python3"


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
    environ = dict(emu.env(token or "") if emu else os.environ)
    if token is None:
        environ.pop("APIFY_TOKEN", None)
    environ.update(env or {})
    script = (f".load {EXT}\n" if load else "") + sql
    proc = subprocess.run([*prefix, SQLITE3, *args, str(db)], input=script, capture_output=True,
                          text=True, env=environ, cwd=str(ROOT), timeout=timeout)
    return ShellResult(proc)


def can_load_extensions():
    """True if this Python's sqlite3 module can load extensions."""
    import sqlite3
    return hasattr(sqlite3.Connection, "enable_load_extension")


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
