-- Foundation: tenants, users, sessions, refresh tokens, invites, password history, login
-- throttling, the cross-node auth change feed and the audit log.
-- Types: UUIDs are 16-byte BLOBs, times are UTC text (sqlx's encoding), booleans are integers.

CREATE TABLE tenants (
    id               BLOB PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    password_policy  TEXT NOT NULL DEFAULT 'modern' CHECK (password_policy IN ('modern', 'compliance')),
    suspended_at     TEXT,
    suspended_reason TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- A super admin belongs to no tenant: tenant_id is NULL exactly for them.
CREATE TABLE users (
    id                  BLOB PRIMARY KEY NOT NULL,
    tenant_id           BLOB REFERENCES tenants (id),
    email               TEXT NOT NULL,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('super_admin', 'admin', 'agent')),
    is_owner            INTEGER NOT NULL DEFAULT 0,
    password_hash       TEXT,
    password_changed_at TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deleted_at          TEXT,
    deleted_by          BLOB,
    CHECK ((tenant_id IS NULL) = (role = 'super_admin')),
    CHECK (is_owner = 0 OR role = 'admin')
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_tenant_id_id_key ON users (tenant_id, id);
CREATE UNIQUE INDEX users_one_owner_key ON users (tenant_id) WHERE is_owner = 1;

CREATE TABLE sessions (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB,
    user_id        BLOB NOT NULL REFERENCES users (id),
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT,
    ip             TEXT,
    user_agent     TEXT,
    browser        TEXT,
    os             TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX sessions_tenant_id_id_key ON sessions (tenant_id, id);
CREATE INDEX sessions_tenant_user_idx ON sessions (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB,
    session_id  BLOB NOT NULL REFERENCES sessions (id),
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id)
);
CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_tenant_session_idx ON refresh_tokens (tenant_id, session_id);

CREATE TABLE password_history (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX password_history_tenant_user_idx ON password_history (tenant_id, user_id, created_at);

CREATE TABLE invites (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX invites_token_hash_key ON invites (token_hash);
CREATE INDEX invites_tenant_user_idx ON invites (tenant_id, user_id);

-- Platform tables (no tenant data, no tenant_id).

-- Per-login-name failure counter and lock, keyed by a hash of the normalised email so unknown
-- and known accounts behave identically.
CREATE TABLE login_throttle (
    key_hash        BLOB PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until    TEXT
);

-- What every node must forget within a second: revoked sessions, changed users and tenants.
CREATE TABLE auth_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant')),
    subject_id BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX auth_changes_created_idx ON auth_changes (created_at);

-- Append-only. tenant_id is NULL for platform events (a super admin's login, an unknown email).
CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB,
    created_at  TEXT NOT NULL,
    actor_id    BLOB,
    actor_email TEXT,
    actor_role  TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    before      TEXT,
    after       TEXT
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
