-- Every inserted row fires one check per foreign key, and these checks were a third of
-- PostgreSQL's CPU time at 10k inbound messages/s (each is planned again per row: see
-- plan_cache_mode in db.rs). A message now references its conversation by (tenant,
-- conversation, connection): one check instead of three, and a stronger rule: a message's
-- connection is its conversation's (every writer already stores it so). What the dropped keys
-- checked follows from the remaining ones: the conversation's tenant and connection are
-- checked by its own keys.
CREATE UNIQUE INDEX conversations_tenant_id_id_connection_id_key
    ON conversations (tenant_id, id, connection_id);
ALTER TABLE messages ADD CONSTRAINT messages_conversation_fkey
    FOREIGN KEY (tenant_id, conversation_id, connection_id)
    REFERENCES conversations (tenant_id, id, connection_id);
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_conversation_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_connection_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_fkey;
-- Nothing references conversations by (tenant, id) any more, and the new key serves the same
-- lookups. One index less to maintain, and to weigh when each check above is planned.
ALTER TABLE conversations DROP CONSTRAINT conversations_tenant_id_id_key;

-- Implied by the keys that remain: a conversation's contact, and an inbound webhook's
-- connection, belong to a tenant that exists.
ALTER TABLE conversations DROP CONSTRAINT conversations_tenant_id_fkey;
ALTER TABLE whatsapp_inbound_events DROP CONSTRAINT whatsapp_inbound_events_tenant_id_fkey;
