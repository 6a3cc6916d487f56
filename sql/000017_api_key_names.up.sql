-- Merchants manage their own keys (GET/POST/DELETE /v1/api-keys): a name to
-- tell them apart, shown in lists beside the prefix.
ALTER TABLE api_keys ADD COLUMN name text CHECK (char_length(name) <= 100);

-- Authentication and "is this the merchant's last active key" read only the
-- active keys.
CREATE INDEX api_keys_merchant_active_idx ON api_keys (merchant_id, created_at DESC) WHERE revoked_at IS NULL;
