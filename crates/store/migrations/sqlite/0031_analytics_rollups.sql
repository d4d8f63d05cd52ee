-- Analytics over a year of a busy tenant without reading its messages (issue 16): the
-- counts and first-response times `/api/v1/analytics/*` need are kept up to date as messages
-- are written, by triggers on `messages` (so every write path, the send queue and a bulk
-- import included, maintains them), and backfilled here from the messages already stored.
--
-- Messages per 15-minute UTC slot: `slot` is the slot's start in Unix seconds (a multiple of
-- 900), so that a local day of any zone (offsets are whole quarter hours: +05:30, +05:45) is a
-- whole number of slots; `author_id` is the nil uuid (16 zero bytes) for a message without an
-- author (every inbound message, an automated send). Notes are not counted. The counts are
-- kept when a contact is erased: they carry no personal data, and a number's traffic does not
-- change after the fact (the conversations and their times go with the contact).
CREATE TABLE message_counts (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    slot           INTEGER NOT NULL,
    connection_id  BLOB NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      BLOB NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, connection_id, direction, author_id)
) WITHOUT ROWID;

-- A conversation's first inbound message and the first outbound one at or after it (its first
-- response), kept by the triggers below: first-response time reads one row per conversation.
ALTER TABLE conversations ADD COLUMN first_inbound_at TEXT;
ALTER TABLE conversations ADD COLUMN first_response_at TEXT;

-- Every message in or out adds one to its slot's count (the slot: its time's Unix seconds
-- rounded down to a multiple of 900, also before 1970).
CREATE TRIGGER messages_counts AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.direction IN ('inbound', 'outbound')
BEGIN
    INSERT INTO message_counts (tenant_id, slot, connection_id, direction, author_id, n)
    VALUES (NEW.tenant_id,
            unixepoch(NEW.created_at) - ((unixepoch(NEW.created_at) % 900) + 900) % 900,
            NEW.connection_id, NEW.direction, COALESCE(NEW.author_id, zeroblob(16)), 1)
    ON CONFLICT (tenant_id, slot, connection_id, direction, author_id) DO UPDATE SET n = n + 1;
END;

-- An inbound message earlier than its conversation's first one becomes the first, and the
-- first response is the first outbound message at or after it.
CREATE TRIGGER messages_first_inbound AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.direction = 'inbound'
BEGIN
    UPDATE conversations SET first_inbound_at = NEW.created_at,
        first_response_at = (SELECT MIN(o.created_at) FROM messages o
            WHERE o.tenant_id = NEW.tenant_id AND o.conversation_id = NEW.conversation_id
              AND o.direction = 'outbound' AND o.created_at >= NEW.created_at)
    WHERE tenant_id = NEW.tenant_id AND id = NEW.conversation_id
      AND (first_inbound_at IS NULL OR NEW.created_at < first_inbound_at);
END;

-- An outbound message at or after the first inbound one and earlier than the first response
-- becomes the first response.
CREATE TRIGGER messages_first_response AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.direction = 'outbound'
BEGIN
    UPDATE conversations SET first_response_at = NEW.created_at
    WHERE tenant_id = NEW.tenant_id AND id = NEW.conversation_id
      AND first_inbound_at IS NOT NULL AND NEW.created_at >= first_inbound_at
      AND (first_response_at IS NULL OR NEW.created_at < first_response_at);
END;

-- The messages already stored.
INSERT INTO message_counts (tenant_id, slot, connection_id, direction, author_id, n)
SELECT m.tenant_id, unixepoch(m.created_at) - ((unixepoch(m.created_at) % 900) + 900) % 900,
    m.connection_id, m.direction, COALESCE(m.author_id, zeroblob(16)), COUNT(*)
FROM messages m
WHERE m.direction IN ('inbound', 'outbound')
GROUP BY 1, 2, 3, 4, 5;
UPDATE conversations SET first_inbound_at = (SELECT MIN(m.created_at) FROM messages m
    WHERE m.tenant_id = conversations.tenant_id AND m.conversation_id = conversations.id
      AND m.direction = 'inbound');
UPDATE conversations SET first_response_at = (SELECT MIN(o.created_at) FROM messages o
    WHERE o.tenant_id = conversations.tenant_id AND o.conversation_id = conversations.id
      AND o.direction = 'outbound' AND o.created_at >= conversations.first_inbound_at)
WHERE first_inbound_at IS NOT NULL;

-- New conversations per bucket, their status now, assignee and first response, read from the
-- index alone; resolved ones with their creation and assignee the same way.
DROP INDEX conversations_tenant_created;
CREATE INDEX conversations_tenant_created ON conversations
    (tenant_id, created_at, connection_id, status, assignee_id, first_inbound_at, first_response_at);
DROP INDEX conversations_tenant_resolved;
CREATE INDEX conversations_tenant_resolved ON conversations
    (tenant_id, resolved_at, connection_id, assignee_id, created_at);
