-- Narrow analytics indexes on `conversations` (the ingest figure: ≥ 10,000 messages/s on
-- PostgreSQL). Every inbound message moves its conversation's `last_message_at`, an indexed
-- column, so PostgreSQL cannot update the row in place (no HOT update) and writes a new entry
-- into every index of the table, whichever columns changed. 0031 had widened the two analytics
-- indexes into covering ones (seven and five columns) so that a year of analytics reads them
-- without visiting the rows; on every message they cost two wide index entries. Now:
--   * created: `(tenant_id, created_at)`, the range the analytics read; the other columns come
--     from the rows (a year of a busy tenant, 50,000 conversations: about 70 ms, inside the
--     200 ms target);
--   * resolved: `(tenant_id, resolved_at)` for resolved conversations only: an open
--     conversation, the one a message updates, has no entry at all.
-- Measured with `palisade-bench ingest` (fresh database, 25 s, three runs alternated): ≈ 9,730
-- messages/s before, ≈ 10,160 after.
--
-- SQLite keeps the covering indexes of 0031: it rewrites only the indexes whose columns
-- changed, so they cost it nothing per message, and its analytics need them. The schema
-- comparison lists the difference as deliberate (tests/it/schema_parity.rs).
DROP INDEX conversations_tenant_created;
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at);
DROP INDEX conversations_tenant_resolved;
CREATE INDEX conversations_tenant_resolved ON conversations (tenant_id, resolved_at)
    WHERE resolved_at IS NOT NULL;
