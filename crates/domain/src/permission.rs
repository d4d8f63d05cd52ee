//! The one permission table. Every service function starts with `principal.require(Permission::…)`,
//! so the JSON API, the console, jobs and the CLI all pass the same check.
//!
//! `docs/permissions.md` is generated from [`Permission::markdown_table`]; a test fails when the two
//! drift apart.

use crate::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the tenant's name and settings.
    TenantRead,
    /// Change the tenant's name and password policy.
    TenantManage,
    /// List and view the tenant's users.
    UsersRead,
    /// Create users, change their name or role, lift a login lock, delete agents.
    UsersManage,
    /// Delete an admin (never the owner).
    UsersDeleteAdmin,
    /// Restore a soft-deleted user within 30 days.
    UsersRestore,
    /// Create, list and revoke API keys.
    ApiKeysManage,
    /// See outgoing webhooks, their deliveries and the tenant's allowed domains.
    WebhooksRead,
    /// Create, change, test and delete outgoing webhooks.
    WebhooksManage,
    /// Approve pending webhooks and change the tenant's allowed domains (never an API key).
    WebhooksApprove,
    /// Connect and disconnect WhatsApp Business numbers.
    WhatsAppConnectionsManage,
    /// Read the tenant's audit log.
    AuditLogRead,
    /// Read contacts.
    ContactsRead,
    /// Create and edit contacts.
    ContactsWrite,
    /// Delete contacts.
    ContactsDelete,
    /// Export contacts or conversations.
    DataExport,
    /// Read pipelines, deals and their stage history.
    DealsRead,
    /// Create deals, edit them and move them between stages.
    DealsWrite,
    /// Delete deals and pipelines.
    DealsDelete,
    /// Create pipelines and change their stages.
    PipelinesManage,
    /// Read tickets, their comments and attachments (and download the files).
    TicketsRead,
    /// Open and edit tickets, comment on them and attach files.
    TicketsWrite,
    /// Delete tickets with their comments and attachments.
    TicketsDelete,
    /// Read the WhatsApp message templates of the tenant's numbers.
    TemplatesRead,
    /// Sync templates from Meta and submit new ones.
    TemplatesManage,
    /// Delete templates (at Meta and here).
    TemplatesDelete,
    /// Read conversations and messages.
    ConversationsRead,
    /// Answer conversations, change their status, assignee and labels, add notes.
    ConversationsWrite,
    /// Read and mark read one's own in-app notifications.
    NotificationsRead,
    /// Sign out one's own other sessions (one, or all at once).
    SessionsManage,
    /// List, suspend and reactivate tenants.
    PlatformTenantsManage,
    /// Act as a tenant's owner for support.
    PlatformImpersonate,
    /// See the tenant's security alerts and metrics (super admins: every tenant's).
    SecurityAlertsRead,
    /// Acknowledge and resolve security alerts.
    SecurityAlertsManage,
    /// Connect shops (WooCommerce) whose order webhooks create contacts and orders and send
    /// templates, change their rules and rotate their secrets.
    IntegrationsManage,
    /// Read the tenant's analytics (messages, conversations, agents, deals).
    AnalyticsRead,
    /// Read broadcast campaigns, their counts and recipients.
    CampaignsRead,
    /// Create, edit, start, pause, resume and cancel broadcast campaigns.
    CampaignsWrite,
    /// Delete broadcast campaigns (not while running).
    CampaignsDelete,
}

const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_AGENT: &[Role] = &[Role::Admin, Role::Agent];
const SUPER: &[Role] = &[Role::SuperAdmin];
const ADMIN_SUPER: &[Role] = &[Role::Admin, Role::SuperAdmin];
const EVERYONE: &[Role] = &[Role::Admin, Role::Agent, Role::SuperAdmin];

