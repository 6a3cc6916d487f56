-- Money truth: what the provider said the money did, beside the status.
--
-- amount_received: what the provider captured (a capture of less than the
-- amount still succeeds, with review partial_capture). amount_refunded: the
-- total refunded so far; REFUNDED once it reaches what was captured.
-- dispute_status: the provider's dispute status, as sent (needs_response,
-- won, lost, …). review: {reason, detail, at} when a provider told us
-- something a human must look at; cleared by an admin's resolve.
ALTER TABLE payments
    ADD COLUMN amount_received bigint CHECK (amount_received >= 0),
    ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    ADD COLUMN dispute_status text,
    ADD COLUMN review jsonb CHECK (review IS NULL OR (jsonb_typeof(review) = 'object' AND review ? 'reason'));
ALTER TABLE payouts
    ADD COLUMN review jsonb CHECK (review IS NULL OR (jsonb_typeof(review) = 'object' AND review ? 'reason'));

-- Payments already SUCCEEDED or REFUNDED got their whole amount.
UPDATE payments SET amount_received = amount WHERE status IN ('SUCCEEDED', 'REFUNDED');
UPDATE payments SET amount_refunded = amount WHERE status = 'REFUNDED';

-- The fixed vocabularies (db/vocab.go lists the same values; a test compares).
ALTER TABLE payments ADD CONSTRAINT payments_gateway_check
    CHECK (gateway IN ('stripe', 'moneroo', 'ebilling', 'sandbox'));
-- shap is retired: no new payout may use it, old rows keep it.
ALTER TABLE payouts ADD CONSTRAINT payouts_provider_check
    CHECK (provider IN ('moneroo', 'stripe', 'sandbox', 'shap'));
-- shap payouts still open can no longer move by themselves: a human decides.
UPDATE payouts SET review = jsonb_build_object(
        'reason', 'provider_retired',
        'detail', 'provider shap is retired: nothing will report this payout''s outcome; settle it with an admin override',
        'at', now())
    WHERE provider = 'shap' AND status IN ('PENDING', 'PROCESSING');

-- provider_reference becomes unique per gateway/provider across merchants.
-- Existing duplicates (the old lookup took the newest) keep the binding on
-- the oldest object, which was created with it first; every later one loses
-- it and is flagged for review, the reference kept in the review's detail.
WITH ranked AS (
    SELECT id, gateway, provider_reference,
           first_value(id) OVER w AS kept,
           row_number() OVER w AS n
    FROM payments WHERE provider_reference IS NOT NULL
    WINDOW w AS (PARTITION BY gateway, provider_reference ORDER BY created_at, id)
)
UPDATE payments p SET provider_reference = NULL, updated_at = now(),
    review = jsonb_build_object(
        'reason', 'provider_reference_duplicate',
        'detail', format('provider_reference %s was also on payment %s, which keeps it; this payment lost it when references became unique',
            r.provider_reference, r.kept),
        'at', now())
FROM ranked r WHERE p.id = r.id AND r.n > 1;

WITH ranked AS (
    SELECT id, provider, provider_reference,
           first_value(id) OVER w AS kept,
           row_number() OVER w AS n
    FROM payouts WHERE provider_reference IS NOT NULL
    WINDOW w AS (PARTITION BY provider, provider_reference ORDER BY created_at, id)
)
UPDATE payouts p SET provider_reference = NULL, updated_at = now(),
    review = jsonb_build_object(
        'reason', 'provider_reference_duplicate',
        'detail', format('provider_reference %s was also on payout %s, which keeps it; this payout lost it when references became unique',
            r.provider_reference, r.kept),
        'at', now())
FROM ranked r WHERE p.id = r.id AND r.n > 1;

DROP INDEX payments_provider_reference_idx;
DROP INDEX payouts_provider_reference_idx;
CREATE UNIQUE INDEX payments_provider_reference_key ON payments (gateway, provider_reference) WHERE provider_reference IS NOT NULL;
CREATE UNIQUE INDEX payouts_provider_reference_key ON payouts (provider, provider_reference) WHERE provider_reference IS NOT NULL;

-- What needs a human is few rows: small partial indexes.
CREATE INDEX payments_review_idx ON payments (id) WHERE review IS NOT NULL;
CREATE INDEX payouts_review_idx ON payouts (id) WHERE review IS NOT NULL;

-- Every object needing a human, one row each, newest review first
-- (GET /admin/reviews lists it; docs/OPERATIONS.md queries it).
CREATE VIEW objects_in_review AS
SELECT 'payment'::text AS object, p.id, p.merchant_id, m.name AS merchant_name, p.gateway AS provider,
       p.status, p.amount, p.currency, p.provider_reference,
       p.review ->> 'reason' AS reason, p.review ->> 'detail' AS detail, (p.review ->> 'at')::timestamptz AS review_at
FROM payments p JOIN merchants m ON m.id = p.merchant_id
WHERE p.review IS NOT NULL
UNION ALL
SELECT 'payout', p.id, p.merchant_id, m.name, p.provider,
       p.status, p.amount, p.currency, p.provider_reference,
       p.review ->> 'reason', p.review ->> 'detail', (p.review ->> 'at')::timestamptz
FROM payouts p JOIN merchants m ON m.id = p.merchant_id
WHERE p.review IS NOT NULL;

-- provider_events: the outcomes of the checks, in order (dedupe, find,
-- verify the money, apply). Old results map onto them.
ALTER TABLE provider_events DROP CONSTRAINT provider_events_result_check;
UPDATE provider_events SET result = 'ignored' WHERE result = 'unchanged';
UPDATE provider_events SET result = 'stale' WHERE result = 'invalid_transition';
ALTER TABLE provider_events ADD CONSTRAINT provider_events_result_check CHECK (result IN ('received',
    'applied', 'ignored', 'stale', 'duplicate', 'unmatched', 'amount_mismatch', 'duplicate_payment', 'conflict'));
ALTER TABLE provider_events
    -- The provider's id of the object the event is filed under (Stripe: the
    -- PaymentIntent, for Charge, Refund and Dispute events too): an
    -- unmatched event waits under it for a payment or payout bound to it.
    ADD COLUMN object_ref text,
    -- The provider object that carried the money (Stripe: the
    -- PaymentIntent; Moneroo: the payment; eBilling: the transaction): a
    -- second one paying a paid payment is a duplicate payment.
    ADD COLUMN money_ref text,
    -- The event as parsed, so a parked event can be applied later.
    ADD COLUMN parsed jsonb;
CREATE INDEX provider_events_unmatched_idx ON provider_events (provider, object_ref) WHERE result = 'unmatched';

-- Admin actions now cover payouts and review resolutions.
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_action_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_action_check CHECK (action IN
    ('payment.status_override', 'payout.status_override', 'payment.review_resolve', 'payout.review_resolve'));
