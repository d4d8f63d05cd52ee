//! The one shape a device session leaves the server in (`GET /api/v1/auth/sessions`). Sessions
//! raise no webhook or realtime event, so the REST answer is its only use; it lives beside the
//! other views in core so the web layer never sees the stored `Session`.

use palisade_domain::{rfc3339, SessionId};
use palisade_store::sessions::Session;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

// A session as the API shows it. (A plain comment: a doc comment would become the schema's
// description, which the served document has never had.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = SessionResponse)]
pub struct SessionView {
    pub id: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// e.g. `Firefox 128.0`, from the user agent.
    pub browser: Option<String>,
    /// e.g. `Linux`, from the user agent.
    pub os: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    /// `s` as seen by the request made with session `current` (none for other credentials).
    pub fn of(s: Session, current: Option<SessionId>) -> Self {
        SessionView {
            id: s.id.as_uuid(),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            current: Some(s.id) == current,
            ip: s.ip,
            user_agent: s.user_agent,
            browser: s.browser,
            os: s.os,
        }
    }
}
