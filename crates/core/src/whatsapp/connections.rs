//! Connecting WhatsApp Business numbers (admins, signed in as users; never API keys or
//! impersonations).
//!
//! A number is held by at most one active connection across all tenants, and has at most one
//! connection row per tenant: disconnecting keeps the row (and its conversations), connecting
//! the number again reactivates that row with new credentials, and another tenant can take the
//! number once no active connection holds it. Credentials are replaced only after Meta accepted
//! the token, and are stored encrypted with the row identity as associated data.

use super::graph::{GraphError, PhoneNumberInfo};
use crate::audit::AuditEntryExt;
use crate::auth::{tokens, Principal, RequestMeta};
use crate::error::code;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{rfc3339, ConnectionId, ConnectionStatus, FieldError, Permission};
use palisade_store::whatsapp_connections::{self as store, Connection};
use palisade_store::SystemScope;
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

pub const VERIFY_TOKEN_PREFIX: &str = "pal_wvt_";

pub struct NewConnection {
    pub display_name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
}

/// What the admin pastes into Meta's dashboard; the verify token is shown only once.
pub struct Created {
    pub connection: Connection,
    pub verify_token: String,
    /// The tenant's disconnected connection of this number was made active again (same id).
    pub reconnected: bool,
}

// A connection as the API shows it (`ConnectionResponse` in the document). A plain comment:
// the schema has never had a description.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ConnectionResponse)]
pub struct ConnectionView {
    pub id: Uuid,
    pub display_name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    /// `active` or `disconnected`.
    pub status: String,
    /// The Callback URL to paste into Meta's dashboard.
    pub webhook_url: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub disconnected_at: Option<String>,
}

impl ConnectionView {
    /// `c` as the API shows it, with this server's webhook URL for it.
    pub fn of(s: &Services, c: &Connection) -> Self {
        ConnectionView {
            id: c.id.as_uuid(),
            display_name: c.display_name.clone(),
            phone_number_id: c.phone_number_id.clone(),
            waba_id: c.waba_id.clone(),
            display_phone_number: c.display_phone_number.clone(),
            verified_name: c.verified_name.clone(),
            status: c.status.as_str().to_owned(),
            webhook_url: webhook_url(s, c.id),
            created_at: rfc3339(c.created_at),
            disconnected_at: c.disconnected_at.map(rfc3339),
        }
    }
}

/// The associated data that binds a secret to its row and tenant.
pub fn secret_aad(c: &Connection, which: &str) -> Vec<u8> {
    format!("whatsapp_connection:{}:{}:{which}", c.tenant_id, c.id).into_bytes()
}

fn digits(field: &'static str, v: &str) -> Result<String, FieldError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "must be Meta's numeric id (digits only)",
        ));
    }
    Ok(v.to_owned())
}

fn secret(field: &'static str, v: &str, max: usize) -> Result<String, FieldError> {
    if v.is_empty() || v.len() > max || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters without spaces"),
        ));
    }
    Ok(v.to_owned())
}

/// The callback URL to register in Meta's dashboard.
pub fn webhook_url(s: &Services, id: ConnectionId) -> String {
    format!(
        "{}/webhooks/whatsapp/{id}",
        s.settings.public_url.trim_end_matches('/')
    )
}

