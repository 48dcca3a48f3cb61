-- preview_and_test.sql: preview every webhook of a table, test them all, list what failed.
--
-- 1. What each endpoint will receive: apify_preview_dispatch(webhook) renders the payload and
--    headers templates offline with sample values (no token, nothing sent). 2. A test delivery
--    of each: apify_test_webhook(id) sends POST /v2/webhooks/{id}/test, and the platform POSTs
--    a TEST dispatch to the webhook's URL. 3. What failed: each test dispatch read back from the
--    webhook's dispatch log (apify_webhook_dispatches(id), GET /v2/webhooks/{id}/dispatches),
--    with the endpoint's answer or the error; a dispatch still ACTIVE is being delivered: run
--    the last query again in a few seconds.
--
-- The webhooks are those apify_webhooks has created; narrow the WHERE of the `tested` table to
-- test fewer (each test is one request and one delivery). Run the file again: the webhooks are
-- tested again, nothing is created.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/preview_and_test.sql  # from the repository root

.load ./build/apify
.mode box

-- Sample: two webhooks to test. Leave this out on your own database.
INSERT INTO apify_webhooks(request_url, event_types, actor_id, payload_template, description)
VALUES
  ('https://hooks.example.com/preview/orders', '["ACTOR.RUN.SUCCEEDED"]', 'Q6yxhrYSnT8CvgxNz',
   '{"run": {{resource.id}}, "dataset": {{resource.defaultDatasetId}}}',
   'preview_and_test.sql sample'),
  ('https://hooks.example.com/preview/alerts', '["ACTOR.RUN.FAILED"]', 'Q6yxhrYSnT8CvgxNz',
   NULL, 'preview_and_test.sql sample');

.print 'What each endpoint will receive (offline, with sample values):'
.mode line
SELECT id, p ->> '$.url' AS url, p -> '$.headers' AS headers, p ->> '$.payload' AS payload
  FROM (SELECT id, apify_preview_dispatch(json_set(webhook, '$.id', id)) AS p
          FROM apify_webhooks WHERE status = 'created');
.mode box

-- One test per webhook, kept in a TEMP table: each apify_test_webhook() call is a request and
-- a delivery, so it must run exactly once per row, whatever reads its result afterwards.
DROP TABLE IF EXISTS temp.tested;
CREATE TEMP TABLE tested AS
  SELECT id AS webhook_id, request_url, apify_test_webhook(id) AS dispatch
    FROM apify_webhooks WHERE status = 'created';

.print 'Tested:'
SELECT count(*) AS webhooks, count(DISTINCT dispatch ->> '$.id') AS test_dispatches
  FROM tested;

.print 'What failed (or is still being delivered):'
SELECT t.webhook_id, t.request_url, d.status, d.response_status,
       d.calls ->> '$[0].responseBody' AS answer, d.error_message
  FROM tested AS t, apify_webhook_dispatches(t.webhook_id) AS d
 WHERE d.id = t.dispatch ->> '$.id' AND d.status <> 'SUCCEEDED'
 ORDER BY t.webhook_id;
