-- Retention (issue 14). Raw inbound mail (the `inbound` object store) is purged after the firm's
-- setting; the row stays (it dedupes a provider's retries and names the reply), marked purged.
ALTER TABLE firms ADD COLUMN raw_mail_retention_days integer NOT NULL DEFAULT 90
    CHECK (raw_mail_retention_days BETWEEN 1 AND 3650);
ALTER TABLE inbound_messages ADD COLUMN purged_at timestamptz;
CREATE INDEX inbound_messages_unpurged ON inbound_messages (received_at) WHERE purged_at IS NULL;
CREATE INDEX webhook_events_received ON webhook_events (received_at);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
