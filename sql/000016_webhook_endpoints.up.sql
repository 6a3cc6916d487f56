-- Webhook endpoints: up to 16 per merchant, each with its URL, event filter,
-- secret and health. The merchant's default endpoint is the one the old
-- service's columns merchants.webhook_url / webhook_secret hold; two
-- triggers keep that row and those columns equal, so the old operator SQL
-- (UPDATE merchants SET webhook_url = …, webhook_secret = … WHERE id = …)
-- keeps working as written and the code reads endpoints from one table.

-- UUIDv7 (time-ordered) like the ids the service makes, for rows made by
-- SQL: list routes page on id order.
CREATE FUNCTION boohpay_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY DEFAULT boohpay_uuid_v7(),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    is_default boolean NOT NULL DEFAULT false,
    url text NOT NULL,
    description text,
    -- '{*}' or a list of event types from the catalogue (db/catalog.go).
    enabled_events text[] NOT NULL DEFAULT '{*}' CHECK (cardinality(enabled_events) > 0),
    -- As on merchants: whsec_<base64> when we made it, any string set by SQL,
    -- NULL for an unsigned endpoint set by SQL without a secret.
    secret text,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason text CHECK (disabled_reason IN ('merchant', 'failing')),
    -- Start of the current streak of failed attempts (NULL after a success).
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Deleted endpoints stay, so their deliveries keep their endpoint_id.
    deleted_at timestamptz,
    CHECK ((status = 'disabled') = (disabled_reason IS NOT NULL))
);
CREATE UNIQUE INDEX webhook_endpoints_default_idx ON webhook_endpoints (merchant_id) WHERE is_default AND deleted_at IS NULL;
CREATE INDEX webhook_endpoints_merchant_id_idx ON webhook_endpoints (merchant_id, id DESC) WHERE deleted_at IS NULL;

-- merchants → default endpoint. Each side writes the other only when the
-- values differ, so the pair of triggers stops after one round.
CREATE FUNCTION merchants_sync_default_endpoint() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.webhook_url IS NULL OR NEW.webhook_url = '' THEN
        UPDATE webhook_endpoints SET deleted_at = now(), updated_at = now()
        WHERE merchant_id = NEW.id AND is_default AND deleted_at IS NULL;
        RETURN NULL;
    END IF;
    INSERT INTO webhook_endpoints AS e (merchant_id, is_default, url, secret, previous_secret, previous_secret_expires_at)
    VALUES (NEW.id, true, NEW.webhook_url, NEW.webhook_secret, NEW.previous_webhook_secret, NEW.previous_webhook_secret_expires_at)
    ON CONFLICT (merchant_id) WHERE is_default AND deleted_at IS NULL DO UPDATE SET
        url = EXCLUDED.url,
        secret = EXCLUDED.secret,
        previous_secret = EXCLUDED.previous_secret,
        previous_secret_expires_at = EXCLUDED.previous_secret_expires_at,
        updated_at = now()
    WHERE (e.url, e.secret, e.previous_secret, e.previous_secret_expires_at)
        IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.secret, EXCLUDED.previous_secret, EXCLUDED.previous_secret_expires_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER merchants_sync_default_endpoint
    AFTER INSERT OR UPDATE OF webhook_url, webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at
    ON merchants FOR EACH ROW EXECUTE FUNCTION merchants_sync_default_endpoint();

