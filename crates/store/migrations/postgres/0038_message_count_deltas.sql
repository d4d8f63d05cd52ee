-- Messages are counted without a hot row (the ingest figure: ≥ 10,000 messages/s on
-- PostgreSQL). The statement trigger of 0031/0035 upserted each statement's counts into
-- `message_counts` and `message_counts_hourly`; under load every inbound batch of a tenant's
-- number falls in the same quarter hour, so every ingest transaction updated the same two rows
-- and held their locks until it committed: the node's parallel ingest pipelines queued behind
-- each other (one at a time instead of three; ≈ 3,100 messages/s instead of ≈ 12,000).
--
-- Now the trigger appends the statement's counts to `message_count_deltas` (insert only: no
-- row is shared between transactions), and a worker on every node folds them into the two
-- rollups about once a second (`store::analytics::fold_count_deltas`: the deltas are deleted
-- and added in one statement; two nodes folding at once take different rows). Readers add
-- the deltas not yet folded to the rollups (`store::analytics`), so a count is complete the
-- moment its messages commit, as before. `slot` is the quarter hour, as in `message_counts`.
--
-- SQLite has one writer at a time and keeps its per-row triggers; the table exists there too
-- (the schemas stay alike) and stays empty.
CREATE TABLE message_count_deltas (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    slot           bigint NOT NULL,
    connection_id  uuid NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      uuid NOT NULL,
    n              bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX message_count_deltas_tenant_slot ON message_count_deltas (tenant_id, slot);

ALTER TABLE message_count_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_count_deltas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_count_deltas
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
-- UPDATE: the fold locks the rows it takes (`FOR UPDATE SKIP LOCKED`).
GRANT SELECT, INSERT, UPDATE, DELETE ON message_count_deltas TO palisade_app;

CREATE OR REPLACE FUNCTION messages_analytics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_count_deltas (tenant_id, slot, connection_id, direction, author_id, n)
    SELECT m.tenant_id, CAST(floor(EXTRACT(EPOCH FROM m.created_at) / 900) AS bigint) * 900,
        m.connection_id, m.direction,
        COALESCE(m.author_id, '00000000-0000-0000-0000-000000000000'), COUNT(*)
    FROM new_messages m
    WHERE m.direction IN ('inbound', 'outbound')
    GROUP BY 1, 2, 3, 4, 5;

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
