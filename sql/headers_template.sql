-- headers_template.sql: extra HTTP headers on the webhook's POST to your URL. A headers
-- template is a JSON object of header names to string values; a value may be a {{variable}}
-- (outside quotes), or contain variables inside its string when should_interpolate_strings is
-- 1. The platform always sets Host, Content-Type, X-Apify-Webhook,
-- X-Apify-Webhook-Dispatch-Id and X-Apify-Request-Origin itself.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/headers_template.sql   # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table. The secret is what your endpoint checks; keep it
-- out of files you share (it is stored in the request, in apify_webhooks_store).
CREATE TABLE IF NOT EXISTS endpoints(actor_id TEXT PRIMARY KEY, url TEXT NOT NULL,
                                     secret TEXT NOT NULL);
INSERT OR IGNORE INTO endpoints(actor_id, url, secret) VALUES
  ('XwOADhUViWuyvwYmu', 'https://crm.example.com/apify', 's3cr3t-crm'),
  ('BAuKn53AoncVoWb3q', 'https://bi.example.com/ingest', 's3cr3t-bi');

INSERT INTO apify_webhooks(request_url, event_types, actor_id, headers_template,
                           should_interpolate_strings)
  SELECT url,
         json_array('ACTOR.RUN.SUCCEEDED'),
         actor_id,
         json_object('X-Hook-Secret', secret,
                     'X-Apify-Run', '{{resource.id}}',
                     'X-Apify-Event', '{{eventType}}'),
         1
    FROM endpoints;

.mode box --wrap 0
SELECT actor_id, status, id, headers_template
  FROM apify_webhooks
 WHERE headers_template IS NOT NULL AND actor_id IN (SELECT actor_id FROM endpoints);
