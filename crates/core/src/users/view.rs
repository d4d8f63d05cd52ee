//! The one shape a user leaves the server in: the REST answer (`UserResponse` in the OpenAPI
//! document) and the `user.*` webhook events' data are both [`UserView`], so they cannot drift
//! apart (`tests/it/webhooks/events.rs` keeps them equal). The webhook data gained the REST
//! fields and the REST answer gained `deleted`; no field changed its type.

use palisade_domain::{rfc3339, Role};
use palisade_store::users::User;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = UserResponse)]
pub struct UserView {
    pub id: Uuid,
    /// Absent for super admins.
    pub tenant_id: Option<Uuid>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_owner: bool,
    /// False for an invited user who has not set a password yet.
    pub has_password: bool,
    /// True once the user proved they read mail at `email` (a code from the verification mail,
    /// an accepted invitation, or a password reset by mail).
    pub email_verified: bool,
    /// True once the user is deleted (restorable by a super admin within 30 days).
    pub deleted: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Set when the user is deleted (visible to super admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub deleted_at: Option<String>,
    /// While the user's sign-in is locked after too many failed passwords: when the lock ends
    /// (an admin lifts it earlier with `POST /api/v1/users/{id}/unlock`). Only in the list and
    /// the read of users answered to those who may manage users (`users.manage`); absent
    /// otherwise, and in events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub locked_until: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.as_uuid(),
            tenant_id: u.tenant_id.map(|t| t.as_uuid()),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            is_owner: u.is_owner,
            has_password: u.password_hash.is_some(),
            email_verified: u.email_verified_at.is_some(),
            deleted: u.deleted_at.is_some(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            deleted_at: u.deleted_at.map(rfc3339),
            locked_until: None,
        }
    }
}
