-- demo.sql: apify-sqlite in ten minutes. A table of actors, one webhook made with a function,
-- one webhook per actor made with one INSERT ... SELECT, the same INSERT again (nothing is sent
-- twice), a bad row and its message, and a view over the records the extension keeps.
--
-- `make demo` runs this file in the sqlite3 shell against the local Apify emulator
-- (tests/emulator.py): no account is needed and nothing reaches api.apify.com.
--
-- To run it against your own Apify account instead (it creates about ten webhooks there, which
-- you delete afterwards), put ids of your own actors in the actors table below, then, from the
-- repository root:
--
--     export APIFY_TOKEN=...            # your API token; APIFY_API_BASE_URL left unset
--     sqlite3 demo.db < sql/demo.sql
--
-- The token is read from the environment: it never appears in SQL, nor in the database file.
-- The file can be run again on the same database: what exists already is kept.

.mode box

.print '== 1. Your data: a table of actors'
CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT OR IGNORE INTO actors(actor_id, name) VALUES
  ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),
  ('VFwAHUN9ntITvHeUX', 'google-maps-reviews'),
  ('3nSWUD7T13PjIn3Ad', 'instagram-profile-scraper'),
  ('XwOADhUViWuyvwYmu', 'website-content-crawler'),
  ('BAuKn53AoncVoWb3q', 'tripadvisor-hotels'),
  ('2GuX9KZTANhv2PMXo', 'linkedin-jobs-monitor'),
  ('pDximxFM1OjqyNvv8', 'shopify-price-watch'),
  ('TTD3kRSX3iv7nLReg', 'youtube-comments');
SELECT actor_id, name FROM actors ORDER BY rowid;

.print ''
.print '== 2. Load the extension (the token comes from APIFY_TOKEN; it reads back as "(set)")'
.load build/apify
SELECT apify_version() AS version, apify_config('base_url') AS base_url,
       apify_config('token') AS token;

.print ''
.print '== 3. What would be sent, without sending it: apify_dry_run()'
.mode line
SELECT req ->> '$.method' || ' ' || (req ->> '$.url') AS request,
       req -> '$.headers' ->> '$.Authorization' AS auth,
       req -> '$.body' AS body
  FROM (SELECT apify_dry_run(json_object(
          'requestUrl', 'https://example.com/hooks/first',
          'eventTypes', json_array('ACTOR.RUN.SUCCEEDED'),
          'condition',  json_object('actorId', 'ElULtm4UAWTWqIpO0'))) AS req);
.mode box

.print ''
.print '== 4. One webhook: apify_create_webhook() sends it and returns it as JSON (no record kept)'
SELECT hook ->> '$.id' AS id, hook ->> '$.requestUrl' AS request_url,
       hook ->> '$.condition.actorId' AS actor_id
  FROM (SELECT apify_create_webhook(json_object(
          'requestUrl', 'https://example.com/hooks/first',
          'eventTypes', json_array('ACTOR.RUN.SUCCEEDED'),
          'condition',  json_object('actorId', 'ElULtm4UAWTWqIpO0'))) AS hook);

.print ''
.print '== 5. One webhook per actor: INSERT ... SELECT into apify_webhooks, sent at commit'
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://example.com/hooks/' || name, '["ACTOR.RUN.SUCCEEDED","ACTOR.RUN.FAILED"]',
         actor_id, 'apify-sqlite demo'
    FROM actors;
SELECT actor_id, status, id, location FROM apify_webhooks;

.print ''
.print '== 6. The same INSERT again: every row is known already, so nothing is sent'
SELECT count(*) AS webhooks, sum(attempts) AS requests, max(completed_at) AS last_answer
  FROM apify_webhooks;
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://example.com/hooks/' || name, '["ACTOR.RUN.SUCCEEDED","ACTOR.RUN.FAILED"]',
         actor_id, 'apify-sqlite demo'
    FROM actors;
SELECT count(*) AS webhooks, sum(attempts) AS requests, max(completed_at) AS last_answer
  FROM apify_webhooks;

.print ''
.print '== 7. A new actor, the same INSERT once more: only the new row is sent'
INSERT OR IGNORE INTO actors(actor_id, name) VALUES ('81la5jCTpwofmZspS', 'zillow-listings');
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://example.com/hooks/' || name, '["ACTOR.RUN.SUCCEEDED","ACTOR.RUN.FAILED"]',
         actor_id, 'apify-sqlite demo'
    FROM actors;
SELECT count(*) AS webhooks, sum(attempts) AS requests FROM apify_webhooks;

.print ''
.print '== 8. A bad row: the statement fails before anything of it is sent, naming row and field'
INSERT INTO apify_webhooks(request_url, event_types, actor_id) VALUES
  ('https://example.com/hooks/weekly', '["ACTOR.RUN.SUCCEEDED"]', 'ElULtm4UAWTWqIpO0'),
  ('https://example.com/hooks/weekly', '["ACTOR.RUN.SUCCEDED"]',  'VFwAHUN9ntITvHeUX');
SELECT count(*) AS webhooks FROM apify_webhooks;

.print ''
.print '== 9. Reports and views read the store table, apify_webhooks_store'
CREATE VIEW IF NOT EXISTS actor_webhooks AS
  SELECT a.name, s.status, s.id AS webhook_id, s.http_status, s.completed_at
    FROM actors AS a
    LEFT JOIN apify_webhooks_store AS s
      ON json_extract(s.request, '$.condition.actorId') = a.actor_id;
SELECT name, status, webhook_id, http_status FROM actor_webhooks ORDER BY name;
.print ''
.print '   The tables the extension made in this database file:'
SELECT name, type FROM sqlite_schema WHERE name LIKE 'apify_webhooks%' ORDER BY name;
.print ''
.print '   A view over apify_webhooks itself is refused in a database file (it could spend your'
.print '   token when someone else opens the file); a view over the store is the way:'
CREATE VIEW IF NOT EXISTS pending_hooks AS SELECT id FROM apify_webhooks WHERE status = 'pending';
SELECT * FROM pending_hooks;
DROP VIEW pending_hooks;
