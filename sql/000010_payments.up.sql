CREATE TABLE payments (
    id uuid PRIMARY KEY, -- UUIDv7: id order is creation order
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    gateway text NOT NULL,
    status text NOT NULL CHECK (status IN ('PENDING', 'AUTHORIZED', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'REFUNDED')),
    reference text,
    description text,
    metadata jsonb NOT NULL DEFAULT '{}',
    provider_reference text,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_merchant_id_idx ON payments (merchant_id, id DESC);
CREATE INDEX payments_merchant_status_idx ON payments (merchant_id, status, id DESC);
CREATE INDEX payments_provider_reference_idx ON payments (gateway, provider_reference) WHERE provider_reference IS NOT NULL;

CREATE TABLE payouts (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    provider text NOT NULL,
    status text NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED')),
    recipient jsonb NOT NULL DEFAULT '{}',
    reference text,
    provider_reference text,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_merchant_id_idx ON payouts (merchant_id, id DESC);
CREATE INDEX payouts_merchant_status_idx ON payouts (merchant_id, status, id DESC);
CREATE INDEX payouts_provider_reference_idx ON payouts (provider, provider_reference) WHERE provider_reference IS NOT NULL;
