-- adhoc_runs.sql: an ad-hoc webhook for each run in a list. An ad-hoc webhook belongs to one
-- run (condition actorRunId, isAdHoc true) and fires at most once: when that run finishes.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/adhoc_runs.sql    # from the repository root

.load build/apify
.mode box

-- Sample data: replace with the runs you started (the id in the run's URL in the Console, or
-- data.id of POST /v2/acts/{actor}/runs).
CREATE TABLE IF NOT EXISTS runs(run_id TEXT PRIMARY KEY, started_for TEXT NOT NULL);
INSERT OR IGNORE INTO runs(run_id, started_for) VALUES
  ('hodHi81n6ON7f8Glp', 'order-1041'),
  ('FLZUkkfiNgZ8MJZMO', 'order-1042'),
  ('bMgJlISuahrbldgO2', 'order-1043');

INSERT INTO apify_webhooks(request_url, event_types, actor_run_id, is_ad_hoc)
  SELECT 'https://example.com/orders/' || started_for || '/scraped',
         json_array('ACTOR.RUN.SUCCEEDED', 'ACTOR.RUN.FAILED', 'ACTOR.RUN.TIMED_OUT',
                    'ACTOR.RUN.ABORTED'),
         run_id,
         1
    FROM runs;

SELECT r.started_for, w.actor_run_id, w.is_ad_hoc, w.status, w.id
  FROM runs AS r JOIN apify_webhooks AS w ON w.actor_run_id = r.run_id;
