-- lifecycle.sql: change webhooks that exist (UPDATE: a typo in their URL) and delete those no longer wanted (DELETE: the retired actors').
--
-- An UPDATE of request columns sends PUT /v2/webhooks/{id} with only the fields that changed; a
-- DELETE sends DELETE /v2/webhooks/{id}. Both go out when the statement commits (in the shell:
-- before it returns), paced and retried like the creates, and each outcome is recorded. They act
-- only on records this database can prove it wrote for this account (or adopted: see
-- adopt.sql). Run the file again and nothing is sent: the typo is gone, the deleted rows too.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/lifecycle.sql     # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table. fleet: your actors; retired = 1 marks the actors
-- whose webhooks must go.
CREATE TABLE IF NOT EXISTS fleet(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL,
                                 retired INTEGER NOT NULL DEFAULT 0);
CREATE TEMP TABLE sample AS
  SELECT column1 AS actor_id, column2 AS name, column3 AS retired
    FROM (VALUES ('XwOADhUViWuyvwYmu', 'website-content-crawler', 0),
                 ('BAuKn53AoncVoWb3q', 'tripadvisor-hotels',      0),
                 ('2GuX9KZTANhv2PMXo', 'linkedin-jobs-monitor',   1),
                 ('pDximxFM1OjqyNvv8', 'shopify-price-watch',     1))
   WHERE NOT EXISTS (SELECT 1 FROM fleet);
INSERT INTO fleet(actor_id, name, retired) SELECT actor_id, name, retired FROM temp.sample;
-- Sample: the webhooks made earlier, with a typo in their host (hooks.exmaple.com). Made the
-- first time this file runs only; leave this INSERT out on your own database.
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://hooks.exmaple.com/' || name, json_array('ACTOR.RUN.SUCCEEDED'), actor_id,
         'lifecycle.sql sample'
    FROM temp.sample;

.print 'Before:'
SELECT actor_id, status, operation, request_url
  FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM fleet);

-- Both statements in one transaction: they go out together at COMMIT (a ROLLBACK instead would
-- send nothing), and a webhook both updated and deleted sends one DELETE, no PUT.
BEGIN;

-- 1. Fix the typo: one PUT per webhook, whose body is {"requestUrl": "..."} alone. The
--    idempotency key stays the record's: running the INSERT that made them sends nothing.
UPDATE apify_webhooks SET request_url = replace(request_url, 'exmaple', 'example')
 WHERE request_url LIKE '%exmaple%';

-- 2. Delete the webhooks of the retired actors: one DELETE each (the API's 404 means gone too).
--    The rows leave apify_webhooks; the store keeps a tombstone (status 'deleted') with the
--    record's history, and the same INSERT run again would create the webhook anew.
DELETE FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM fleet WHERE retired);

.print 'Queued, not sent yet:'
SELECT actor_id, status, operation, request_url
  FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM fleet);

COMMIT;

.print 'After:'
SELECT actor_id, status, operation, http_status, request_url
  FROM apify_webhooks WHERE actor_id IN (SELECT actor_id FROM fleet);

.print 'Deleted (tombstones in the store):'
SELECT json_extract(request, '$.condition.actorId') AS actor_id, status, operation, id,
       http_status
  FROM apify_webhooks_store
 WHERE status = 'deleted'
   AND json_extract(request, '$.condition.actorId') IN (SELECT actor_id FROM fleet);
