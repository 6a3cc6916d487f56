-- Every event ever emitted, with the exact body merchants receive.
CREATE TABLE events (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    type text NOT NULL,
    object_id uuid,
    payload json NOT NULL, -- json, not jsonb: the exact bytes merchants receive and we sign
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_merchant_id_idx ON events (merchant_id, id DESC);
CREATE INDEX events_merchant_type_idx ON events (merchant_id, type, id DESC);

-- The delivery ledger. Column names are the old service's: operators query
-- and replay with SQL (SET status = 'PENDING', next_retry_at = now()).
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    event_id uuid NOT NULL REFERENCES events (id),
    event_type text NOT NULL,
    payload json NOT NULL, -- json, not jsonb: the exact bytes merchants receive and we sign
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED')),
    attempts integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    next_retry_at timestamptz DEFAULT now(),
    http_status_code integer,
    error_message text,
    delivered_at timestamptz,
    job_id bigint, -- the River job working this delivery cycle
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_merchant_id_idx ON webhook_deliveries (merchant_id, id DESC);
CREATE INDEX webhook_deliveries_merchant_status_idx ON webhook_deliveries (merchant_id, status, id DESC);
CREATE INDEX webhook_deliveries_event_id_idx ON webhook_deliveries (event_id);
-- The sweep's index: only the rows it may have to pick up.
CREATE INDEX webhook_deliveries_sweep_idx ON webhook_deliveries (next_retry_at)
    WHERE status IN ('PENDING', 'PROCESSING');

CREATE TABLE webhook_delivery_attempts (
    id bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    status_code integer,
    duration_ms integer NOT NULL,
    error text,
    response_body text, -- first 1 KiB
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_delivery_attempts_delivery_id_idx ON webhook_delivery_attempts (delivery_id, id);
