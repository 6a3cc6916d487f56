CREATE INDEX webhook_deliveries_merchant_event_idx ON webhook_deliveries (merchant_id, event_id);
