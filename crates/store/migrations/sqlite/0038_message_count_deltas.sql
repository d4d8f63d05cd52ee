-- PostgreSQL counts messages through this table (see its migration 0038: the statement
-- trigger appends counts here instead of updating one hot row, and a worker folds them into
-- `message_counts` and `message_counts_hourly`). SQLite has one writer at a time, so its
-- per-row triggers keep updating the rollups directly; the table exists so that the schemas
-- stay alike, and stays empty here.
CREATE TABLE message_count_deltas (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             INTEGER NOT NULL,
    slot           INTEGER NOT NULL,
    connection_id  BLOB NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      BLOB NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX message_count_deltas_tenant_slot ON message_count_deltas (tenant_id, slot);