fn display_name(v: &str) -> Result<String, FieldError> {
    let name = v.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "display_name",
            "must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// Proves `token` works for the number before anything is stored, and returns what Meta knows
/// about it.
async fn check_with_meta(s: &Services, token: &str, phone: &str) -> AppResult<PhoneNumberInfo> {
    s.graph.phone_number(token, phone).await.map_err(|e| match e {
        GraphError::Api { code: 190, message, .. } => AppError::field("access_token", format!("Meta refused it: {message}")),
        GraphError::Api { code, message, .. } => AppError::Validation {
            message: format!("Meta could not confirm this number (error {code}): {message}"),
            fields: [("phone_number_id".to_owned(), vec![format!("Meta error {code}: {message}")])].into_iter().collect(),
        },
        GraphError::Transport(why) => {
            tracing::warn!(error = %why, "WhatsApp Graph API unreachable while checking a token");
            AppError::Unavailable {
                message: "the WhatsApp Graph API could not be reached; try again shortly".into(),
                retry_after_secs: 5,
            }
        }
    })
}

fn already_connected() -> AppError {
    AppError::conflict(
        code::PHONE_NUMBER_ALREADY_CONNECTED,
        "this WhatsApp number is already connected",
    )
}

/// Whether `e` is a violation of one of the indexes that keep a number to one active
/// connection overall and one row per tenant (migration 0014).
fn is_number_taken(e: &palisade_store::StoreError) -> bool {
    [
        "phone_number_id",
        "active_phone_number_id",
        "tenant_id_phone_number_id",
    ]
    .iter()
    .any(|column| e.is_unique_violation_on("whatsapp_connections", column))
}

/// Encrypts the secrets into `c`, bound to its row identity.
fn seal(s: &Services, c: &mut Connection, token: &str, app_secret: &str) -> AppResult<()> {
    c.access_token_ciphertext = s
        .keys
        .encryption
        .encrypt(token.as_bytes(), &secret_aad(c, "access_token"))?;
    c.app_secret_ciphertext = s
        .keys
        .encryption
        .encrypt(app_secret.as_bytes(), &secret_aad(c, "app_secret"))?;
    Ok(())
}

/// Connects a number, or connects it again: when the tenant already has a disconnected
/// connection of this number, that row is reactivated with the new credentials and a new verify
/// token (same id, webhook URL and conversations; `reconnected` is true). A number that an
/// active connection holds (this tenant's or another's) is `409 phone_number_already_connected`;
/// of two concurrent attempts for one number, one wins and the other gets that 409.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewConnection,
) -> AppResult<Created> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let scope = p.tenant_scope()?;
    let mut errors = Vec::new();
    let name = display_name(&input.display_name)
        .map_err(|e| errors.push(e))
        .ok();
    let phone = digits("phone_number_id", &input.phone_number_id)
        .map_err(|e| errors.push(e))
        .ok();
    let waba = digits("waba_id", &input.waba_id)
        .map_err(|e| errors.push(e))
        .ok();
    let token = secret("access_token", &input.access_token, 4096)
        .map_err(|e| errors.push(e))
        .ok();
    let app_secret = secret("app_secret", &input.app_secret, 256)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(phone), Some(waba), Some(token), Some(app_secret)) =
        (name, phone, waba, token, app_secret)
    else {
        return Err(AppError::validation(errors));
    };
    // Prove the token works for this number before storing anything.
    let info = check_with_meta(s, &token, &phone).await?;
    let verify_token = tokens::new_secret(VERIFY_TOKEN_PREFIX);
    let mut uow = UnitOfWork::begin_in(s, p, meta, scope).await?;
    let now = uow.now();
    let previous = store::find_by_phone_number_id(uow.tx(), &phone).await?;
    if previous
        .as_ref()
        .is_some_and(|c| c.status == ConnectionStatus::Active)
    {
        return Err(already_connected());
    }
    let mut c = Connection {
        id: previous.as_ref().map_or_else(ConnectionId::new, |c| c.id),
        tenant_id: scope.tenant_id(),
        display_name: name,
        phone_number_id: phone,
        waba_id: waba,
        display_phone_number: info.display_phone_number,
        verified_name: info.verified_name,
        access_token_ciphertext: String::new(),
        app_secret_ciphertext: String::new(),
        verify_token_hash: tokens::secret_hash(&verify_token),
        status: ConnectionStatus::Active,
        created_by: previous.as_ref().map_or(p.user_id, |c| c.created_by),
        created_at: previous.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
        disconnected_at: None,
    };
    seal(s, &mut c, &token, &app_secret)?;
    let written = match &previous {
        None => store::insert(uow.tx(), &c).await.map(|()| true),
        Some(_) => store::reactivate(uow.tx(), &c).await,
    };
    match written {
        Ok(true) => {}
        // The row stopped being disconnected under us: a concurrent reconnect won.
        Ok(false) => return Err(already_connected()),
        Err(e) if is_number_taken(&e) => return Err(already_connected()),
        Err(e) => return Err(e.into()),
    }
    let (action, before) = match &previous {
        None => ("whatsapp_connection.created", None),
        Some(old) => (
            "whatsapp_connection.reconnected",
            Some(serde_json::json!({
                "display_name": old.display_name, "waba_id": old.waba_id, "status": old.status.as_str(),
            })),
        ),
    };
    uow.audit(
        uow.entry(action).target("whatsapp_connection", c.id).change(
            before,
            Some(serde_json::json!({
                "display_name": c.display_name, "phone_number_id": c.phone_number_id, "waba_id": c.waba_id,
            })),
        ),
    )
    .await?;
    if previous.is_some() {
        // This node may still hold the row as it was; the next webhook reads it afresh.
        let id = c.id;
        uow.after_commit(move |s| s.inbound.forget(id));
    }
    uow.commit().await?;
    Ok(Created {
        connection: c,
        verify_token,
        reconnected: previous.is_some(),
    })
}

/// What `PATCH /api/v1/whatsapp/connections/{id}` may change; absent fields stay.
#[derive(Default)]
pub struct ConnectionChanges {
    pub display_name: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
}

