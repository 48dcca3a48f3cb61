-- tasks.sql: one webhook per saved task (condition actorTaskId), for the events that need a
-- person: a run that failed, timed out or was aborted.
--
--     APIFY_TOKEN=... sqlite3 hooks.db < sql/tasks.sql         # from the repository root

.load build/apify
.mode box

-- Sample data: replace with your own table of tasks (Console > Saved tasks > the task's id).
CREATE TABLE IF NOT EXISTS tasks(task_id TEXT PRIMARY KEY, name TEXT NOT NULL, team TEXT);
INSERT OR IGNORE INTO tasks(task_id, name, team) VALUES
  ('DMqEH4BQAm1ettriK', 'daily-prices-de', 'pricing'),
  ('QUqHgFn5mYylG2ouw', 'daily-prices-fr', 'pricing'),
  ('WS5ZcL57RIy7VU8Oe', 'weekly-reviews',  'support');

INSERT INTO apify_webhooks(request_url, event_types, actor_task_id, description)
  SELECT 'https://alerts.example.com/apify/' || team,
         json_array('ACTOR.RUN.FAILED', 'ACTOR.RUN.TIMED_OUT', 'ACTOR.RUN.ABORTED'),
         task_id,
         'alert ' || team || ' about ' || name
    FROM tasks;

SELECT t.name, w.status, w.id, w.error_message
  FROM tasks AS t JOIN apify_webhooks AS w ON w.actor_task_id = t.task_id;
