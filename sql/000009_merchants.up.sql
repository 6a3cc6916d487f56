CREATE TABLE merchants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    webhook_url text,
    -- The signing secret as the merchant knows it: whsec_<base64> when we made
    -- it, or any string an operator set by SQL (the old service's habit).
    webhook_secret text,
    -- After a rotation the previous secret keeps signing until it expires.
    previous_webhook_secret text,
    previous_webhook_secret_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- API keys are shown once and stored only as SHA-256 hashes (they carry 192
-- random bits, so a plain hash is enough).
CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id uuid NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    prefix text NOT NULL,
    key_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_merchant_id_idx ON api_keys (merchant_id);
