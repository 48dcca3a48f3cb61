-- actors.sql: one webhook per actor in a table, with a single INSERT ... SELECT.
--
-- Every row of the SELECT becomes one POST /v2/webhooks, sent when the statement commits (in
-- the shell: before the INSERT returns), many at a time and paced under the API's rate limit.
-- Each row's outcome lands in apify_webhooks. Run the file again and nothing is sent twice.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/actors.sql        # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table (the ids are your actors' ids, 17 characters).
CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT OR IGNORE INTO actors(actor_id, name) VALUES
  ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),
  ('VFwAHUN9ntITvHeUX', 'google-maps-reviews'),
  ('3nSWUD7T13PjIn3Ad', 'instagram-profile-scraper');

-- One webhook per actor: called when a run succeeds or fails.
INSERT INTO apify_webhooks(request_url, event_types, actor_id, description)
  SELECT 'https://example.com/hooks/' || name,
         json_array('ACTOR.RUN.SUCCEEDED', 'ACTOR.RUN.FAILED'),
         actor_id,
         'run finished: ' || name
    FROM actors;

-- The outcome of every row: created (with the webhook's id) or failed (with the reason).
SELECT actor_id, status, id, http_status, error_message
  FROM apify_webhooks
 WHERE actor_id IN (SELECT actor_id FROM actors);
