"""create_webhooks.py: Python's sqlite3 loads the apify extension, creates one webhook per actor
with INSERT ... SELECT and one with apify_create_webhook(), and prints them.

    APIFY_TOKEN=... /usr/bin/python3 tests/hosts/create_webhooks.py [DATABASE [EXTENSION]]

DATABASE defaults to hooks.db, EXTENSION to ./build/apify (run it from the repository root).
Use a Python whose sqlite3 module can load extensions: Debian's /usr/bin/python3 can; many
self-built ones (pyenv's, say) cannot. The extension reads APIFY_TOKEN and APIFY_API_BASE_URL
itself. tests/test_hosts.py runs this file against the local emulator; the README shows its
middle part.
"""
import json
import sqlite3
import sys

db_path = sys.argv[1] if len(sys.argv) > 1 else "hooks.db"
ext_path = sys.argv[2] if len(sys.argv) > 2 else "./build/apify"

conn = sqlite3.connect(db_path)
conn.enable_load_extension(True)
conn.load_extension(ext_path)
conn.enable_load_extension(False)

conn.execute("CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL)")
conn.executemany("INSERT OR IGNORE INTO actors VALUES (?, ?)",
                 [("ElULtm4UAWTWqIpO0", "amazon-product-scraper"),
                  ("VFwAHUN9ntITvHeUX", "google-maps-reviews")])
conn.execute("""INSERT INTO apify_webhooks(request_url, event_types, actor_id)
                SELECT 'https://example.com/hooks/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id
                  FROM actors""")
conn.commit()   # Python opened a transaction for the INSERTs: the requests go out here
for actor_id, status, webhook_id in conn.execute(
        "SELECT actor_id, status, id FROM apify_webhooks"):
    print(actor_id, status, webhook_id)

(hook,) = conn.execute("SELECT apify_create_webhook(?)", (json.dumps({
    "requestUrl": "https://example.com/hooks/python",
    "eventTypes": ["ACTOR.RUN.FAILED"],
    "condition": {"actorId": "ElULtm4UAWTWqIpO0"},
}),)).fetchone()
print("apify_create_webhook:", json.loads(hook)["id"])
conn.close()