impl Permission {
    pub const ALL: [Permission; 39] = [
        Permission::TenantRead,
        Permission::TenantManage,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::UsersDeleteAdmin,
        Permission::UsersRestore,
        Permission::ApiKeysManage,
        Permission::WebhooksRead,
        Permission::WebhooksManage,
        Permission::WebhooksApprove,
        Permission::WhatsAppConnectionsManage,
        Permission::AuditLogRead,
        Permission::ContactsRead,
        Permission::ContactsWrite,
        Permission::ContactsDelete,
        Permission::DataExport,
        Permission::DealsRead,
        Permission::DealsWrite,
        Permission::DealsDelete,
        Permission::PipelinesManage,
        Permission::TicketsRead,
        Permission::TicketsWrite,
        Permission::TicketsDelete,
        Permission::TemplatesRead,
        Permission::TemplatesManage,
        Permission::TemplatesDelete,
        Permission::ConversationsRead,
        Permission::ConversationsWrite,
        Permission::NotificationsRead,
        Permission::SessionsManage,
        Permission::PlatformTenantsManage,
        Permission::PlatformImpersonate,
        Permission::SecurityAlertsRead,
        Permission::SecurityAlertsManage,
        Permission::IntegrationsManage,
        Permission::AnalyticsRead,
        Permission::CampaignsRead,
        Permission::CampaignsWrite,
        Permission::CampaignsDelete,
    ];

