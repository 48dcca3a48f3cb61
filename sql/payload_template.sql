-- payload_template.sql: choose what the webhook POSTs to your URL. A payload template is JSON
-- in which {{variable}} stands for a value the platform fills in at dispatch: userId,
-- createdAt, eventType, eventData, resource (the run), globals, and their fields
-- ({{resource.id}}, {{eventData.actorId}}, ...). With should_interpolate_strings = 1,
-- variables inside JSON strings are filled in too. The extension checks the template before
-- anything is sent: an unknown variable or broken JSON fails the statement, naming the row.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/payload_template.sql   # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table.
CREATE TABLE IF NOT EXISTS actors(actor_id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT OR IGNORE INTO actors(actor_id, name) VALUES
  ('ElULtm4UAWTWqIpO0', 'amazon-product-scraper'),
  ('VFwAHUN9ntITvHeUX', 'google-maps-reviews');

INSERT INTO apify_webhooks(request_url, event_types, actor_id, payload_template,
                           should_interpolate_strings)
  SELECT 'https://example.com/datasets/' || name,
         json_array('ACTOR.RUN.SUCCEEDED'),
         actor_id,
         '{"source": "' || name || '",' ||
         ' "runId": {{resource.id}},' ||
         ' "datasetId": {{resource.defaultDatasetId}},' ||
         ' "finishedAt": {{resource.finishedAt}},' ||
         ' "event": {{eventType}},' ||
         ' "summary": "run {{resource.id}} of ' || name || ' ended: {{resource.status}}"}',
         1
    FROM actors;

SELECT actor_id, status, id
  FROM apify_webhooks
 WHERE payload_template IS NOT NULL AND actor_id IN (SELECT actor_id FROM actors);

-- The template as sent, for one of them:
.mode line
SELECT payload_template FROM apify_webhooks WHERE payload_template IS NOT NULL LIMIT 1;
