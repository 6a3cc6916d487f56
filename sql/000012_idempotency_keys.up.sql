-- Idempotency-Key records, per merchant, kept 24 h. A row with a NULL
-- response_code is a request still in flight (a concurrent duplicate gets 409).
CREATE TABLE idempotency_keys (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_method text NOT NULL,
    request_path text NOT NULL,
    request_hash bytea NOT NULL,
    response_code integer,
    response_body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
