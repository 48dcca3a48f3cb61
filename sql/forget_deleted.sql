-- forget_deleted.sql: find the records whose webhook was deleted elsewhere (in the Console, by another program) and forget them.
--
-- A webhook deleted outside this database still reads 'created' in apify_webhooks, and running
-- the INSERT that made it sends nothing (its key is known). Compare the records with the account
-- (apify_remote_webhooks: GET /v2/webhooks, page by page) and DELETE the ones it no longer has:
-- each sends DELETE /v2/webhooks/{id}, the API answers 404, which means gone, and the record
-- becomes a tombstone (status 'deleted' in the store, no longer a row of apify_webhooks). The
-- INSERT that made it then creates the webhook again. Run the file again: nothing is sent.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/forget_deleted.sql  # from the repository root

.load build/apify
.mode box

-- Sample: two webhooks this database manages. Leave this out on your own database (and delete
-- one of them in the Console to see this file forget its record).
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description) VALUES
  ('https://hooks.example.com/nightly-report', '["ACTOR.RUN.SUCCEEDED"]', 'kJgDrWgjW8GWwXhca',
   'forget_deleted.sql sample'),
  ('https://hooks.example.com/nightly-alert', '["ACTOR.RUN.FAILED"]', 'kJgDrWgjW8GWwXhca',
   'forget_deleted.sql sample');

.print 'Records whose webhook is no longer on the account:'
SELECT rowid, id, actor_id, request_url, completed_at
  FROM apify_webhooks
 WHERE status = 'created' AND id NOT IN (SELECT id FROM apify_remote_webhooks);

-- Forget them. status = 'created' keeps out rows that never became a webhook (no id) and
-- records that read 'unverified', which cannot be deleted through the table (adopt.sql first).
DELETE FROM apify_webhooks
 WHERE status = 'created' AND id NOT IN (SELECT id FROM apify_remote_webhooks);

.print 'Forgotten (tombstones in the store):'
SELECT seq, id, json_extract(request, '$.requestUrl') AS request_url, http_status, completed_at
  FROM apify_webhooks_store WHERE status = 'deleted';
