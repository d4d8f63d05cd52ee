-- A campaign recipient keeps its funnel on its own row (issue 16): `message_status`, the
-- status of the message it was sent (copied when it is dispatched and on every change of the
-- message's status), and `replied_at`, the first inbound message of its conversation after
-- that message. A campaign's counts, on its page and in the analytics, then read one row per
-- recipient instead of joining each to its message and probing its conversation for a reply.
-- `conversation_id`: the conversation the message went to, where its reply is looked for.
-- A message removed later (retention) leaves its last status on the row.
--
-- The status is copied by a row trigger on the messages only Palisade sends without an author
-- (campaigns, order notifications): its WHEN is checked without running the function, so the
-- status changes of people's messages cost nothing. The replies are stamped by the statement
-- that stores inbound messages (`store::messages::insert_messages`: one UPDATE per batch over
-- the batch's conversations). Not by a trigger: a row trigger there, one function call per
-- inbound message, halved the ingest rate (≈ 4,900 instead of ≈ 8,900 messages/s), and a
-- statement trigger's join over the transition table, which the planner has no statistics
-- for, was planned against every message (≈ 660 messages/s).
ALTER TABLE campaign_recipients ADD COLUMN conversation_id uuid;
ALTER TABLE campaign_recipients ADD COLUMN message_status text;
ALTER TABLE campaign_recipients ADD COLUMN replied_at timestamptz;

-- The recipients still waiting for a reply, by conversation: probed for every inbound message.
CREATE INDEX campaign_recipients_awaiting_reply ON campaign_recipients (tenant_id, conversation_id)
    WHERE replied_at IS NULL AND conversation_id IS NOT NULL;

CREATE FUNCTION messages_campaign_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaign_recipients SET message_status = NEW.status
    WHERE tenant_id = NEW.tenant_id AND message_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_campaign_status AFTER UPDATE OF status ON messages
FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.author_id IS NULL
                   AND NEW.direction = 'outbound')
EXECUTE FUNCTION messages_campaign_status();

-- The recipients already dispatched. One whose message is gone was shown `sent`, and stays so.
UPDATE campaign_recipients r SET conversation_id = m.conversation_id, message_status = m.status
FROM messages m
WHERE m.tenant_id = r.tenant_id AND m.id = r.message_id AND r.status = 'dispatched';
UPDATE campaign_recipients SET message_status = 'sent'
WHERE status = 'dispatched' AND message_status IS NULL;
UPDATE campaign_recipients r SET replied_at = f.first_reply
FROM (SELECT m.tenant_id, m.id, MIN(i.created_at) AS first_reply
      FROM messages m JOIN messages i
          ON i.tenant_id = m.tenant_id AND i.conversation_id = m.conversation_id
      WHERE i.direction = 'inbound' AND i.created_at > m.created_at
        AND m.id IN (SELECT message_id FROM campaign_recipients WHERE status = 'dispatched')
      GROUP BY 1, 2) f
WHERE r.tenant_id = f.tenant_id AND r.message_id = f.id;
