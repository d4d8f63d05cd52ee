-- A campaign recipient keeps its funnel on its own row (issue 16): `message_status`, the
-- status of the message it was sent (copied when it is dispatched and on every change of the
-- message's status), and `replied_at`, the first inbound message of its conversation after
-- that message. A campaign's counts, on its page and in the analytics, then read one row per
-- recipient instead of joining each to its message and probing its conversation for a reply.
-- `conversation_id`: the conversation the message went to, where its reply is looked for.
-- A message removed later (retention) leaves its last status on the row.
ALTER TABLE campaign_recipients ADD COLUMN conversation_id BLOB;
ALTER TABLE campaign_recipients ADD COLUMN message_status TEXT;
ALTER TABLE campaign_recipients ADD COLUMN replied_at TEXT;

-- The recipients still waiting for a reply, by conversation: probed for every inbound message.
CREATE INDEX campaign_recipients_awaiting_reply ON campaign_recipients (tenant_id, conversation_id)
    WHERE replied_at IS NULL AND conversation_id IS NOT NULL;

-- Only the messages Palisade sends without an author (campaigns, order notifications) can be
-- a recipient's: people's messages are not looked up.
CREATE TRIGGER messages_campaign_status AFTER UPDATE OF status ON messages
FOR EACH ROW WHEN NEW.status IS NOT OLD.status AND NEW.author_id IS NULL
                  AND NEW.direction = 'outbound'
BEGIN
    UPDATE campaign_recipients SET message_status = NEW.status
    WHERE tenant_id = NEW.tenant_id AND message_id = NEW.id;
END;

CREATE TRIGGER messages_campaign_reply AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.direction = 'inbound'
BEGIN
    UPDATE campaign_recipients SET replied_at = NEW.created_at
    WHERE tenant_id = NEW.tenant_id AND conversation_id = NEW.conversation_id
      AND replied_at IS NULL
      AND EXISTS (SELECT 1 FROM messages m
                  WHERE m.tenant_id = NEW.tenant_id AND m.id = campaign_recipients.message_id
                    AND m.created_at < NEW.created_at);
END;

-- The recipients already dispatched. One whose message is gone was shown `sent`, and stays so.
UPDATE campaign_recipients SET
    conversation_id = (SELECT m.conversation_id FROM messages m
                       WHERE m.tenant_id = campaign_recipients.tenant_id
                         AND m.id = campaign_recipients.message_id),
    message_status = COALESCE((SELECT m.status FROM messages m
                               WHERE m.tenant_id = campaign_recipients.tenant_id
                                 AND m.id = campaign_recipients.message_id), 'sent')
WHERE status = 'dispatched';
UPDATE campaign_recipients SET replied_at = (
    SELECT MIN(i.created_at) FROM messages m JOIN messages i
        ON i.tenant_id = m.tenant_id AND i.conversation_id = m.conversation_id
    WHERE m.tenant_id = campaign_recipients.tenant_id AND m.id = campaign_recipients.message_id
      AND i.direction = 'inbound' AND i.created_at > m.created_at)
WHERE status = 'dispatched';
