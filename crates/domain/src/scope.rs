//! API key scopes: what an integration may do. Groups expand to scopes; unknown names are
//! refused when a key is created.
//!
//! Scopes can only narrow what a key's tenant may do, and some permissions have no scope at all:
//! an API key never manages users, API keys, WhatsApp connections or other credentials, never
//! reads the audit log and never acts on the platform.

use crate::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiScope {
    ConversationsRead,
    ConversationsWrite,
    ConversationsDelete,
    ConversationsExport,
    ContactsRead,
    ContactsWrite,
    ContactsDelete,
    ContactsExport,
    CampaignsRead,
    CampaignsWrite,
    CampaignsDelete,
    TemplatesRead,
    TemplatesWrite,
    TemplatesDelete,
    WebhooksRead,
    WebhooksWrite,
    AnalyticsRead,
}

impl ApiScope {
    pub const ALL: [ApiScope; 17] = [
        ApiScope::ConversationsRead,
        ApiScope::ConversationsWrite,
        ApiScope::ConversationsDelete,
        ApiScope::ConversationsExport,
        ApiScope::ContactsRead,
        ApiScope::ContactsWrite,
        ApiScope::ContactsDelete,
        ApiScope::ContactsExport,
        ApiScope::CampaignsRead,
        ApiScope::CampaignsWrite,
        ApiScope::CampaignsDelete,
        ApiScope::TemplatesRead,
        ApiScope::TemplatesWrite,
        ApiScope::TemplatesDelete,
        ApiScope::WebhooksRead,
        ApiScope::WebhooksWrite,
        ApiScope::AnalyticsRead,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApiScope::ConversationsRead => "conversations:read",
            ApiScope::ConversationsWrite => "conversations:write",
            ApiScope::ConversationsDelete => "conversations:delete",
            ApiScope::ConversationsExport => "conversations:export",
            ApiScope::ContactsRead => "contacts:read",
            ApiScope::ContactsWrite => "contacts:write",
            ApiScope::ContactsDelete => "contacts:delete",
            ApiScope::ContactsExport => "contacts:export",
            ApiScope::CampaignsRead => "campaigns:read",
            ApiScope::CampaignsWrite => "campaigns:write",
            ApiScope::CampaignsDelete => "campaigns:delete",
            ApiScope::TemplatesRead => "templates:read",
            ApiScope::TemplatesWrite => "templates:write",
            ApiScope::TemplatesDelete => "templates:delete",
            ApiScope::WebhooksRead => "webhooks:read",
            ApiScope::WebhooksWrite => "webhooks:write",
            ApiScope::AnalyticsRead => "analytics:read",
        }
    }

    pub fn parse(s: &str) -> Option<ApiScope> {
        ApiScope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read")
    }

    /// Expands a scope name or group (`read_only`, `full_access`) to scopes; `None` if unknown.
    pub fn expand(name: &str) -> Option<Vec<ApiScope>> {
        match name {
            "full_access" => Some(ApiScope::ALL.to_vec()),
            "read_only" => Some(ApiScope::ALL.into_iter().filter(|s| s.is_read()).collect()),
            other => ApiScope::parse(other).map(|s| vec![s]),
        }
    }
}

/// The scopes a request needs for a permission, any one of which suffices; `None` when API keys
/// may never have the permission.
pub fn scopes_for(p: Permission) -> Option<&'static [ApiScope]> {
    use ApiScope as S;
    match p {
        Permission::TenantRead => Some(&[]),
        Permission::ContactsRead => Some(&[S::ContactsRead]),
        Permission::ContactsWrite => Some(&[S::ContactsWrite]),
        Permission::ContactsDelete => Some(&[S::ContactsDelete]),
        Permission::DataExport => Some(&[S::ContactsExport, S::ConversationsExport]),
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
        | Permission::PlatformImpersonate => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_groups_expand() {
        for s in ApiScope::ALL {
            assert_eq!(ApiScope::parse(s.as_str()), Some(s));
        }
        assert_eq!(ApiScope::expand("full_access").unwrap().len(), 17);
        let ro = ApiScope::expand("read_only").unwrap();
        assert!(ro.contains(&ApiScope::ContactsRead) && !ro.contains(&ApiScope::ContactsWrite));
        assert!(ApiScope::expand("contacts:admin").is_none());
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
