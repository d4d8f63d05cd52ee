-- Foundation: tenants, users, sessions, refresh tokens, invites, password history, login
-- throttling, the cross-node auth change feed and the audit log.
--
-- The application connects as (or SETs ROLE to) palisade_app: no superuser, no BYPASSRLS, not an
-- owner, so the row-level security below binds it. Migrations run as the owner.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'palisade_app') THEN
        CREATE ROLE palisade_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;

-- The tenant of the current transaction, or NULL when none is set. NULLIF because a custom
-- setting that was set earlier on this connection reads back as '' rather than NULL.
CREATE FUNCTION app_tenant_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE FUNCTION app_is_system() RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.system', true), '') = 'on' $$;

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    password_policy  text NOT NULL DEFAULT 'modern' CHECK (password_policy IN ('modern', 'compliance')),
    suspended_at     timestamptz,
    suspended_reason text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid REFERENCES tenants (id),
    email               text NOT NULL,
    name                text NOT NULL,
    role                text NOT NULL CHECK (role IN ('super_admin', 'admin', 'agent')),
    is_owner            boolean NOT NULL DEFAULT false,
    password_hash       text,
    password_changed_at timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    deleted_by          uuid,
    CHECK ((tenant_id IS NULL) = (role = 'super_admin')),
    CHECK (NOT is_owner OR role = 'admin')
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_tenant_id_id_key ON users (tenant_id, id);
CREATE UNIQUE INDEX users_one_owner_key ON users (tenant_id) WHERE is_owner;

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    tenant_id      uuid,
    user_id        uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    ip             text,
    user_agent     text,
    browser        text,
    os             text,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CONSTRAINT sessions_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX sessions_tenant_user_idx ON sessions (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_tenant_session_idx ON refresh_tokens (tenant_id, session_id);

CREATE TABLE password_history (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    user_id       uuid NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX password_history_tenant_user_idx ON password_history (tenant_id, user_id, created_at);

CREATE TABLE invites (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CONSTRAINT invites_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invites_tenant_user_idx ON invites (tenant_id, user_id);

CREATE TABLE login_throttle (
    key_hash        bytea PRIMARY KEY,
    failures        bigint NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until    timestamptz
);

CREATE TABLE auth_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('session', 'user', 'tenant')),
    subject_id uuid NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX auth_changes_created_idx ON auth_changes (created_at);

CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    created_at  timestamptz NOT NULL,
    actor_id    uuid,
    actor_email text,
    actor_role  text,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    ip          text,
    user_agent  text,
    request_id  text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id);

-- Row-level security: a transaction sees the rows of the tenant it set, or everything when it
-- runs under SystemScope. Rows with a NULL tenant (super admins, platform events) are visible
-- only to SystemScope.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'refresh_tokens', 'password_history', 'invites', 'audit_log']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id() OR app_is_system()) WITH CHECK (tenant_id = app_tenant_id() OR app_is_system())', t);
    END LOOP;
END
$$;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_tenant_id() OR app_is_system())
    WITH CHECK (id = app_tenant_id() OR app_is_system());

GRANT USAGE ON SCHEMA public TO palisade_app;
GRANT EXECUTE ON FUNCTION app_tenant_id(), app_is_system() TO palisade_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, sessions, refresh_tokens, password_history,
    invites, login_throttle, auth_changes TO palisade_app;
-- The audit log is append-only for the application.
GRANT SELECT, INSERT ON audit_log TO palisade_app;