-- default endpoint → merchants (the API changes the endpoint row).
CREATE FUNCTION webhook_endpoints_sync_merchant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL THEN
        UPDATE merchants SET webhook_url = NULL, updated_at = now()
        WHERE id = NEW.merchant_id AND webhook_url IS NOT NULL;
        RETURN NULL;
    END IF;
    UPDATE merchants SET
        webhook_url = NEW.url,
        webhook_secret = NEW.secret,
        previous_webhook_secret = NEW.previous_secret,
        previous_webhook_secret_expires_at = NEW.previous_secret_expires_at,
        updated_at = now()
    WHERE id = NEW.merchant_id
        AND (webhook_url, webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at)
            IS DISTINCT FROM (NEW.url, NEW.secret, NEW.previous_secret, NEW.previous_secret_expires_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_sync_merchant
    AFTER INSERT OR UPDATE OF url, secret, previous_secret, previous_secret_expires_at, deleted_at
    ON webhook_endpoints FOR EACH ROW WHEN (NEW.is_default)
    EXECUTE FUNCTION webhook_endpoints_sync_merchant();

-- Existing merchants with a URL get their default endpoint.
INSERT INTO webhook_endpoints (merchant_id, is_default, url, secret, previous_secret, previous_secret_expires_at, created_at)
SELECT id, true, webhook_url, webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at, created_at
FROM merchants WHERE webhook_url IS NOT NULL AND webhook_url <> '';

ALTER TABLE webhook_deliveries
    ADD COLUMN endpoint_id uuid REFERENCES webhook_endpoints (id),
    -- Attempts of the current fast cycle (1 + WEBHOOK_MAX_RETRIES), counted
    -- when recorded: a run that failed on our side before reaching the
    -- merchant spends none. Past the fast cycle, attempts are the recovery
    -- tail's.
    ADD COLUMN cycle_attempts integer NOT NULL DEFAULT 0,
    -- Recovery tail attempts made (WEBHOOK_RECOVERY_SCHEDULE's steps used).
    ADD COLUMN recovery_attempts integer NOT NULL DEFAULT 0;
UPDATE webhook_deliveries d SET endpoint_id = e.id, cycle_attempts = d.attempts
FROM webhook_endpoints e WHERE e.merchant_id = d.merchant_id AND e.is_default;
CREATE INDEX webhook_deliveries_endpoint_id_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_merchant_event_idx ON webhook_deliveries (merchant_id, event_id);

-- A delivery row written by SQL without endpoint_id (the old ledger's
-- shape) goes to the merchant's default endpoint, as it did before.
CREATE FUNCTION webhook_deliveries_default_endpoint() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT id INTO NEW.endpoint_id FROM webhook_endpoints
    WHERE merchant_id = NEW.merchant_id AND is_default AND deleted_at IS NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhook_deliveries_default_endpoint
    BEFORE INSERT ON webhook_deliveries FOR EACH ROW
    WHEN (NEW.endpoint_id IS NULL)
    EXECUTE FUNCTION webhook_deliveries_default_endpoint();

-- A FAILED or SUCCEEDED delivery set back to PENDING (the retry route, the
-- operator's replay by SQL) starts a whole new cycle: fast retries, then
-- the recovery tail.
CREATE FUNCTION webhook_deliveries_new_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.cycle_attempts := 0;
    NEW.recovery_attempts := 0;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhook_deliveries_new_cycle
    BEFORE UPDATE OF status ON webhook_deliveries FOR EACH ROW
    WHEN (NEW.status = 'PENDING' AND OLD.status IN ('FAILED', 'SUCCEEDED'))
    EXECUTE FUNCTION webhook_deliveries_new_cycle();

-- The sweep's index: rows it may pick up, now including FAILED rows whose
-- recovery attempt is scheduled.
DROP INDEX webhook_deliveries_sweep_idx;
CREATE INDEX webhook_deliveries_sweep_idx ON webhook_deliveries (next_retry_at)
    WHERE status IN ('PENDING', 'PROCESSING') OR (status = 'FAILED' AND next_retry_at IS NOT NULL);

-- Operator views, per endpoint.
DROP VIEW webhook_failures_recent;
CREATE VIEW webhook_failures_recent AS
SELECT d.id AS delivery_id,
       d.merchant_id,
       m.name AS merchant_name,
       e.url AS webhook_url,
       d.event_id,
       d.event_type,
       d.attempts,
       d.http_status_code,
       d.error_message,
       d.last_attempt_at,
       d.updated_at AS failed_at,
       d.created_at,
       d.endpoint_id,
       d.next_retry_at AS next_recovery_at -- NULL: no recovery attempt left
FROM webhook_deliveries d
JOIN merchants m ON m.id = d.merchant_id
LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.status = 'FAILED'
  AND d.updated_at > now() - interval '7 days';

DROP VIEW webhook_endpoint_health;
-- Each endpoint: its state (enabled, or disabled by the merchant or as
-- failing), its failure streak, and its attempts in the last hour. health:
-- down when the last 3 or more attempts in a row failed, degraded when some
-- failed, up otherwise, idle without attempts. backlog: deliveries not
-- finished (PENDING, PROCESSING, or FAILED with a recovery attempt due).
CREATE VIEW webhook_endpoint_health AS
WITH recent AS (
    SELECT d.endpoint_id,
           a.created_at,
           a.status_code,
           a.error,
           coalesce(a.status_code BETWEEN 200 AND 299, false) AS ok
    FROM webhook_delivery_attempts a
    JOIN webhook_deliveries d ON d.id = a.delivery_id
    WHERE a.created_at > now() - interval '1 hour'
), marked AS (
    SELECT r.*,
           max(r.created_at) FILTER (WHERE r.ok) OVER (PARTITION BY r.endpoint_id) AS last_ok_at
    FROM recent r
), by_endpoint AS (
    SELECT endpoint_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE NOT ok) AS failed_attempts,
           count(*) FILTER (WHERE NOT ok AND created_at > coalesce(last_ok_at, '-infinity')) AS consecutive_failures,
           max(created_at) FILTER (WHERE ok) AS last_success_at,
           max(created_at) FILTER (WHERE NOT ok) AS last_failure_at,
           (array_agg(coalesce(error, 'HTTP ' || status_code) ORDER BY created_at DESC)
               FILTER (WHERE NOT ok))[1] AS last_error
    FROM marked
    GROUP BY endpoint_id
)
SELECT e.merchant_id,
       m.name AS merchant_name,
       e.url AS webhook_url,
       CASE WHEN b.attempts IS NULL THEN 'idle'
            WHEN b.consecutive_failures >= 3 THEN 'down'
            WHEN b.failed_attempts > 0 THEN 'degraded'
            ELSE 'up' END AS state,
       coalesce(b.attempts, 0) AS attempts,
       coalesce(b.failed_attempts, 0) AS failed_attempts,
       coalesce(b.consecutive_failures, 0) AS consecutive_failures,
       b.last_success_at,
       b.last_failure_at,
       b.last_error,
       (SELECT count(*) FROM webhook_deliveries w
        WHERE w.endpoint_id = e.id
          AND (w.status IN ('PENDING', 'PROCESSING') OR (w.status = 'FAILED' AND w.next_retry_at IS NOT NULL))) AS backlog,
       e.id AS endpoint_id,
       e.is_default,
       e.status AS endpoint_status,
       e.disabled_reason,
       e.failing_since
FROM webhook_endpoints e
JOIN merchants m ON m.id = e.merchant_id
LEFT JOIN by_endpoint b ON b.endpoint_id = e.id
WHERE e.deleted_at IS NULL;

-- Adds recovering: FAILED deliveries whose next recovery attempt is scheduled.
CREATE OR REPLACE VIEW webhook_delivery_backlog AS
SELECT count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS due,
       count(*) FILTER (WHERE status = 'PENDING' AND next_retry_at > now()) AS waiting_retry,
       count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
       now() - min(next_retry_at) FILTER (WHERE status = 'PENDING' AND next_retry_at <= now()) AS lag,
       min(last_attempt_at) FILTER (WHERE status = 'PROCESSING') AS oldest_processing_since,
       count(*) FILTER (WHERE status = 'FAILED') AS recovering
FROM webhook_deliveries
WHERE status IN ('PENDING', 'PROCESSING') OR (status = 'FAILED' AND next_retry_at IS NOT NULL);
