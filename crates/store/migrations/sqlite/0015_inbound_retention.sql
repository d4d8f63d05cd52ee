-- Retention of Meta's webhook bodies. A processed event's body is kept
-- PALISADE_INBOUND_RETENTION_DAYS (7 by default), then replaced by an empty one and the time
-- is recorded here. The row itself stays: its id, tenant, connection and times. Idempotency
-- does not need the body: Meta's redeliveries are recognised by the message's wamid per
-- connection (messages_wamid_connection_tenant_key) and statuses only move forward.

ALTER TABLE whatsapp_inbound_events ADD COLUMN body_pruned_at TEXT;
-- What the pruning worker scans, oldest first, in bounded batches.
CREATE INDEX whatsapp_inbound_events_prunable ON whatsapp_inbound_events (processed_at)
    WHERE processed_at IS NOT NULL AND body_pruned_at IS NULL;
