"""The no-network entry point, sqlite3_apify_no_network_init: for hosts that run other people's
top-level SQL (Datasette), where DIRECTONLY stops nothing. Loading it registers only what sends
nothing and reveals no secret; the dry run then reads no token and no environment. Proved from
pragma_function_list and pragma_module_list, through the sqlite3 shell and through Python's
sqlite3 (SQL load_extension(path, entry point): Python 3.11 has no entry point argument)."""

import json
import os
import subprocess
import unittest

from tests import harness
from tests.harness import EXT, ROOT, shell

ENTRY = "sqlite3_apify_no_network_init"
HOOK = {"requestUrl": "https://example.com/h", "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
        "condition": {"actorId": "HDSasDasz78YcAPEB"}}
# Whatever registers apify_* functions or modules, this is all the no-network entry point may
# show: the dry run, the version, and (once it exists) the dispatch preview.
ALLOWED_FUNCTIONS = {"apify_dry_run", "apify_version", "apify_preview_dispatch"}
LIST = ("SELECT 'f', name FROM pragma_function_list WHERE name LIKE 'apify%'\n"
        " UNION SELECT 'm', name FROM pragma_module_list WHERE name LIKE 'apify%' ORDER BY 1, 2;\n")
NETWORK_NAMES = ("apify_create_webhook", "apify_config", "apify_webhooks", "apify_test_webhook")


def q(value):
    return "'" + json.dumps(value).replace("'", "''") + "'"


class NoNetworkEntryPoint(harness.EmulatorCase):

    def load(self, sql):
        """sql in the sqlite3 shell after .load with the no-network entry point; the token and
        base URL of the emulator are in the environment."""
        return shell(f".load {EXT} {ENTRY}\n" + sql, self.emu, load=False)

    def assertOnlySafeNames(self, rows):
        functions = {name for kind, name in rows if kind == "f"}
        modules = {name for kind, name in rows if kind == "m"}
        self.assertEqual(modules, set(), rows)
        self.assertLessEqual(functions, ALLOWED_FUNCTIONS, rows)
        self.assertIn("apify_dry_run", functions)
        self.assertIn("apify_version", functions)
        for name in NETWORK_NAMES:
            self.assertNotIn(name, functions | modules)
        self.assertFalse([n for n in functions | modules if n.startswith("apify_remote")], rows)

    def test_shell_registers_only_the_safe_functions(self):
        r = self.load(LIST)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertOnlySafeNames([line.split("|", 1) for line in r.lines])

    def test_the_full_entry_point_still_registers_everything(self):
        # The same listing with the default entry point: the names above are really there,
        # so their absence in the no-network listing means something.
        r = shell(LIST, self.emu)
        self.assertEqual(r.rc, 0, r)
        names = {line.split("|", 1)[1] for line in r.lines}
        for name in ("apify_create_webhook", "apify_config", "apify_webhooks"):
            self.assertIn(name, names)

    def test_network_functions_and_table_do_not_exist(self):
        r = self.load(f"SELECT apify_create_webhook({q(HOOK)});\n"
                      "SELECT apify_config('base_url', 'https://evil.example');\n"
                      "INSERT INTO apify_webhooks(request_url, event_types, actor_id)"
                      " VALUES ('https://example.com/h', '[\"TEST\"]', 'a1');\n"
                      "SELECT 'still here';\n")
        self.assertIn("no such function: apify_create_webhook", r.err)
        self.assertIn("no such function: apify_config", r.err)
        self.assertIn("no such table: apify_webhooks", r.err)
        self.assertEqual(r.lines, ["still here"])
        self.assertEqual(self.emu.log(), [])

    def test_dry_run_reads_no_token_and_no_environment(self):
        # APIFY_TOKEN and APIFY_API_BASE_URL are set (to the emulator): neither shows.
        r = self.load(f"SELECT apify_dry_run({q(HOOK)});\nSELECT apify_version();\n")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        request = json.loads(r.lines[0])
        self.assertEqual(request["url"], "https://api.apify.com/v2/webhooks")
        self.assertNotIn("Authorization", request["headers"])
        self.assertEqual(request["body"]["requestUrl"], HOOK["requestUrl"])
        self.assertNotIn(self.emu.base_url, r.out)
        self.assertNotIn(harness.TOKEN, r.out)
        self.assertRegex(r.lines[1], r"^\d+\.\d+\.\d+$")
        self.assertEqual(self.emu.log(), [])

    def test_python_sqlite3_loads_it_by_sql(self):
        code = ("import json, sqlite3, sys\n"
                "conn = sqlite3.connect(':memory:')\n"
                "conn.enable_load_extension(True)\n"
                "conn.execute('SELECT load_extension(?, ?)', (sys.argv[1], sys.argv[2]))\n"
                "conn.enable_load_extension(False)\n"
                "rows = conn.execute(sys.argv[3]).fetchall()\n"
                "print(json.dumps(rows))\n")
        proc = subprocess.run([harness.DEBIAN_PYTHON, "-c", code, str(EXT), ENTRY, LIST],
                              capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                              env=self.emu.env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertOnlySafeNames(json.loads(proc.stdout))


if __name__ == "__main__":
    unittest.main()
