//! API key scopes: what an integration may do. Groups expand to scopes; unknown names are
//! refused when a key is created.
//!
//! Scopes can only narrow what a key's tenant may do, and some permissions have no scope at all:
//! an API key never manages users, API keys, WhatsApp connections or other credentials, never
//! reads the audit log and never acts on the platform.

use crate::Permission;
use serde::Serialize;

// A key stores the names it was given (groups unexpanded, so `full_access` keeps meaning every
// scope as scopes are added); a request's principal holds them expanded ([`Scope::expand`]).
// Serialized (and documented, as `ScopeName`) by name; a unit test keeps serde's names and
// `as_str` equal. (A plain comment: the doc comment below is the schema's description.)
/// An API key scope, or a group of them (`read_only`, `full_access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(as = ScopeName)]
pub enum Scope {
    #[serde(rename = "conversations:read")]
    ConversationsRead,
    #[serde(rename = "conversations:write")]
    ConversationsWrite,
    #[serde(rename = "conversations:delete")]
    ConversationsDelete,
    #[serde(rename = "conversations:export")]
    ConversationsExport,
    #[serde(rename = "contacts:read")]
    ContactsRead,
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    #[serde(rename = "contacts:delete")]
    ContactsDelete,
    #[serde(rename = "contacts:export")]
    ContactsExport,
    #[serde(rename = "deals:read")]
    DealsRead,
    #[serde(rename = "deals:write")]
    DealsWrite,
    #[serde(rename = "deals:delete")]
    DealsDelete,
    #[serde(rename = "tickets:read")]
    TicketsRead,
    #[serde(rename = "tickets:write")]
    TicketsWrite,
    #[serde(rename = "tickets:delete")]
    TicketsDelete,
    #[serde(rename = "campaigns:read")]
    CampaignsRead,
    #[serde(rename = "campaigns:write")]
    CampaignsWrite,
    #[serde(rename = "campaigns:delete")]
    CampaignsDelete,
    #[serde(rename = "templates:read")]
    TemplatesRead,
    #[serde(rename = "templates:write")]
    TemplatesWrite,
    #[serde(rename = "templates:delete")]
    TemplatesDelete,
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "analytics:read")]
    AnalyticsRead,
    #[serde(rename = "read_only")]
    ReadOnly,
    #[serde(rename = "full_access")]
    FullAccess,
}

impl Scope {
    /// The scopes themselves (what `full_access` stands for).
    pub const GRANTS: [Scope; 23] = [
        Scope::ConversationsRead,
        Scope::ConversationsWrite,
        Scope::ConversationsDelete,
        Scope::ConversationsExport,
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::ContactsDelete,
        Scope::ContactsExport,
        Scope::DealsRead,
        Scope::DealsWrite,
        Scope::DealsDelete,
        Scope::TicketsRead,
        Scope::TicketsWrite,
        Scope::TicketsDelete,
        Scope::CampaignsRead,
        Scope::CampaignsWrite,
        Scope::CampaignsDelete,
        Scope::TemplatesRead,
        Scope::TemplatesWrite,
        Scope::TemplatesDelete,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::AnalyticsRead,
    ];

    /// The groups, each standing for several scopes.
    pub const GROUPS: [Scope; 2] = [Scope::ReadOnly, Scope::FullAccess];

    /// Every name a key may be given: the scopes, then the groups.
    pub fn all() -> impl Iterator<Item = Scope> {
        Scope::GRANTS.into_iter().chain(Scope::GROUPS)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::ConversationsRead => "conversations:read",
            Scope::ConversationsWrite => "conversations:write",
            Scope::ConversationsDelete => "conversations:delete",
            Scope::ConversationsExport => "conversations:export",
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::ContactsDelete => "contacts:delete",
            Scope::ContactsExport => "contacts:export",
            Scope::DealsRead => "deals:read",
            Scope::DealsWrite => "deals:write",
            Scope::DealsDelete => "deals:delete",
            Scope::TicketsRead => "tickets:read",
            Scope::TicketsWrite => "tickets:write",
            Scope::TicketsDelete => "tickets:delete",
            Scope::CampaignsRead => "campaigns:read",
            Scope::CampaignsWrite => "campaigns:write",
            Scope::CampaignsDelete => "campaigns:delete",
            Scope::TemplatesRead => "templates:read",
            Scope::TemplatesWrite => "templates:write",
            Scope::TemplatesDelete => "templates:delete",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::AnalyticsRead => "analytics:read",
            Scope::ReadOnly => "read_only",
            Scope::FullAccess => "full_access",
        }
    }

    /// A scope or group by name; `None` if unknown.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::all().find(|x| x.as_str() == s)
    }

    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read")
    }

    /// The scopes a name grants: a group its members, a scope itself.
    pub fn expand(self) -> Vec<Scope> {
        match self {
            Scope::FullAccess => Scope::GRANTS.to_vec(),
            Scope::ReadOnly => Scope::GRANTS.into_iter().filter(|s| s.is_read()).collect(),
            one => vec![one],
        }
    }
}

