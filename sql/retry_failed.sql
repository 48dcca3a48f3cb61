-- retry_failed.sql: see what failed and why, then send the failed rows again.
--
-- A row fails when the API refuses it (403 too-many-webhooks, 404 for an unknown actor, ...)
-- or when it could not be reached even after the retries; the API's status, error type and
-- message are kept with the row. Inserting a failed row again sends it again, with the same
-- idempotency key, so a webhook that was in fact created is not created twice.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/retry_failed.sql  # on the database of a bulk run

.load build/apify
.mode box

.print 'Outcomes so far:'
SELECT status, http_status, error_type, count(*) AS rows
  FROM apify_webhooks GROUP BY 1, 2, 3 ORDER BY 1, 2;

.print 'The failures:'
SELECT rowid, coalesce(actor_id, actor_task_id, actor_run_id) AS target, http_status,
       error_type, error_message, attempts, completed_at
  FROM apify_webhooks WHERE status = 'failed';

-- Send them again (fix the cause first: delete unused webhooks, correct an id, ...).
INSERT INTO apify_webhooks(webhook) SELECT webhook FROM apify_webhooks WHERE status = 'failed';

.print 'Outcomes now:'
SELECT status, count(*) AS rows FROM apify_webhooks GROUP BY 1 ORDER BY 1;
