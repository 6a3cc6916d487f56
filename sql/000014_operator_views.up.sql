-- What operators need beyond the ledger itself: an audit trail of admin
-- overrides, views that answer their usual questions (docs/OPERATIONS.md),
-- and the indexes that keep those questions and the retention job cheap.

-- Every manual change an operator made through /admin, with the reason
-- given. Written in the same transaction as the change it records.
CREATE TABLE admin_actions (
    id bigserial PRIMARY KEY,
    action text NOT NULL CHECK (action IN ('payment.status_override')),
    object_id uuid NOT NULL, -- the payment
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    from_status text NOT NULL,
    to_status text NOT NULL,
    reason text NOT NULL CHECK (char_length(btrim(reason)) BETWEEN 1 AND 1000),
    event_id uuid REFERENCES events (id), -- the event the change emitted
    request_id text, -- X-Request-Id of the admin call, to find it in the logs
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_actions_object_id_idx ON admin_actions (object_id, id);

-- "What happened to payment X?": its events, newest last.
CREATE INDEX events_object_id_idx ON events (object_id, created_at) WHERE object_id IS NOT NULL;
-- Time-window questions ("today", "last 24 h") on the ledger.
CREATE INDEX webhook_deliveries_created_at_idx ON webhook_deliveries (created_at);
-- Recent failures and replays; FAILED rows are few, so this index is small.
CREATE INDEX webhook_deliveries_failed_idx ON webhook_deliveries (updated_at) WHERE status = 'FAILED';
-- The retention job's walk over delivered rows, oldest first.
CREATE INDEX webhook_deliveries_delivered_idx ON webhook_deliveries (delivered_at) WHERE status = 'SUCCEEDED';
-- Endpoint health over the last hour, and the retention job's walk over attempts.
CREATE INDEX webhook_delivery_attempts_created_at_idx ON webhook_delivery_attempts (created_at);

-- Deliveries created in the last 24 hours, by merchant and status.
CREATE VIEW webhook_delivery_stats AS
SELECT d.merchant_id,
       m.name AS merchant_name,
       d.status,
       count(*) AS deliveries,
       sum(d.attempts) AS attempts,
       count(*) FILTER (WHERE d.attempts > 1) AS retried,
       max(d.created_at) AS last_created_at
FROM webhook_deliveries d
JOIN merchants m ON m.id = d.merchant_id
WHERE d.created_at > now() - interval '24 hours'
GROUP BY d.merchant_id, m.name, d.status;

-- Deliveries that ended FAILED in the last 7 days (failed_at is when the
-- row last changed, i.e. when its last cycle gave up). GET
-- /admin/webhook-failures lists this view.
CREATE VIEW webhook_failures_recent AS
SELECT d.id AS delivery_id,
       d.merchant_id,
       m.name AS merchant_name,
       m.webhook_url,
       d.event_id,
       d.event_type,
       d.attempts,
       d.http_status_code,
       d.error_message,
       d.last_attempt_at,
       d.updated_at AS failed_at,
       d.created_at
FROM webhook_deliveries d
JOIN merchants m ON m.id = d.merchant_id
WHERE d.status = 'FAILED'
  AND d.updated_at > now() - interval '7 days';

-- Each endpoint that received attempts in the last hour. An attempt
-- succeeded when it got a 2xx. state: down when the last 3 or more attempts
-- in a row failed, degraded when some attempts failed, else up. backlog is
-- the merchant's deliveries not yet finished (PENDING or PROCESSING).
CREATE VIEW webhook_endpoint_health AS
WITH recent AS (
    SELECT d.merchant_id,
           a.created_at,
           a.status_code,
           a.error,
           coalesce(a.status_code BETWEEN 200 AND 299, false) AS ok
    FROM webhook_delivery_attempts a
    JOIN webhook_deliveries d ON d.id = a.delivery_id
    WHERE a.created_at > now() - interval '1 hour'
), marked AS (
    SELECT r.*,
           max(r.created_at) FILTER (WHERE r.ok) OVER (PARTITION BY r.merchant_id) AS last_ok_at
    FROM recent r
), by_merchant AS (
    SELECT merchant_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE NOT ok) AS failed_attempts,
           count(*) FILTER (WHERE NOT ok AND created_at > coalesce(last_ok_at, '-infinity')) AS consecutive_failures,
           max(created_at) FILTER (WHERE ok) AS last_success_at,
           max(created_at) FILTER (WHERE NOT ok) AS last_failure_at,
           (array_agg(coalesce(error, 'HTTP ' || status_code) ORDER BY created_at DESC)
               FILTER (WHERE NOT ok))[1] AS last_error
    FROM marked
    GROUP BY merchant_id
)
SELECT m.id AS merchant_id,
       m.name AS merchant_name,
       m.webhook_url,
       CASE WHEN b.consecutive_failures >= 3 THEN 'down'
            WHEN b.failed_attempts > 0 THEN 'degraded'
            ELSE 'up' END AS state,
       b.attempts,
       b.failed_attempts,
       b.consecutive_failures,
       b.last_success_at,
       b.last_failure_at,
       b.last_error,
       (SELECT count(*) FROM webhook_deliveries w
        WHERE w.merchant_id = m.id AND w.status IN ('PENDING', 'PROCESSING')) AS backlog
FROM by_merchant b
JOIN merchants m ON m.id = b.merchant_id;

-- The ledger's side of "how far behind are we": deliveries waiting to be
-- sent (due), waiting for a retry, and in flight; lag is how long the
-- oldest due one has waited. One row.
CREATE VIEW webhook_delivery_backlog AS
SELECT count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS due,
       count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at > now()) AS waiting_retry,
       count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
       now() - min(next_retry_at) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS lag,
       min(last_attempt_at) FILTER (WHERE status = 'PROCESSING') AS oldest_processing_since
FROM webhook_deliveries
WHERE status IN ('PENDING', 'PROCESSING');

-- River's side: per queue, jobs ready to run (due: available, or scheduled
-- or retryable whose time has come), running, and scheduled for later; lag
-- is how long the oldest due job has waited past its time.
CREATE VIEW job_queue_lag AS
SELECT queue,
       count(*) FILTER (WHERE state = 'available' OR (state IN ('scheduled', 'retryable') AND scheduled_at <= now())) AS due,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state IN ('scheduled', 'retryable') AND scheduled_at > now()) AS scheduled,
       now() - min(scheduled_at) FILTER (WHERE state = 'available' OR (state IN ('scheduled', 'retryable') AND scheduled_at <= now())) AS lag,
       now() - min(attempted_at) FILTER (WHERE state = 'running') AS longest_running
FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'running')
GROUP BY queue;
