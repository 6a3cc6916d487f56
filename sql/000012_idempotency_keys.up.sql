-- Idempotency-Key records, per merchant, kept 24 h. A row is written in the
-- same transaction as the objects its response describes, so it exists if
-- and only if they do. Concurrent requests with one key are told apart by a
-- transaction-scoped advisory lock, not by a row.
CREATE TABLE idempotency_keys (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_method text NOT NULL,
    request_path text NOT NULL,
    request_hash bytea NOT NULL,
    response_code integer NOT NULL,
    response_body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
