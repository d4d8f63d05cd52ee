-- Tamper evidence: each chain (one per tenant, one for platform events) is a SHA-256 hash chain.
-- audit_chain_heads holds each chain's newest sequence number and hash, so a deleted tail is
-- detected too, and appends to one chain serialise on its head row (a row lock).

ALTER TABLE audit_log
    ADD COLUMN chain_id uuid,
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;
CREATE UNIQUE INDEX audit_log_chain_seq_key ON audit_log (chain_id, seq);
CREATE INDEX audit_log_tenant_action_idx ON audit_log (tenant_id, action, id);

CREATE TABLE audit_chain_heads (
    chain_id  uuid PRIMARY KEY,
    tenant_id uuid,
    seq       bigint NOT NULL,
    hash      text NOT NULL
);
ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain_heads
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO palisade_app;
