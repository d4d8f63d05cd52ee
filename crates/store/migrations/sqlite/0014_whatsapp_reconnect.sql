-- A WhatsApp number can be connected again after it was disconnected. Only an ACTIVE connection
-- holds its number exclusively (across tenants), so another tenant may take over a number that
-- its previous tenant disconnected; within one tenant a number has exactly one row, active or
-- not, so connecting it again reuses that row (its id, webhook URL and conversations).
DROP INDEX whatsapp_connections_phone_number_id_key;
CREATE UNIQUE INDEX whatsapp_connections_active_phone_number_id_key
    ON whatsapp_connections (phone_number_id) WHERE status = 'active';
CREATE UNIQUE INDEX whatsapp_connections_tenant_id_phone_number_id_key
    ON whatsapp_connections (tenant_id, phone_number_id);
