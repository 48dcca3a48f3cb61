-- adopt.sql: find the account's webhooks this database does not know, and adopt them so that UPDATE and DELETE work on them.
--
-- Webhooks made in the Console, by another program, or whose records were lost with a database
-- file are on the account but not in apify_webhooks. apify_remote_webhooks lists the account
-- (GET /v2/webhooks, page by page); INSERT INTO apify_webhooks(id) adopts a webhook: at commit it
-- is fetched (GET /v2/webhooks/{id}) and recorded as created, vouched for like the extension's
-- own records. An id already recorded changes nothing; an id the account does not have becomes a
-- failed row with the API's 404. Records that read 'unverified' (written under another token, or
-- not by the extension) are adopted again the same way. Run the file again: nothing is adopted.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/adopt.sql         # from the repository root

.load build/apify
.mode box

-- Sample: a webhook made elsewhere (here by apify_create_webhook(), which keeps no record).
-- Leave this out on your own account.
SELECT apify_create_webhook(json_object(
         'requestUrl',  'https://hooks.example.com/made-elsewhere',
         'eventTypes',  json_array('ACTOR.RUN.FAILED'),
         'condition',   json_object('actorId', 'TTD3kRSX3iv7nLReg'),
         'description', 'made outside this database')) ->> '$.id' AS made_elsewhere;

.print 'On the account, not managed here:'
SELECT id, request_url, actor_id, actor_task_id, created_at
  FROM apify_remote_webhooks
 WHERE id NOT IN (SELECT id FROM apify_webhooks WHERE status = 'created');

-- Adopt them. The WHERE on request_url is the sample's: say which of the account's webhooks
-- this database should manage (drop it to adopt them all). The subquery keeps NULL out of the
-- NOT IN: a failed row has no id, and "x NOT IN (..., NULL)" is never true.
INSERT INTO apify_webhooks(id)
  SELECT id FROM apify_remote_webhooks
   WHERE id NOT IN (SELECT id FROM apify_webhooks WHERE status = 'created')
     AND request_url LIKE 'https://hooks.example.com/%';

.print 'Adopted (operation adopt; UPDATE and DELETE now work on them):'
SELECT id, status, operation, verified, http_status, request_url, actor_id
  FROM apify_webhooks WHERE operation = 'adopt';
