-- Analytics over a year of a busy tenant without reading its messages (issue 16): the
-- counts and first-response times `/api/v1/analytics/*` need are kept up to date as messages
-- are written, by triggers on `messages` (so every write path, the send queue and a bulk
-- import included, maintains them), and backfilled here from the messages already stored.
--
-- Messages per 15-minute UTC slot: `slot` is the slot's start in Unix seconds (a multiple of
-- 900), so that a local day of any zone (offsets are whole quarter hours: +05:30, +05:45) is a
-- whole number of slots; `author_id` is the nil uuid for a message without an author (every
-- inbound message, an automated send). Notes are not counted. The counts are kept when a
-- contact is erased: they carry no personal data, and a number's traffic does not change
-- after the fact (the conversations and their times go with the contact).
CREATE TABLE message_counts (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    slot           bigint NOT NULL,
    connection_id  uuid NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      uuid NOT NULL,
    n              bigint NOT NULL,
    PRIMARY KEY (tenant_id, slot, connection_id, direction, author_id)
);

ALTER TABLE message_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_counts
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON message_counts TO palisade_app;

-- A conversation's first inbound message and the first outbound one at or after it (its first
-- response), kept by the trigger below: first-response time reads one row per conversation.
ALTER TABLE conversations ADD COLUMN first_inbound_at timestamptz;
ALTER TABLE conversations ADD COLUMN first_response_at timestamptz;

-- Every statement that inserts messages adds them to the counts (one upsert per slot,
-- number, direction and author of the statement, in key order) and moves its conversations'
-- first inbound and first response times earlier when it holds earlier ones.
CREATE FUNCTION messages_analytics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_counts AS c (tenant_id, slot, connection_id, direction, author_id, n)
    SELECT m.tenant_id, CAST(floor(EXTRACT(EPOCH FROM m.created_at) / 900) AS bigint) * 900,
        m.connection_id, m.direction,
        COALESCE(m.author_id, '00000000-0000-0000-0000-000000000000'), COUNT(*)
    FROM new_messages m
    WHERE m.direction IN ('inbound', 'outbound')
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, slot, connection_id, direction, author_id)
        DO UPDATE SET n = c.n + EXCLUDED.n;

    UPDATE conversations v SET first_inbound_at = f.first_in,
        first_response_at = (SELECT MIN(o.created_at) FROM messages o
            WHERE o.tenant_id = v.tenant_id AND o.conversation_id = v.id
              AND o.direction = 'outbound' AND o.created_at >= f.first_in)
    FROM (SELECT m.tenant_id, m.conversation_id, MIN(m.created_at) AS first_in
          FROM new_messages m WHERE m.direction = 'inbound' GROUP BY 1, 2) f
    WHERE v.tenant_id = f.tenant_id AND v.id = f.conversation_id
      AND (v.first_inbound_at IS NULL OR f.first_in < v.first_inbound_at);

    UPDATE conversations v SET first_response_at = f.first_out
    FROM (SELECT m.tenant_id, m.conversation_id, MIN(m.created_at) AS first_out
          FROM new_messages m JOIN conversations w
              ON w.tenant_id = m.tenant_id AND w.id = m.conversation_id
          WHERE m.direction = 'outbound' AND m.created_at >= w.first_inbound_at
          GROUP BY 1, 2) f
    WHERE v.tenant_id = f.tenant_id AND v.id = f.conversation_id
      AND (v.first_response_at IS NULL OR f.first_out < v.first_response_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_analytics AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_analytics();

-- The messages already stored.
INSERT INTO message_counts (tenant_id, slot, connection_id, direction, author_id, n)
SELECT m.tenant_id, CAST(floor(EXTRACT(EPOCH FROM m.created_at) / 900) AS bigint) * 900,
    m.connection_id, m.direction,
    COALESCE(m.author_id, '00000000-0000-0000-0000-000000000000'), COUNT(*)
FROM messages m
WHERE m.direction IN ('inbound', 'outbound')
GROUP BY 1, 2, 3, 4, 5;
UPDATE conversations v SET first_inbound_at = f.first_in
FROM (SELECT m.tenant_id, m.conversation_id, MIN(m.created_at) AS first_in
      FROM messages m WHERE m.direction = 'inbound' GROUP BY 1, 2) f
WHERE v.tenant_id = f.tenant_id AND v.id = f.conversation_id;
UPDATE conversations v SET first_response_at = (SELECT MIN(o.created_at) FROM messages o
    WHERE o.tenant_id = v.tenant_id AND o.conversation_id = v.id
      AND o.direction = 'outbound' AND o.created_at >= v.first_inbound_at)
WHERE v.first_inbound_at IS NOT NULL;

-- New conversations per bucket, their status now, assignee and first response, read from the
-- index alone; resolved ones with their creation and assignee the same way.
DROP INDEX conversations_tenant_created;
CREATE INDEX conversations_tenant_created ON conversations
    (tenant_id, created_at, connection_id, status, assignee_id, first_inbound_at, first_response_at);
DROP INDEX conversations_tenant_resolved;
CREATE INDEX conversations_tenant_resolved ON conversations
    (tenant_id, resolved_at, connection_id, assignee_id, created_at);
