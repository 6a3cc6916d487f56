-- Every update of a delivery row on the hot path (the claim, the attempt's
-- outcome) changes status, so none is HOT: each adds an entry to every
-- index of webhook_deliveries. (merchant_id, event_id) duplicated what
-- webhook_deliveries_event_id_idx already finds (an event's deliveries are
-- one per endpoint): one index entry less per write.
DROP INDEX webhook_deliveries_merchant_event_idx;
