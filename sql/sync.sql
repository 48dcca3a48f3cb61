-- sync.sql: make the account match a table of the webhooks you want: create what is missing, delete what is no longer wanted, leave the rest alone.
--
-- A webhook is wanted when a row of `wanted` has its request_url, actor_id and event_types.
-- 1. The account's webhooks that are wanted but not managed here are adopted (so they are not
--    made twice); 2. wanted webhooks that exist nowhere are created (failed rows are sent
--    again); 3. webhooks this database manages that are no longer wanted are deleted; 2 and 3
--    go out together at one COMMIT. Webhooks both wanted and there get no request. Webhooks of
--    the account that this database does not manage and nobody wants are listed, never
--    deleted: adopt them (adopt.sql) to let the next sync delete them. Run the file again and
--    nothing is sent.
--
-- Every webhook apify_webhooks manages is in the sync's reach: keep webhooks you manage for other
-- purposes in a table of their own (CREATE VIRTUAL TABLE nightly USING apify_webhooks).
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/sync.sql          # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table (or a view) of the webhooks you want.
CREATE TABLE IF NOT EXISTS wanted(request_url TEXT NOT NULL, actor_id TEXT NOT NULL,
                                  event_types TEXT NOT NULL,
                                  UNIQUE(request_url, actor_id, event_types));
CREATE TEMP TABLE sample AS
  SELECT column1 AS request_url, column2 AS actor_id, column3 AS event_types, column4 AS want
    FROM (VALUES
      ('https://hooks.example.com/sync/orders',  'Q6yxhrYSnT8CvgxNz', '["ACTOR.RUN.SUCCEEDED"]', 1),
      ('https://hooks.example.com/sync/refunds', 'Q6yxhrYSnT8CvgxNz', '["ACTOR.RUN.FAILED"]',    1),
      ('https://hooks.example.com/sync/stock',   'm2a1JjCzS7bp3ZcUe', '["ACTOR.RUN.SUCCEEDED"]', 1),
      ('https://hooks.example.com/sync/legacy',  'm2a1JjCzS7bp3ZcUe', '["ACTOR.RUN.SUCCEEDED"]', 0))
   WHERE NOT EXISTS (SELECT 1 FROM wanted);
INSERT INTO wanted SELECT request_url, actor_id, event_types FROM temp.sample WHERE want;
-- Sample: a webhook made earlier that is no longer wanted (the first time this file runs only).
INSERT INTO apify_webhooks(request_url, event_types, actor_id)
  SELECT request_url, event_types, actor_id FROM temp.sample WHERE NOT want;

-- 1. Wanted, on the account, not managed here: adopt (GET /v2/webhooks/{id}). In a statement of
--    its own: an adoption's request is known once it is committed, and step 2 must see it.
INSERT INTO apify_webhooks(id)
  SELECT r.id FROM apify_remote_webhooks AS r
    JOIN wanted AS w ON r.request_url = w.request_url AND r.actor_id = w.actor_id
                    AND r.event_types = json(w.event_types)
   WHERE r.id NOT IN (SELECT id FROM apify_webhooks WHERE status = 'created');

BEGIN;

-- 2. Wanted and not there: create (POST /v2/webhooks at COMMIT). A failed row of the same
--    request is sent again under its key.
INSERT INTO apify_webhooks(request_url, event_types, actor_id)
  SELECT w.request_url, w.event_types, w.actor_id FROM wanted AS w
   WHERE NOT EXISTS (SELECT 1 FROM apify_webhooks AS h
                      WHERE h.status = 'created' AND h.request_url = w.request_url
                        AND h.actor_id = w.actor_id AND h.event_types = json(w.event_types));

-- 3. Managed here and no longer wanted: delete (DELETE /v2/webhooks/{id} at COMMIT).
DELETE FROM apify_webhooks
 WHERE status = 'created'
   AND NOT EXISTS (SELECT 1 FROM wanted AS w
                    WHERE w.request_url = apify_webhooks.request_url
                      AND w.actor_id = apify_webhooks.actor_id
                      AND json(w.event_types) = apify_webhooks.event_types);

.print 'Queued, to send at COMMIT (queued deletes are no longer rows):'
SELECT operation, count(*) AS webhooks FROM apify_webhooks WHERE status = 'pending' GROUP BY 1;

COMMIT;

.print 'Wanted, and what this database manages for each:'
SELECT w.request_url, w.actor_id, h.status, h.operation, h.id
  FROM wanted AS w
  LEFT JOIN apify_webhooks AS h
    ON h.request_url = w.request_url AND h.actor_id = w.actor_id
   AND h.event_types = json(w.event_types);

.print 'On the account, not wanted and not managed here (left alone):'
SELECT id, request_url, actor_id FROM apify_remote_webhooks
 WHERE id NOT IN (SELECT id FROM apify_webhooks WHERE id IS NOT NULL);
