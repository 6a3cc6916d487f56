-- Every inbound provider call we accepted as authentic, raw, once: the unique
-- key makes a provider's retry or replay a no-op.
CREATE TABLE provider_events (
    id bigserial PRIMARY KEY,
    provider text NOT NULL,
    event_key text NOT NULL,
    event_type text NOT NULL,
    object_id uuid,
    result text NOT NULL,
    payload text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, event_key)
);
