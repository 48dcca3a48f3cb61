-- one_webhook.sql: one webhook, created by a function call, and the settings that govern the
-- requests. apify_create_webhook() sends at once, retries what is safe to retry, and returns
-- the created webhook as JSON (read its fields with ->>); it keeps no record: for records, use
-- the apify_webhooks table.
--
--     APIFY_TOKEN=... sqlite3 < sql/one_webhook.sql             # from the repository root

.load build/apify
.mode box

-- The settings of this connection (the token reads back as "(set)", never as itself):
SELECT key AS setting, value FROM json_each(apify_config());

-- Change one for this connection, e.g. fewer attempts and a shorter timeout:
SELECT apify_config('max_attempts', 4) AS max_attempts, apify_config('timeout_ms', 10000) AS timeout_ms;

SELECT hook ->> '$.id' AS id, hook ->> '$.createdAt' AS created_at,
       hook ->> '$.requestUrl' AS request_url, hook -> '$.eventTypes' AS event_types
  FROM (SELECT apify_create_webhook(json_object(
          'requestUrl',  'https://example.com/hooks/one',
          'eventTypes',  json_array('ACTOR.RUN.SUCCEEDED', 'ACTOR.RUN.FAILED'),
          'condition',   json_object('actorId', 'ElULtm4UAWTWqIpO0'),
          'description', 'made with apify_create_webhook()')) AS hook);
