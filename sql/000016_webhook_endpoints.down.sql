DROP INDEX IF EXISTS webhook_deliveries_merchant_event_idx;
DROP VIEW webhook_delivery_backlog;
CREATE VIEW webhook_delivery_backlog AS
SELECT count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS due,
       count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at > now()) AS waiting_retry,
       count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
       now() - min(next_retry_at) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS lag,
       min(last_attempt_at) FILTER (WHERE status = 'PROCESSING') AS oldest_processing_since
FROM webhook_deliveries
WHERE status IN ('PENDING', 'PROCESSING');

DROP VIEW webhook_endpoint_health;
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

DROP VIEW webhook_failures_recent;
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

DROP INDEX webhook_deliveries_sweep_idx;
CREATE INDEX webhook_deliveries_sweep_idx ON webhook_deliveries (next_retry_at)
    WHERE status IN ('PENDING', 'PROCESSING');
-- Recovery attempts have no meaning in the old service: end them.
UPDATE webhook_deliveries SET next_retry_at = NULL WHERE status = 'FAILED' AND next_retry_at IS NOT NULL;
DROP TRIGGER webhook_deliveries_new_cycle ON webhook_deliveries;
DROP TRIGGER webhook_deliveries_default_endpoint ON webhook_deliveries;
DROP FUNCTION webhook_deliveries_default_endpoint();
DROP FUNCTION webhook_deliveries_new_cycle();
ALTER TABLE webhook_deliveries DROP COLUMN endpoint_id, DROP COLUMN cycle_attempts, DROP COLUMN recovery_attempts;
DROP TRIGGER merchants_sync_default_endpoint ON merchants;
DROP FUNCTION merchants_sync_default_endpoint();
DROP TABLE webhook_endpoints;
DROP FUNCTION webhook_endpoints_sync_merchant();
DROP FUNCTION boohpay_uuid_v7();