/// Replaces a connection's display name and credentials (either status; the status stays).
/// A new access token is checked with the Graph API first, like on connect, and Meta's details
/// of the number are refreshed from that answer. Secrets are encrypted bound to the row.
pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ConnectionId,
    changes: ConnectionChanges,
) -> AppResult<Connection> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let scope = p.tenant_scope()?;
    if changes.display_name.is_none()
        && changes.access_token.is_none()
        && changes.app_secret.is_none()
    {
        return Err(AppError::Validation {
            message: "nothing to change: give display_name, access_token or app_secret".into(),
            fields: Default::default(),
        });
    }
    let mut errors = Vec::new();
    let name = changes
        .display_name
        .as_deref()
        .map(display_name)
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let token = changes
        .access_token
        .as_deref()
        .map(|t| secret("access_token", t, 4096))
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let app_secret = changes
        .app_secret
        .as_deref()
        .map(|t| secret("app_secret", t, 256))
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let phone_number_id = {
        let mut tx = s.store.begin_read(scope).await?;
        store::find(&mut tx, id)
            .await?
            .ok_or(AppError::NotFound("WhatsApp connection"))?
            .phone_number_id
    };
    let info = match &token {
        Some(t) => Some(check_with_meta(s, t, &phone_number_id).await?),
        None => None,
    };
    // The changes apply to the row as it is now, locked: the Graph API check above ran outside
    // any transaction, and a concurrent change (another field, or a reconnection) may have
    // committed since the number was read; writing an older copy's other fields back would
    // undo it.
    let mut uow = UnitOfWork::begin_in(s, p, meta, scope).await?;
    let now = uow.now();
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.display_name = n;
    }
    if let Some(info) = info {
        after.display_phone_number = info.display_phone_number;
        after.verified_name = info.verified_name;
    }
    if let Some(t) = &token {
        after.access_token_ciphertext = s
            .keys
            .encryption
            .encrypt(t.as_bytes(), &secret_aad(&after, "access_token"))?;
    }
    if let Some(a) = &app_secret {
        after.app_secret_ciphertext = s
            .keys
            .encryption
            .encrypt(a.as_bytes(), &secret_aad(&after, "app_secret"))?;
    }
    after.updated_at = now;
    if !store::update_credentials(uow.tx(), &after).await? {
        return Err(AppError::NotFound("WhatsApp connection"));
    }
    let replaced: Vec<&str> = [
        ("access_token", token.is_some()),
        ("app_secret", app_secret.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, given)| given.then_some(f))
    .collect();
    uow.audit(
        uow.entry("whatsapp_connection.updated")
            .target("whatsapp_connection", id)
            .change(
                Some(serde_json::json!({ "display_name": before.display_name })),
                Some(serde_json::json!({ "display_name": after.display_name })),
            )
            .metadata(serde_json::json!({ "credentials_replaced": replaced })),
    )
    .await?;
    uow.after_commit(move |s| s.inbound.forget(id));
    uow.commit().await?;
    Ok(after)
}

pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<Connection>> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(store::list(&mut tx).await?)
}

pub async fn disconnect(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ConnectionId,
) -> AppResult<Connection> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let mut c = store::find(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    let disconnected = ConnectionStatus::Disconnected;
    if c.status == disconnected {
        return Err(AppError::conflict(
            code::ALREADY_DISCONNECTED,
            "this connection is already disconnected",
        ));
    }
    store::set_status(uow.tx(), id, disconnected, now).await?;
    uow.audit(
        uow.entry("whatsapp_connection.disconnected")
            .target("whatsapp_connection", id),
    )
    .await?;
    uow.after_commit(move |s| s.inbound.forget(id));
    uow.commit().await?;
    c.status = disconnected;
    c.disconnected_at = Some(now);
    c.updated_at = now;
    Ok(c)
}

pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ConnectionId,
) -> AppResult<()> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let c = store::find(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    if palisade_store::conversations::connection_has_conversations(uow.tx(), id).await? {
        return Err(AppError::conflict(
            code::CONNECTION_HAS_CONVERSATIONS,
            "this connection has conversations; disconnect it instead",
        ));
    }
    // Its templates are Meta's copy for this number's account: they go with it.
    palisade_store::templates::delete_of_connection(uow.tx(), id).await?;
    store::delete(uow.tx(), id).await?;
    uow.audit(
        uow.entry("whatsapp_connection.deleted")
            .target("whatsapp_connection", id)
            .change(
                Some(serde_json::json!({ "phone_number_id": c.phone_number_id })),
                None,
            ),
    )
    .await?;
    uow.after_commit(move |s| s.inbound.forget(id));
    uow.commit().await?;
    Ok(())
}

/// Meta's GET handshake: the challenge, when the mode is `subscribe` and the verify token is the
/// connection's. Any other request (unknown connection included) gets the same refusal.
pub async fn verify_subscription(
    s: &Services,
    id: ConnectionId,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> AppResult<String> {
    let refuse = || AppError::Forbidden {
        code: code::VERIFICATION_FAILED,
        message: "verification failed".into(),
    };
    let (Some("subscribe"), Some(token), Some(challenge)) = (mode, token, challenge) else {
        return Err(refuse());
    };
    if challenge.is_empty() || challenge.len() > 256 {
        return Err(refuse());
    }
    let mut tx = s
        .store
        .begin_read(SystemScope::new("whatsapp.webhook.verify"))
        .await?;
    let c = store::find_any(&mut tx, id)
        .await?
        .filter(|c| c.status == ConnectionStatus::Active)
        .ok_or_else(refuse)?;
    let presented = tokens::secret_hash(token);
    if bool::from(presented.ct_eq(&c.verify_token_hash)) {
        Ok(challenge.to_owned())
    } else {
        Err(refuse())
    }
}
