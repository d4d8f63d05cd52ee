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
        /// `error_data.details`, Meta's readable explanation, when given.
        details: Option<String>,
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

    /// Worth retrying with backoff: throughput (130429, 4, 80007) and pair-rate (131056)
    /// limits, Meta's temporary failures (1, 2, 131000, 131016, 131057), any 5xx, and the
    /// network.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Transport(_) => true,
            GraphError::Api { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code,
                        1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131056 | 131057
                    )
            }
        }
    }
}

/// `POST /{phone_number_id}/messages`: Meta's acceptance of a message.
#[derive(Debug, Clone, Deserialize)]
pub struct SendResponse {
    pub messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    pub id: String,
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

/// `GET /{media_id}`: where to download a media file, and what Meta says it is. `file_size`
/// is a number in Meta's examples but a placeholder string in its syntax, so both are read.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaInfo {
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub file_size: Option<serde_json::Value>,
}

impl MediaInfo {
    pub fn size(&self) -> Option<u64> {
        match self.file_size.as_ref()? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// One page of `GET /{waba_id}/message_templates`.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplatePage {
    #[serde(default)]
    pub data: Vec<MetaTemplate>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// Absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cursors {
    #[serde(default)]
    pub after: Option<String>,
}

/// A template as Meta lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaTemplate {
    pub id: String,
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub components: serde_json::Value,
    /// `{score: GREEN|YELLOW|RED|UNKNOWN, …}` when Meta rated it.
    #[serde(default)]
    pub quality_score: Option<serde_json::Value>,
    #[serde(default)]
    pub rejected_reason: Option<String>,
}

/// `POST /{waba_id}/message_templates`: Meta's id and first status of a new template.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedTemplate {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
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
    #[serde(default)]
    error_data: Option<serde_json::Value>,
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
                details: env
                    .error
                    .error_data
                    .as_ref()
                    .and_then(|d| d.get("details").and_then(|v| v.as_str()).or(d.as_str()))
                    .map(str::to_owned),
            }),
            Err(_) => Err(GraphError::Transport(format!(
                "the Graph API answered HTTP {status}"
            ))),
        }
    }

    /// Sends one request in an `http.client` span (`safe_http::traced_send`: host and status,
    /// never the path, no `traceparent` to Meta). A transport failure's text leaves the URL out.
    async fn execute(request: reqwest::RequestBuilder) -> Result<reqwest::Response, GraphError> {
        crate::safe_http::traced_send(request)
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))
    }

    /// Looks up a phone number with a business's token (also proves the token works for it).
    pub async fn phone_number(
        &self,
        token: &str,
        phone_number_id: &str,
    ) -> Result<PhoneNumberInfo, GraphError> {
        let resp =
            Self::execute(self.http.get(self.url(phone_number_id)).bearer_auth(token)).await?;
        Self::read(resp).await
    }

    /// Sends a message (`body` is the complete Graph API body). Returns Meta's wamid.
    pub async fn send_message(
        &self,
        token: &str,
        phone_number_id: &str,
        body: &serde_json::Value,
    ) -> Result<String, GraphError> {
        let resp = Self::execute(
            self.http
                .post(self.url(&format!("{phone_number_id}/messages")))
                .bearer_auth(token)
                .json(body),
        )
        .await?;
        let sent: SendResponse = Self::read(resp).await?;
        sent.messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| GraphError::Transport("the Graph API returned no message id".into()))
    }

    /// Uploads a file to `POST /{phone_number_id}/media` (multipart: `messaging_product`,
    /// `type` and the `file` with its name and type). Returns Meta's media id, valid for 30
    /// days. The transfer may take longer than a message: its time limit is 5 minutes.
    pub async fn upload_media(
        &self,
        token: &str,
        phone_number_id: &str,
        mime: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<String, GraphError> {
        #[derive(Deserialize)]
        struct Uploaded {
            id: String,
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime)
            .map_err(|e| GraphError::Transport(format!("the media type {mime:?}: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_owned())
            .part("file", part);
        let resp = Self::execute(
            self.http
                .post(self.url(&format!("{phone_number_id}/media")))
                .bearer_auth(token)
                .timeout(Duration::from_secs(300))
                .multipart(form),
        )
        .await?;
        let up: Uploaded = Self::read(resp).await?;
        if up.id.is_empty() {
            return Err(GraphError::Transport(
                "the Graph API returned no media id".into(),
            ));
        }
        Ok(up.id)
    }

    /// Looks up a media file (its short-lived download URL, MIME type, SHA-256 and size).
    /// `media_id` must be a plain id (letters, digits, `_`, `-`): it becomes a path segment.
    pub async fn media_info(
        &self,
        token: &str,
        media_id: &str,
        phone_number_id: &str,
    ) -> Result<MediaInfo, GraphError> {
        let resp = Self::execute(
            self.http
                .get(self.url(media_id))
                .query(&[("phone_number_id", phone_number_id)])
                .bearer_auth(token),
        )
        .await?;
        Self::read(resp).await
    }

    /// One page of a WABA's templates: the first (`after` `None`) or the one after a cursor.
    /// The page's `paging.cursors.after` continues it while `paging.next` is present.
    pub async fn list_templates(
        &self,
        token: &str,
        waba_id: &str,
        after: Option<&str>,
    ) -> Result<TemplatePage, GraphError> {
        let mut query: Vec<(&str, &str)> = vec![(
            "fields",
            "id,name,language,status,category,components,quality_score,rejected_reason",
        )];
        query.push(("limit", "100"));
        if let Some(a) = after {
            query.push(("after", a));
        }
        let resp = Self::execute(
            self.http
                .get(self.url(&format!("{waba_id}/message_templates")))
                .query(&query)
                .bearer_auth(token),
        )
        .await?;
        Self::read(resp).await
    }

    /// Submits a new template for review (`body`: `{name, language, category, components}`).
    pub async fn create_template(
        &self,
        token: &str,
        waba_id: &str,
        body: &serde_json::Value,
    ) -> Result<CreatedTemplate, GraphError> {
        let resp = Self::execute(
            self.http
                .post(self.url(&format!("{waba_id}/message_templates")))
                .bearer_auth(token)
                .json(body),
        )
        .await?;
        Self::read(resp).await
    }

    /// Deletes one template (one name in one language: `hsm_id` with its `name`).
    pub async fn delete_template(
        &self,
        token: &str,
        waba_id: &str,
        meta_id: &str,
        name: &str,
    ) -> Result<(), GraphError> {
        let resp = Self::execute(
            self.http
                .delete(self.url(&format!("{waba_id}/message_templates")))
                .query(&[("hsm_id", meta_id), ("name", name)])
                .bearer_auth(token),
        )
        .await?;
        let _: serde_json::Value = Self::read(resp).await?;
        Ok(())
    }
}
