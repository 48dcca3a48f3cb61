"""Run every test of apify-sqlite and end with one line: `N passed, N failed`.

    /usr/bin/python3 tests/run.py [PATTERN ...]

Runs the C unit-test programs in build/ (each prints its own `N passed, N failed`), then every
unittest module tests/test_*.py (or those whose names contain one of the PATTERNs). Debian's
/usr/bin/python3 is used because its sqlite3 module can load extensions. `make test` builds
first and calls this.
"""
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
UNIT_PROGRAMS = ["build/test_request"]


class CountingResult(unittest.TextTestResult):
    """A text result that also counts passes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def run_unit_programs(patterns):
    passed = failed = 0
    for prog in UNIT_PROGRAMS:
        if patterns and not any(p in prog for p in patterns):
            continue
        path = os.path.join(ROOT, prog)
        print(f"== {prog}", flush=True)
        proc = subprocess.run([path], cwd=ROOT, capture_output=True, text=True, timeout=600)
        sys.stdout.write(proc.stdout[-4000:])
        sys.stdout.write(proc.stderr[-4000:])
        m = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
        if m is None:
            print(f"{prog}: no summary line (exit {proc.returncode})")
            failed += 1
            continue
        passed += int(m.group(1))
        failed += int(m.group(2)) + (1 if proc.returncode != 0 and m.group(2) == "0" else 0)
    return passed, failed


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


def main():
    patterns = sys.argv[1:]
    start = time.monotonic()
    p1, f1 = run_unit_programs(patterns)
    p2, f2, skipped = run_python_tests(patterns)
    print(f"({time.monotonic() - start:.1f} s)")
    print(f"{p1 + p2} passed, {f1 + f2} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if f1 + f2 == 0 and p1 + p2 > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
