-- Every authentic inbound provider call we acted on, raw, once: the unique
-- (provider, event_key) makes a provider's retry, replay or concurrent
-- duplicate a no-op. The row is written in the same transaction as the status
-- change it caused, so either both commit or neither does.
CREATE TABLE provider_events (
    id bigserial PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('stripe', 'moneroo', 'ebilling')),
    -- Stripe: the event id; Moneroo: object id + event; eBilling: transaction
    -- id, else bill id.
    event_key text NOT NULL,
    event_type text NOT NULL,
    object_type text CHECK (object_type IN ('payment', 'payout')),
    object_id uuid,
    -- What the call did: applied (status changed), unchanged (already in that
    -- status), ignored (an event type we do not act on), invalid_transition
    -- (a move the state machine refuses, e.g. a late failure after success),
    -- amount_mismatch (eBilling's amount differs from the payment's; refused).
    -- 'received' exists only inside the handling transaction.
    result text NOT NULL CHECK (result IN ('received', 'applied', 'unchanged', 'ignored', 'invalid_transition', 'amount_mismatch')),
    detail text,
    payload text NOT NULL, -- the raw body as the provider sent it (JSON or form-encoded)
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT provider_events_provider_event_key_key UNIQUE (provider, event_key)
);
-- "What did the providers say about payment X?"
CREATE INDEX provider_events_object_id_idx ON provider_events (object_id, id) WHERE object_id IS NOT NULL;