/// The scopes a request needs for a permission, any one of which suffices; `None` when API keys
/// may never have the permission.
pub fn scopes_for(p: Permission) -> Option<&'static [Scope]> {
    use Scope as S;
    match p {
        Permission::TenantRead => Some(&[]),
        Permission::ContactsRead => Some(&[S::ContactsRead]),
        Permission::ContactsWrite => Some(&[S::ContactsWrite]),
        Permission::ContactsDelete => Some(&[S::ContactsDelete]),
        Permission::DataExport => Some(&[S::ContactsExport, S::ConversationsExport]),
        Permission::DealsRead => Some(&[S::DealsRead]),
        Permission::DealsWrite | Permission::PipelinesManage => Some(&[S::DealsWrite]),
        Permission::DealsDelete => Some(&[S::DealsDelete]),
        Permission::TicketsRead => Some(&[S::TicketsRead]),
        Permission::TicketsWrite => Some(&[S::TicketsWrite]),
        Permission::TicketsDelete => Some(&[S::TicketsDelete]),
        Permission::TemplatesRead => Some(&[S::TemplatesRead]),
        Permission::TemplatesManage => Some(&[S::TemplatesWrite]),
        Permission::TemplatesDelete => Some(&[S::TemplatesDelete]),
        Permission::AnalyticsRead => Some(&[S::AnalyticsRead]),
        Permission::CampaignsRead => Some(&[S::CampaignsRead]),
        Permission::CampaignsWrite => Some(&[S::CampaignsWrite]),
        Permission::CampaignsDelete => Some(&[S::CampaignsDelete]),
        Permission::ConversationsRead => Some(&[S::ConversationsRead]),
        Permission::ConversationsWrite => Some(&[S::ConversationsWrite]),
        Permission::WebhooksRead => Some(&[S::WebhooksRead, S::WebhooksWrite]),
        Permission::WebhooksManage => Some(&[S::WebhooksWrite]),
        Permission::TenantManage
        | Permission::UsersRead
        | Permission::UsersManage
        | Permission::UsersDeleteAdmin
        | Permission::UsersRestore
        | Permission::ApiKeysManage
        | Permission::WhatsAppConnectionsManage
        | Permission::AuditLogRead
        | Permission::NotificationsRead
        | Permission::WebhooksApprove
        | Permission::SessionsManage
        | Permission::PlatformTenantsManage
        | Permission::PlatformImpersonate
        | Permission::SecurityAlertsRead
        | Permission::SecurityAlertsManage
        | Permission::IntegrationsManage => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_groups_expand() {
        assert_eq!(Scope::all().count(), 25);
        for s in Scope::all() {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Scope::FullAccess.expand(), Scope::GRANTS);
        let ro = Scope::ReadOnly.expand();
        assert!(ro.contains(&Scope::ContactsRead) && !ro.contains(&Scope::ContactsWrite));
        assert_eq!(Scope::ContactsWrite.expand(), [Scope::ContactsWrite]);
        assert!(Scope::GRANTS
            .iter()
            .all(|s| s.expand() == [*s] && !matches!(s, Scope::ReadOnly | Scope::FullAccess)));
        assert!(Scope::parse("contacts:admin").is_none());
    }

    #[test]
    fn keys_never_manage_credentials_or_people() {
        for p in [
            Permission::UsersManage,
            Permission::ApiKeysManage,
            Permission::WhatsAppConnectionsManage,
            Permission::WebhooksApprove,
            Permission::SessionsManage,
            Permission::PlatformImpersonate,
        ] {
            assert!(scopes_for(p).is_none(), "{p:?}");
        }
    }
}
