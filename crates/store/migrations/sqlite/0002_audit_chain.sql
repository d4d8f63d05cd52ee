-- Tamper evidence: each chain (one per tenant, one for platform events) is a SHA-256 hash chain.
-- audit_chain_heads holds each chain's newest sequence number and hash, so a deleted tail is
-- detected too, and appends to one chain serialise on its head row.

ALTER TABLE audit_log ADD COLUMN chain_id BLOB;
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_chain_seq_key ON audit_log (chain_id, seq);
CREATE INDEX audit_log_tenant_action_idx ON audit_log (tenant_id, action, id);

CREATE TABLE audit_chain_heads (
    chain_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id BLOB,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
