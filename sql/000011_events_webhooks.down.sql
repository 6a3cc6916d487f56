DROP TABLE webhook_delivery_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE events;
