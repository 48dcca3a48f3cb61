-- demo.sql: apify-sqlite in ten minutes. A table of actors, one webhook made with a function,
-- one webhook per actor made with one INSERT ... SELECT, the same INSERT again (nothing is sent
-- twice), a bad row and its message, and a view over the records the extension keeps; then the
-- rest of a webhook's life: a typo in some URLs fixed with UPDATE (PUT at commit), the webhooks
-- of retired actors removed with DELETE (DELETE at commit), two webhooks pointed at your own
-- endpoints, what such an endpoint will receive (apify_preview_dispatch(), offline), a test
-- delivery (apify_test_webhook()), and the dispatch log (apify_webhook_dispatches), where a
-- delivery that your endpoint answered with 500 reads FAILED.
--
-- `make demo` runs this file in the sqlite3 shell against the local Apify emulator
-- (tests/emulator.py): no account is needed and nothing reaches api.apify.com. It also plays
-- your endpoints (a small receiver on 127.0.0.1, named in the endpoints table before the shell
-- starts, which answers 200, and 500 under /down/) and, before step 16, a successful run of
-- each of the two actors of that table, whose dispatches the emulator delivers there.
--
-- To run it against your own Apify account instead (it creates about ten webhooks there, which
-- you delete afterwards), put ids of your own actors in the actors table below, and URLs of
-- endpoints you control in the endpoints table (step 13), then, from the repository root:
--
--     export APIFY_TOKEN=...            # your API token; APIFY_API_BASE_URL left unset
--     sqlite3 demo.db < sql/demo.sql
--
-- Step 16 lists the dispatches the account has: start a run of those two actors (in the
-- Console) before it to see theirs.
--
-- The token is read from the environment: it never appears in SQL, nor in the database file.
-- The file can be run again on the same database: what exists already is kept, except that the
-- webhooks of the retired actors, deleted in step 12, are made again by the INSERTs of steps 5
-- and 10 (an INSERT says "this webhook should exist"), fixed again in step 11 and deleted again.

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

.print ''
.print '== 10. Alerts for failed runs of three actors, sent at commit (with a typo in the host)'
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://alerts.exmaple.com/' || name, '["ACTOR.RUN.FAILED"]', actor_id,
         'apify-sqlite demo: alert'
    FROM actors WHERE name IN ('amazon-product-scraper', 'google-maps-reviews', 'youtube-comments');
SELECT actor_id, status, request_url FROM apify_webhooks WHERE request_url LIKE '%exmaple%';

.print ''
.print '== 11. UPDATE fixes the typo: one PUT /v2/webhooks/{id} per row at commit'
UPDATE apify_webhooks SET request_url = replace(request_url, 'exmaple', 'example')
 WHERE request_url LIKE '%exmaple%';
SELECT actor_id, status, operation, request_url, http_status FROM apify_webhooks
 WHERE description = 'apify-sqlite demo: alert';

.print ''
.print '== 12. Retired actors: DELETE sends DELETE /v2/webhooks/{id} at commit, and their rows go'
CREATE TABLE IF NOT EXISTS retired(actor_id TEXT PRIMARY KEY);
INSERT OR IGNORE INTO retired(actor_id) VALUES ('BAuKn53AoncVoWb3q'), ('TTD3kRSX3iv7nLReg');
DELETE FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM retired);
SELECT count(*) AS webhooks FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM retired);
.print '   The store keeps a tombstone of each (status deleted) as the history of its record:'
SELECT status, operation, count(*) AS records FROM apify_webhooks_store GROUP BY 1, 2 ORDER BY 1, 2;

.print ''
.print '== 13. Your own endpoints: the webhooks of two actors now post to them (UPDATE: PUT)'
CREATE TABLE IF NOT EXISTS endpoints(actor_id TEXT PRIMARY KEY, url TEXT NOT NULL);
INSERT OR IGNORE INTO endpoints(actor_id, url) VALUES
  ('XwOADhUViWuyvwYmu', 'https://example.com/your-endpoint'),
  ('2GuX9KZTANhv2PMXo', 'https://example.com/your-other-endpoint');
SELECT e.actor_id, a.name, e.url FROM endpoints AS e JOIN actors AS a USING (actor_id);
UPDATE apify_webhooks
   SET request_url = (SELECT url FROM endpoints AS e WHERE e.actor_id = apify_webhooks.actor_id),
       payload_template = '{"runId": {{resource.id}}, "status": {{resource.status}}, '
                          || '"datasetId": {{resource.defaultDatasetId}}}',
       headers_template = '{"X-Demo": "apify-sqlite"}'
 WHERE actor_id IN (SELECT actor_id FROM endpoints) AND description = 'apify-sqlite demo';
SELECT actor_id, status, operation, request_url FROM apify_webhooks
 WHERE actor_id IN (SELECT actor_id FROM endpoints);

.print ''
.print '== 14. What the endpoint will receive, offline: apify_preview_dispatch()'
.mode line
SELECT p ->> '$.method' || ' ' || (p ->> '$.url') AS request, p -> '$.headers' AS headers,
       p ->> '$.payload' AS payload
  FROM (SELECT apify_preview_dispatch(json_set(webhook, '$.id', id)) AS p FROM apify_webhooks
         WHERE actor_id = 'XwOADhUViWuyvwYmu' AND description = 'apify-sqlite demo');
.mode box
.print '   (sample values stand in for the run; a real dispatch carries its own)'

.print ''
.print '== 15. A test delivery: apify_test_webhook() (POST /v2/webhooks/{id}/test)'
-- MATERIALIZED: the function runs once per row, however many columns read its result.
WITH t(d) AS MATERIALIZED (
  SELECT apify_test_webhook(id) FROM apify_webhooks
   WHERE actor_id = 'XwOADhUViWuyvwYmu' AND description = 'apify-sqlite demo')
SELECT d ->> '$.eventType' AS event_type, d ->> '$.status' AS status,
       d ->> '$.calls[0].responseStatus' AS response_status FROM t;

.print ''
.print '== 16. Both actors ran; one endpoint answered 500: the dispatch log says FAILED'
SELECT webhook_id, event_type, status, response_status FROM apify_webhook_dispatches;
SELECT webhook_id, status, response_status, calls ->> '$[0].responseBody' AS answer,
       error_message
  FROM apify_webhook_dispatches WHERE status = 'FAILED';
