-- Ed25519 (Standard Webhooks `v1a`) signing for outgoing webhooks, and in-app notifications.
--
-- An ed25519 endpoint keeps its `whsk_…` private key in secret_ciphertext (encrypted like a
-- `whsec_…` secret) and its `whpk_…` public key in clear in public_key, so GET can show it.

ALTER TABLE webhooks DROP CONSTRAINT webhooks_signature_algorithm_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_signature_algorithm_check
    CHECK (signature_algorithm IN ('hmac_sha256', 'ed25519'));
ALTER TABLE webhooks ADD COLUMN public_key text;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_public_key_check
    CHECK ((public_key IS NOT NULL) = (signature_algorithm = 'ed25519'));

-- One row per recipient: a notification belongs to one user of one tenant.
CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL,
    kind        text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    data        jsonb NOT NULL,
    target_type text,
    target_id   uuid,
    created_at  timestamptz NOT NULL,
    read_at     timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CONSTRAINT notifications_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX notifications_user_idx ON notifications (tenant_id, user_id, id);

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notifications
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE ON notifications TO palisade_app;
