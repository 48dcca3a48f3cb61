// create_webhooks.js: Node.js with better-sqlite3 loads the apify extension, creates one
// webhook per actor with INSERT ... SELECT and one with apify_create_webhook(), and prints them.
//
//   npm ci --prefix tests/hosts                      # better-sqlite3 12, pinned
//   APIFY_TOKEN=... node tests/hosts/create_webhooks.js [DATABASE [EXTENSION]]
//
// DATABASE defaults to hooks.db, EXTENSION to ./build/apify (run it from the repository root).
// The extension reads APIFY_TOKEN and APIFY_API_BASE_URL itself. tests/test_hosts.py runs this
// file against the local emulator; the README shows its middle part.
'use strict';
const [dbPath = 'hooks.db', extPath = './build/apify'] = process.argv.slice(2);

const Database = require('better-sqlite3');

const db = new Database(dbPath);
db.loadExtension(extPath);

db.exec(`CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);
         INSERT OR IGNORE INTO actors VALUES ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),
                                             ('VFwAHUN9ntITvHeUX', 'google-maps-reviews');`);

// Autocommit: the requests go out, and their outcomes are recorded, before run() returns.
db.prepare(`INSERT INTO apify_webhooks(request_url, event_types, actor_id)
            SELECT 'https://example.com/hooks/' || name, '["ACTOR.RUN.SUCCEEDED"]', actor_id
              FROM actors`).run();
for (const row of db.prepare('SELECT actor_id, status, id FROM apify_webhooks').iterate()) {
  console.log(`${row.actor_id} ${row.status} ${row.id}`);
}

const hook = JSON.parse(db.prepare('SELECT apify_create_webhook(?) AS hook').get(JSON.stringify({
  requestUrl: 'https://example.com/hooks/node',
  eventTypes: ['ACTOR.RUN.FAILED'],
  condition: { actorId: 'ElULtm4UAWTWqIpO0' },
})).hook);
console.log(`apify_create_webhook: ${hook.id}`);
db.close();
