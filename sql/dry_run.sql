-- dry_run.sql: what would be sent, without sending anything. apify_dry_run() validates a
-- webhook exactly like apify_create_webhook() and returns the request (method, URL, headers
-- with the token redacted, and the body with its idempotency key). Run it over a whole table
-- to check every row before the real INSERT: the first bad row stops it with its message.
--
--     sqlite3 < sql/dry_run.sql                  # from the repository root; needs no token

.load build/apify
.mode box

-- Sample data: replace with your own table.
CREATE TEMP TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT OR IGNORE INTO temp.actors(actor_id, name) VALUES
  ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),
  ('VFwAHUN9ntITvHeUX', 'google-maps-reviews');

-- One request, in full:
.mode line
SELECT apify_dry_run(json_object(
         'requestUrl', 'https://example.com/hooks/amazon-product-scraper',
         'eventTypes', json_array('ACTOR.RUN.SUCCEEDED'),
         'condition',  json_object('actorId', 'ElULtm4UAWTWqIpO0'))) AS request;
.mode box

-- Every row of a table: the body each would send, and the key that makes it idempotent.
.mode box --wrap 0
SELECT name,
       req -> '$.body' ->> '$.requestUrl' AS request_url,
       req -> '$.body' ->> '$.idempotencyKey' AS idempotency_key
  FROM (SELECT name, apify_dry_run(json_object(
                 'requestUrl', 'https://example.com/hooks/' || name,
                 'eventTypes', json_array('ACTOR.RUN.SUCCEEDED'),
                 'condition',  json_object('actorId', actor_id))) AS req
          FROM temp.actors);
