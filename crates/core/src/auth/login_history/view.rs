//! The one shape a login attempt leaves the server in (both history routes).

use palisade_domain::{rfc3339, LoginMethod, LoginResult};
use palisade_store::login_history::LoginAttempt;
use serde::Serialize;
use utoipa::ToSchema;

// A sign-in attempt as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = LoginAttemptResponse)]
pub struct LoginAttemptView {
    #[schema(format = DateTime)]
    pub at: String,
    pub ip: Option<String>,
    /// e.g. `Firefox 128.0`, from the user agent.
    pub browser: Option<String>,
    /// e.g. `Linux`, from the user agent.
    pub os: Option<String>,
    pub result: LoginResult,
    pub method: LoginMethod,
}

impl From<&LoginAttempt> for LoginAttemptView {
    fn from(a: &LoginAttempt) -> Self {
        LoginAttemptView {
            at: rfc3339(a.at),
            ip: a.ip.clone(),
            browser: a.browser.clone(),
            os: a.os.clone(),
            result: a.result,
            method: a.method,
        }
    }
}
