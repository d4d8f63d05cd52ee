-- A WhatsApp number can be connected again after it was disconnected. Only an ACTIVE connection
-- holds its number exclusively (across tenants), so another tenant may take over a number that
-- its previous tenant disconnected; within one tenant a number has exactly one row, active or
-- not, so connecting it again reuses that row (its id, webhook URL and conversations).
-- Unique indexes are enforced regardless of row-level security, so a tenant cannot activate a
-- number that another tenant's active connection holds, although it cannot see that row.
ALTER TABLE whatsapp_connections DROP CONSTRAINT whatsapp_connections_phone_number_id_key;
CREATE UNIQUE INDEX whatsapp_connections_active_phone_number_id_key
    ON whatsapp_connections (phone_number_id) WHERE status = 'active';
ALTER TABLE whatsapp_connections
    ADD CONSTRAINT whatsapp_connections_tenant_id_phone_number_id_key UNIQUE (tenant_id, phone_number_id);
