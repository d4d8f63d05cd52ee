-- Messages per UTC hour next to the quarter hours of migration 0031 (issue 16): a year of
-- day buckets reads a quarter of the rows. A local day of a zone whose offset is whole hours
-- (New York, Berlin) is a whole number of hours; one of +05:30 or +05:45 (Kolkata, Kathmandu)
-- starts inside an hour, and its ends are read from `message_counts` (store::analytics::split).
-- Same columns and rules as `message_counts`: `slot` is the hour's start in Unix seconds (a
-- multiple of 3600), the nil author for a message without one, notes not counted, kept when a
-- contact is erased.
CREATE TABLE message_counts_hourly (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    slot           bigint NOT NULL,
    connection_id  uuid NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      uuid NOT NULL,
    n              bigint NOT NULL,
    PRIMARY KEY (tenant_id, slot, connection_id, direction, author_id)
);

ALTER TABLE message_counts_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_counts_hourly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_counts_hourly
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON message_counts_hourly TO palisade_app;

-- The statement trigger of migration 0031 also counts the statement's messages per hour (one
-- upsert per hour, number, direction and author, in key order).
CREATE OR REPLACE FUNCTION messages_analytics() RETURNS trigger LANGUAGE plpgsql AS $$
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

    INSERT INTO message_counts_hourly AS c (tenant_id, slot, connection_id, direction, author_id, n)
    SELECT m.tenant_id, CAST(floor(EXTRACT(EPOCH FROM m.created_at) / 3600) AS bigint) * 3600,
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

-- The counts so far, from the quarter hours (which keep the messages of erased contacts).
INSERT INTO message_counts_hourly (tenant_id, slot, connection_id, direction, author_id, n)
SELECT c.tenant_id, c.slot - ((c.slot % 3600) + 3600) % 3600, c.connection_id, c.direction,
    c.author_id, SUM(c.n)
FROM message_counts c
GROUP BY 1, 2, 3, 4, 5;
