-- The same index as on SQLite (see its 0011 for the measurements): wamid lookups bind tenant,
-- connection and wamids; with the wamid first the planner searches by all three whether or not
-- the table has been analysed. It keeps the uniqueness per connection.
CREATE UNIQUE INDEX messages_wamid_connection_tenant_key ON messages (wamid, connection_id, tenant_id);
ALTER TABLE messages DROP CONSTRAINT messages_connection_id_wamid_key;
