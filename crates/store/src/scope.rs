//! Scopes: who a transaction acts for.
//!
//! Tenant-owned rows are reachable only through a transaction opened with a [`TenantScope`]. Only
//! the authentication layer in `core` constructs one, from a verified credential
//! (`TenantScope::from_verified_credential`); a test in `core` fails if any other file calls it.
//! Cross-tenant work — the login lookup by email, platform administration, background jobs, the
//! CLI — opens a [`SystemScope`], which carries the reason it exists so its use can be logged.

use palisade_domain::TenantId;

/// The tenant a transaction is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// Only for the authentication layer: `tenant_id` must come from a verified credential
    /// (a session, an API key, or a registration that just created the tenant).
    pub fn from_verified_credential(tenant_id: TenantId) -> Self {
        Self { tenant_id }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

/// Work that spans tenants. `reason` says why (e.g. `"login.lookup"`, `"platform.users"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemScope {
    reason: &'static str,
}

impl SystemScope {
    pub fn new(reason: &'static str) -> Self {
        Self { reason }
    }
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// What a transaction needs from its scope to set up row-level security.
pub trait Scope: Send + Sync {
    /// The tenant to bind, or `None` for system work.
    fn tenant(&self) -> Option<TenantId>;
    fn describe(&self) -> String;
}

impl Scope for TenantScope {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant_id)
    }
    fn describe(&self) -> String {
        format!("tenant {}", self.tenant_id)
    }
}

impl Scope for SystemScope {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
    fn describe(&self) -> String {
        format!("system ({})", self.reason)
    }
}

/// The scope of a user whose kind is known only at run time: a tenant's user, or a super admin
/// (who belongs to no tenant and is reached through a system scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserScope {
    Tenant(TenantScope),
    Platform(SystemScope),
}

impl UserScope {
    pub fn for_tenant(tenant: Option<TenantId>) -> Self {
        match tenant {
            Some(t) => UserScope::Tenant(TenantScope::from_verified_credential(t)),
            None => UserScope::Platform(SystemScope::new("platform user")),
        }
    }
}

impl Scope for UserScope {
    fn tenant(&self) -> Option<TenantId> {
        match self {
            UserScope::Tenant(t) => t.tenant(),
            UserScope::Platform(s) => s.tenant(),
        }
    }
    fn describe(&self) -> String {
        match self {
            UserScope::Tenant(t) => t.describe(),
            UserScope::Platform(s) => s.describe(),
        }
    }
}
