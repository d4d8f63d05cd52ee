-- Inbound processing looks up a webhook's wamids with
--   WHERE tenant_id = ? AND connection_id = ? AND wamid IN (…)
-- (every statement binds the tenant). With (connection_id, wamid) indexed, SQLite's planner
-- preferred messages_tenant_id_id_key for the tenant term and scanned every message of the
-- tenant: 12 ms per 50-message webhook at 43k messages, growing with the table. PostgreSQL did
-- the same with (tenant_id, connection_id, wamid) until the table was first analysed (it used
-- the tenant and connection as the index condition and filtered the wamids). With the wamid
-- first, the only useful index is this one, searched by all three terms, on both databases,
-- with or without statistics. It keeps the uniqueness per connection.
CREATE UNIQUE INDEX messages_wamid_connection_tenant_key ON messages (wamid, connection_id, tenant_id);
DROP INDEX messages_connection_id_wamid_key;
