DROP INDEX IF EXISTS api_keys_merchant_active_idx;
ALTER TABLE api_keys DROP COLUMN IF EXISTS name;
