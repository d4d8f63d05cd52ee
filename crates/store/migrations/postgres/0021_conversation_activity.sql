-- Conversations are listed by last activity (`last_message_at`, the latest inbound or outbound
-- message), newest first, with the id breaking ties, and paged by a keyset cursor over
-- (last_message_at, id). Each filter of the list has an index that yields its rows in that
-- order, so a page (the first or a deep one) reads about `limit` rows, never the whole tenant.
CREATE INDEX conversations_tenant_activity ON conversations (tenant_id, last_message_at, id);
CREATE INDEX conversations_tenant_status_activity
    ON conversations (tenant_id, status, last_message_at, id);
-- `assignee_id IS NULL` (unassigned) is answered by this index too.
CREATE INDEX conversations_tenant_assignee_activity
    ON conversations (tenant_id, assignee_id, last_message_at, id);
-- Replaced by the status index above (the list no longer orders by id).
DROP INDEX conversations_tenant_status;

-- One row per label of a conversation, for the `?label=` filter: `conversations.labels` (a
-- JSON array, the order the user gave) stays the source of what a conversation shows; this
-- table is its index, rewritten in the transaction of every label write, with a copy of the
-- conversation's `last_message_at` that every writer of that column moves in the same
-- transaction, so a label's page is read in activity order from one index (a JSON scan reads
-- every conversation of the tenant for a rare label: too slow at 100,000 conversations).
-- The key references the conversation by id: PostgreSQL keeps no (tenant_id, id) key on
-- conversations since 0012, and the rows are only written by `INSERT … SELECT` from the
-- conversation under the writer's tenant, so their tenant is the conversation's.
CREATE TABLE conversation_labels (
    tenant_id        uuid NOT NULL,
    conversation_id  uuid NOT NULL REFERENCES conversations (id),
    label            text NOT NULL,
    last_message_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, label)
);
CREATE INDEX conversation_labels_tenant_label_activity
    ON conversation_labels (tenant_id, label, last_message_at, conversation_id);

INSERT INTO conversation_labels (tenant_id, conversation_id, label, last_message_at)
SELECT DISTINCT v.tenant_id, v.id, l.value, v.last_message_at
FROM conversations v, jsonb_array_elements_text(v.labels) AS l(value);

ALTER TABLE conversation_labels ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_labels FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_labels
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_labels TO palisade_app;
