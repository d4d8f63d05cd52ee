//! The Graph API client.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with its error envelope.
    #[error("Graph API error {code}: {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
    },
    /// Meta could not be reached or answered something unreadable.
    #[error("the Graph API could not be reached: {0}")]
    Transport(String),
}

impl GraphError {
    /// Error 190: the access token is invalid or expired.
    pub fn is_bad_token(&self) -> bool {
        matches!(self, GraphError::Api { code: 190, .. })
    }
}

/// `GET /{phone_number_id}`: what Meta knows about a number.
#[derive(Debug, Clone, Deserialize)]
pub struct PhoneNumberInfo {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub verified_name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl GraphClient {
    pub fn new(base_url: &str, version: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent("Palisade")
            .build()
            .unwrap_or_default();
        GraphClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base,
            self.version,
            path.trim_start_matches('/')
        )
    }

    async fn read<T: for<'de> Deserialize<'de>>(resp: reqwest::Response) -> Result<T, GraphError> {
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| GraphError::Transport(format!("unreadable Graph API answer: {e}")));
        }
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(env) => Err(GraphError::Api {
                status: status.as_u16(),
                code: env.error.code,
                message: env.error.message,
            }),
            Err(_) => Err(GraphError::Transport(format!(
                "the Graph API answered HTTP {status}"
            ))),
        }
    }

    /// Looks up a phone number with a business's token (also proves the token works for it).
    pub async fn phone_number(
        &self,
        token: &str,
        phone_number_id: &str,
    ) -> Result<PhoneNumberInfo, GraphError> {
        let resp = self
            .http
            .get(self.url(phone_number_id))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        Self::read(resp).await
    }
}
