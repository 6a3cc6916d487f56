DELETE FROM admin_actions WHERE action <> 'payment.status_override';
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_action_check;
ALTER TABLE admin_actions ADD CONSTRAINT admin_actions_action_check CHECK (action IN ('payment.status_override'));

DROP INDEX provider_events_unmatched_idx;
ALTER TABLE provider_events DROP COLUMN object_ref, DROP COLUMN money_ref, DROP COLUMN parsed;
ALTER TABLE provider_events DROP CONSTRAINT provider_events_result_check;
UPDATE provider_events SET result = 'unchanged' WHERE result IN ('ignored', 'duplicate', 'unmatched', 'duplicate_payment');
UPDATE provider_events SET result = 'invalid_transition' WHERE result IN ('stale', 'conflict');
ALTER TABLE provider_events ADD CONSTRAINT provider_events_result_check
    CHECK (result IN ('received', 'applied', 'unchanged', 'ignored', 'invalid_transition', 'amount_mismatch'));

DROP VIEW objects_in_review;
DROP INDEX payments_review_idx;
DROP INDEX payouts_review_idx;
DROP INDEX payments_provider_reference_key;
DROP INDEX payouts_provider_reference_key;
CREATE INDEX payments_provider_reference_idx ON payments (gateway, provider_reference) WHERE provider_reference IS NOT NULL;
CREATE INDEX payouts_provider_reference_idx ON payouts (provider, provider_reference) WHERE provider_reference IS NOT NULL;

ALTER TABLE payouts DROP CONSTRAINT payouts_provider_check;
ALTER TABLE payments DROP CONSTRAINT payments_gateway_check;
ALTER TABLE payouts DROP COLUMN review;
ALTER TABLE payments DROP COLUMN amount_received, DROP COLUMN amount_refunded, DROP COLUMN dispute_status, DROP COLUMN review;