    /// The roles granted this permission. This match is the whole policy.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Permission::TenantRead => ADMIN_AGENT,
            Permission::TenantManage => ADMIN,
            Permission::UsersRead => EVERYONE,
            Permission::UsersManage => ADMIN_SUPER,
            Permission::UsersDeleteAdmin => SUPER,
            Permission::UsersRestore => SUPER,
            Permission::ApiKeysManage => ADMIN,
            Permission::WebhooksRead => ADMIN,
            Permission::WebhooksManage => ADMIN,
            Permission::WebhooksApprove => ADMIN,
            Permission::WhatsAppConnectionsManage => ADMIN,
            Permission::AuditLogRead => ADMIN_SUPER,
            Permission::ContactsRead => ADMIN_AGENT,
            Permission::ContactsWrite => ADMIN_AGENT,
            Permission::ContactsDelete => ADMIN,
            Permission::DataExport => ADMIN,
            Permission::DealsRead => ADMIN_AGENT,
            Permission::DealsWrite => ADMIN_AGENT,
            Permission::DealsDelete => ADMIN,
            Permission::PipelinesManage => ADMIN,
            Permission::TicketsRead => ADMIN_AGENT,
            Permission::TicketsWrite => ADMIN_AGENT,
            Permission::TicketsDelete => ADMIN,
            Permission::TemplatesRead => ADMIN_AGENT,
            Permission::TemplatesManage => ADMIN,
            Permission::TemplatesDelete => ADMIN,
            Permission::ConversationsRead => ADMIN_AGENT,
            Permission::ConversationsWrite => ADMIN_AGENT,
            Permission::NotificationsRead => ADMIN_AGENT,
            Permission::SessionsManage => EVERYONE,
            Permission::PlatformTenantsManage => SUPER,
            Permission::PlatformImpersonate => SUPER,
            Permission::SecurityAlertsRead => ADMIN_SUPER,
            Permission::SecurityAlertsManage => ADMIN_SUPER,
            Permission::IntegrationsManage => ADMIN,
            Permission::AnalyticsRead => ADMIN_AGENT,
            Permission::CampaignsRead => ADMIN_AGENT,
            Permission::CampaignsWrite => ADMIN,
            Permission::CampaignsDelete => ADMIN,
        }
    }

    pub fn allows(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    /// Whether a super admin impersonating a tenant's owner may use this permission. This match
    /// is the whole impersonation policy (a read-only impersonation is further limited to safe
    /// methods by the web layer). Support may see and fix the tenant's data; it never manages
    /// people (users, invitations, roles, ownership, login locks) or any credential (API keys,
    /// webhooks and their secrets, WhatsApp connections, other sessions; passwords are refused
    /// by the password change itself), so nothing it does outlives the impersonation as access.
    pub const fn impersonation_may_use(self) -> bool {
        match self {
            Permission::TenantRead
            | Permission::TenantManage
            | Permission::UsersRead
            | Permission::AuditLogRead
            | Permission::SecurityAlertsRead
            | Permission::ContactsRead
            | Permission::ContactsWrite
            | Permission::ContactsDelete
            | Permission::DataExport
            | Permission::DealsRead
            | Permission::DealsWrite
            | Permission::DealsDelete
            | Permission::PipelinesManage
            | Permission::TicketsRead
            | Permission::TicketsWrite
            | Permission::TicketsDelete
            | Permission::TemplatesRead
            | Permission::TemplatesManage
            | Permission::TemplatesDelete
            | Permission::ConversationsRead
            | Permission::ConversationsWrite
            | Permission::NotificationsRead
            | Permission::AnalyticsRead
            | Permission::CampaignsRead
            | Permission::CampaignsWrite
            | Permission::CampaignsDelete => true,
            Permission::UsersManage
            | Permission::UsersDeleteAdmin
            | Permission::UsersRestore
            | Permission::ApiKeysManage
            | Permission::WebhooksRead
            | Permission::WebhooksManage
            | Permission::WebhooksApprove
            | Permission::WhatsAppConnectionsManage
            | Permission::SessionsManage
            | Permission::PlatformTenantsManage
            | Permission::PlatformImpersonate
            | Permission::SecurityAlertsManage
            | Permission::IntegrationsManage => false,
        }
    }

    /// Whether a user whose password has expired may still use this permission (they may sign
    /// out and manage their sessions, and change the password).
    pub const fn allowed_with_expired_password(self) -> bool {
        matches!(self, Permission::SessionsManage)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::TenantRead => "tenant.read",
            Permission::TenantManage => "tenant.manage",
            Permission::UsersRead => "users.read",
            Permission::UsersManage => "users.manage",
            Permission::UsersDeleteAdmin => "users.delete_admin",
            Permission::UsersRestore => "users.restore",
            Permission::ApiKeysManage => "api_keys.manage",
            Permission::WebhooksRead => "webhooks.read",
            Permission::WebhooksManage => "webhooks.manage",
            Permission::WebhooksApprove => "webhooks.approve",
            Permission::WhatsAppConnectionsManage => "whatsapp_connections.manage",
            Permission::AuditLogRead => "audit_log.read",
            Permission::ContactsRead => "contacts.read",
            Permission::ContactsWrite => "contacts.write",
            Permission::ContactsDelete => "contacts.delete",
            Permission::DataExport => "data.export",
            Permission::DealsRead => "deals.read",
            Permission::DealsWrite => "deals.write",
            Permission::DealsDelete => "deals.delete",
            Permission::PipelinesManage => "pipelines.manage",
            Permission::TicketsRead => "tickets.read",
            Permission::TicketsWrite => "tickets.write",
            Permission::TicketsDelete => "tickets.delete",
            Permission::TemplatesRead => "templates.read",
            Permission::TemplatesManage => "templates.manage",
            Permission::TemplatesDelete => "templates.delete",
            Permission::ConversationsRead => "conversations.read",
            Permission::ConversationsWrite => "conversations.write",
            Permission::NotificationsRead => "notifications.read",
            Permission::SessionsManage => "sessions.manage",
            Permission::PlatformTenantsManage => "platform.tenants.manage",
            Permission::PlatformImpersonate => "platform.impersonate",
            Permission::SecurityAlertsRead => "security_alerts.read",
            Permission::SecurityAlertsManage => "security_alerts.manage",
            Permission::IntegrationsManage => "integrations.manage",
            Permission::AnalyticsRead => "analytics.read",
            Permission::CampaignsRead => "campaigns.read",
            Permission::CampaignsWrite => "campaigns.write",
            Permission::CampaignsDelete => "campaigns.delete",
        }
    }

    const fn description(self) -> &'static str {
        match self {
            Permission::TenantRead => "See the tenant's name and settings",
            Permission::TenantManage => "Change the tenant's name and password policy",
            Permission::UsersRead => "List and view users (super admins: of any tenant)",
            Permission::UsersManage => {
                "Create users, edit name and role, lift a login lock, delete agents"
            }
            Permission::UsersDeleteAdmin => "Delete an admin (never the owner)",
            Permission::UsersRestore => "Restore a deleted user within 30 days",
            Permission::ApiKeysManage => "Create, list and revoke API keys",
            Permission::WebhooksRead => {
                "See outgoing webhooks, their deliveries and the allowed domains"
            }
            Permission::WebhooksManage => "Create, change, test and delete outgoing webhooks",
            Permission::WebhooksApprove => {
                "Approve pending webhooks and change the tenant's allowed domains"
            }
            Permission::WhatsAppConnectionsManage => "Connect and disconnect WhatsApp numbers",
            Permission::AuditLogRead => "Read the audit log (super admins: of every tenant)",
            Permission::ContactsRead => "Read contacts",
            Permission::ContactsWrite => "Create and edit contacts",
            Permission::ContactsDelete => "Delete contacts",
            Permission::DataExport => "Export contacts and conversations",
            Permission::DealsRead => "Read pipelines, deals and a deal's stage history",
            Permission::DealsWrite => "Create and edit deals, move them between stages",
            Permission::DealsDelete => "Delete deals and pipelines",
            Permission::PipelinesManage => "Create pipelines and change their stages",
            Permission::TicketsRead => "Read tickets, comments and attachments",
            Permission::TicketsWrite => "Open and edit tickets, comment, attach files",
            Permission::TicketsDelete => "Delete tickets with their comments and files",
            Permission::TemplatesRead => "Read the WhatsApp message templates",
            Permission::TemplatesManage => "Sync message templates from Meta, submit new ones",
            Permission::TemplatesDelete => "Delete message templates (at Meta and here)",
            Permission::ConversationsRead => "Read conversations and messages",
            Permission::ConversationsWrite => "Answer, assign, label and resolve conversations",
            Permission::NotificationsRead => "Read and mark read one's own notifications",
            Permission::SessionsManage => "Sign out one's own other sessions (one or all)",
            Permission::PlatformTenantsManage => "List, suspend and reactivate tenants",
            Permission::PlatformImpersonate => "Impersonate a tenant's owner, under audit",
            Permission::SecurityAlertsRead => {
                "See security alerts and metrics (super admins: of every tenant)"
            }
            Permission::SecurityAlertsManage => "Acknowledge and resolve security alerts",
            Permission::IntegrationsManage => {
                "Connect shops (order webhooks), change their rules and secrets"
            }
            Permission::AnalyticsRead => {
                "Read analytics: messages, conversations, response times, agents, deal value"
            }
            Permission::CampaignsRead => "Read broadcast campaigns, their counts and recipients",
            Permission::CampaignsWrite => {
                "Create, edit, start, pause, resume and cancel broadcast campaigns"
            }
            Permission::CampaignsDelete => "Delete broadcast campaigns (not while running)",
        }
    }

    /// The permission matrix as a Markdown table (the body of `docs/permissions.md`).
    pub fn markdown_table() -> String {
        let mut out = String::from(
            "| permission | what it allows | super_admin | admin | agent | impersonation |\n",
        );
        out.push_str("|---|---|:-:|:-:|:-:|:-:|\n");
        for p in Permission::ALL {
            let mark = |r: Role| if p.allows(r) { "yes" } else { "—" };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                p.as_str(),
                p.description(),
                mark(Role::SuperAdmin),
                mark(Role::Admin),
                mark(Role::Agent),
                if p.impersonation_may_use() {
                    "yes"
                } else {
                    "—"
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_management_is_admin_only() {
        for p in [
            Permission::ApiKeysManage,
            Permission::WebhooksManage,
            Permission::WhatsAppConnectionsManage,
        ] {
            assert!(p.allows(Role::Admin));
            assert!(!p.allows(Role::Agent));
            assert!(
                !p.allows(Role::SuperAdmin),
                "super admins act on tenants only by impersonation"
            );
        }
    }

    #[test]
    fn impersonation_never_manages_people_or_credentials() {
        for p in [
            Permission::UsersManage,
            Permission::UsersDeleteAdmin,
            Permission::UsersRestore,
            Permission::ApiKeysManage,
            Permission::WebhooksManage,
            Permission::WebhooksApprove,
            Permission::WhatsAppConnectionsManage,
            Permission::SessionsManage,
        ] {
            assert!(!p.impersonation_may_use(), "{p:?}");
        }
        assert!(Permission::ContactsWrite.impersonation_may_use());
        assert!(Permission::ConversationsWrite.impersonation_may_use());
    }

    #[test]
    fn only_super_admins_delete_admins_and_restore() {
        assert_eq!(Permission::UsersDeleteAdmin.roles(), &[Role::SuperAdmin]);
        assert_eq!(Permission::UsersRestore.roles(), &[Role::SuperAdmin]);
    }

    #[test]
    fn agents_cannot_delete_contacts_or_export() {
        assert!(!Permission::ContactsDelete.allows(Role::Agent));
        assert!(!Permission::DataExport.allows(Role::Agent));
        assert!(Permission::ConversationsWrite.allows(Role::Agent));
    }

    #[test]
    fn docs_permissions_md_matches_the_table() {
        let doc = include_str!("../../../docs/permissions.md");
        assert!(
            doc.contains(&Permission::markdown_table()),
            "docs/permissions.md is out of date; paste Permission::markdown_table() into it:\n{}",
            Permission::markdown_table()
        );
    }
}
