"""Run every test of apify-sqlite and end with one line: `N passed, N failed`.

    /usr/bin/python3 tests/run.py [--build DIR] [PATTERN ...]

Runs the C unit-test programs in build/ (each prints its own `N passed, N failed`; an emulator
they may send to is in APIFY_TEST_BASE_URL), then every unittest module tests/test_*.py (or
those whose names contain one of the PATTERNs). --build build-asan (or build-cov) runs the unit
programs of that directory and loads its module (APIFY_EXT) instead (make test-asan, coverage).
Debian's /usr/bin/python3 is used because its sqlite3 module can load extensions. `make test`
builds first and calls this.

Another SQLite (make test-sqlite-3.53): APIFY_SQLITE3 names the sqlite3 shell, APIFY_SQLITE_LIB
the directory of its libsqlite3.so.0 (this script restarts itself with it on LD_LIBRARY_PATH,
so its own sqlite3 module and every child load it), APIFY_EXT the module built against it; with
APIFY_SQLITE_VERSION, a run whose shell or Python reports another version counts a failure.
"""
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
UNIT_PROGRAMS = ["build/test_request", "build/test_alloc"]
# What the nested `make test` of the fresh-copy test runs (see main()).
NESTED_SUITES = ["test_request", "test_function", "test_vtab", "test_lifecycle", "test_preview",
                 "test_no_network", "test_readme"]
BUILD = "build"        # the build directory of the unit programs (--build)


class CountingResult(unittest.TextTestResult):
    """A text result that also counts passes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def unit_env(emu):
    """The environment of the unit programs: APIFY_TEST_BASE_URL is an emulator they may send
    to (token tests.harness.TOKEN); APIFY_UNIT_ASAN_OPTIONS, when set, replaces ASAN_OPTIONS
    (make test-asan: leak detection on for the unit programs, off for the preloaded hosts)."""
    env = dict(os.environ)
    if emu is not None:
        env["APIFY_TEST_BASE_URL"] = emu.base_url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    if "APIFY_UNIT_ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] = env["APIFY_UNIT_ASAN_OPTIONS"]
    return env


def start_emulator():
    """An emulator for the unit programs that send, or None when it cannot start."""
    sys.path.insert(0, ROOT)
    try:
        from tests.harness import Emulator
        return Emulator()
    except Exception as err:  # the unit programs then skip their sending parts
        print(f"(no emulator for the unit programs: {err})")
        return None


def run_unit_programs(patterns):
    passed = failed = 0
    progs = [p for p in UNIT_PROGRAMS if not patterns or any(q in p for q in patterns)]

    emu = start_emulator() if progs else None
    try:
        for prog in progs:
            p, f = run_unit_program(prog, unit_env(emu))
            passed += p
            failed += f
    finally:
        if emu is not None:
            emu.stop()
    return passed, failed


def run_unit_program(prog, env):
    """Run one unit program (of the BUILD directory); its (passed, failed)."""
    path = os.path.join(ROOT, BUILD, prog[len("build/"):]) if prog.startswith("build/") \
        else os.path.join(ROOT, prog)
    print(f"== {prog}", flush=True)
    proc = subprocess.run([path], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    sys.stdout.write(proc.stdout[-4000:])
    sys.stdout.write(proc.stderr[-4000:])
    m = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    if m is None:
        print(f"{prog}: no summary line (exit {proc.returncode})")
        return 0, 1
    failed = int(m.group(2)) + (1 if proc.returncode != 0 and m.group(2) == "0" else 0)
    return int(m.group(1)), failed


def run_python_tests(patterns):
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    sys.path.insert(0, ROOT)
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        module = name[:-3]
        if patterns and not any(p in module for p in patterns):
            continue
        suite.addTests(loader.loadTestsFromName(f"tests.{module}"))
    runner = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult, stream=sys.stdout)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    return result.passed, failed, len(result.skipped)


def sanitizer_reports():
    """The reports ASan and UBSan wrote under APIFY_SANITIZER_REPORTS (make test-asan: their
    log_path), printed; each counts as a failure, whether or not its test noticed."""
    directory = os.environ.get("APIFY_SANITIZER_REPORTS")
    if not directory or not os.path.isdir(directory):
        return 0
    names = sorted(os.listdir(directory))
    for name in names:
        with open(os.path.join(directory, name), errors="replace") as f:
            print(f"== sanitizer report {name}\n{f.read()[-8000:]}")
    return len(names)


def sqlite_versions():
    """Which SQLite the suites run on: {host: version} for Python's sqlite3 module and the
    sqlite3 shell (APIFY_SQLITE3, else Debian's)."""
    import sqlite3
    shell = os.environ.get("APIFY_SQLITE3") or "sqlite3"
    proc = subprocess.run([shell, ":memory:", "SELECT sqlite_version();"], capture_output=True,
                          text=True, timeout=30)
    return {"python": sqlite3.sqlite_version, "shell": proc.stdout.strip() or proc.stderr.strip()}


def check_sqlite_versions():
    """Print the SQLite versions; with APIFY_SQLITE_VERSION (make test-sqlite-3.53) both hosts
    must run that one, else the run counts one failure (the matrix would test the wrong
    SQLite)."""
    versions = sqlite_versions()
    print("SQLite: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    want = os.environ.get("APIFY_SQLITE_VERSION")
    if want and set(versions.values()) != {want}:
        print(f"expected SQLite {want} in both hosts")
        return 1
    return 0


def main():
    global BUILD
    lib = os.environ.get("APIFY_SQLITE_LIB")
    if lib and os.environ.get("LD_LIBRARY_PATH", "").split(":")[0] != lib:
        # Another SQLite (make test-sqlite-3.53): restart with it first on LD_LIBRARY_PATH, so
        # that this process's sqlite3 module loads it too, and every child inherits it.
        env = dict(os.environ, LD_LIBRARY_PATH=":".join(
            p for p in (lib, os.environ.get("LD_LIBRARY_PATH")) if p))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    patterns = sys.argv[1:]
    if os.environ.get("APIFY_README_NESTED") == "1" and not patterns:
        # The fresh copy's `make test` (tests/test_readme.py FreshCopy) proves that the
        # README's commands build and test a clean tree; the outer run ran every suite on the
        # same files, so this one runs the quick ones that cover each layer.
        patterns = NESTED_SUITES
        print("(fresh copy: the quick suites " + " ".join(NESTED_SUITES) + ")")
    if patterns[:1] == ["--build"] and len(patterns) > 1:
        # Another build's unit programs and module; the suites (and the processes they start)
        # find the module through APIFY_EXT (tests/harness.py).
        BUILD, patterns = patterns[1].rstrip("/"), patterns[2:]
        os.environ["APIFY_EXT"] = os.path.join(ROOT, BUILD, "apify")
    start = time.monotonic()
    f0 = check_sqlite_versions()
    p1, f1 = run_unit_programs(patterns)
    p2, f2, skipped = run_python_tests(patterns)
    f3 = sanitizer_reports() + f0
    print(f"({time.monotonic() - start:.1f} s)")
    print(f"{p1 + p2} passed, {f1 + f2 + f3} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if f1 + f2 + f3 == 0 and p1 + p2 > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
