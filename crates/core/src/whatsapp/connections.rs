//! Connecting WhatsApp Business numbers (admins, signed in as users).

use super::graph::GraphError;
use crate::audit::{self, AuditEntryExt};
use crate::auth::{tokens, Principal, RequestMeta};
use crate::{AppError, AppResult, Services};
use palisade_domain::{FieldError, Permission};
use palisade_store::whatsapp_connections::{self as store, Connection};
use palisade_store::{audit as audit_log, SystemScope};
use subtle::ConstantTimeEq;
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
pub fn webhook_url(s: &Services, id: Uuid) -> String {
    format!(
        "{}/webhooks/whatsapp/{id}",
        s.settings.public_url.trim_end_matches('/')
    )
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewConnection,
) -> AppResult<Created> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut errors = Vec::new();
    let name = input.display_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "display_name",
            "must be 1 to 100 characters",
        ));
    }
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
    let (Some(phone), Some(waba), Some(token), Some(app_secret)) = (phone, waba, token, app_secret)
    else {
        return Err(AppError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    // Prove the token works for this number before storing anything.
    let info = s.graph.phone_number(&token, &phone).await.map_err(|e| match e {
        GraphError::Api { code: 190, message, .. } => AppError::field("access_token", format!("Meta refused it: {message}")),
        GraphError::Api { code, message, .. } => AppError::Validation {
            message: format!("Meta could not confirm this number (error {code}): {message}"),
            fields: [("phone_number_id".to_owned(), vec![format!("Meta error {code}: {message}")])].into_iter().collect(),
        },
        GraphError::Transport(why) => {
            tracing::warn!(error = %why, "WhatsApp Graph API unreachable while connecting a number");
            AppError::Unavailable {
                message: "the WhatsApp Graph API could not be reached; try again shortly".into(),
                retry_after_secs: 5,
            }
        }
    })?;
    let verify_token = tokens::new_secret(VERIFY_TOKEN_PREFIX);
    let mut c = Connection {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        display_name: name,
        phone_number_id: phone,
        waba_id: waba,
        display_phone_number: info.display_phone_number,
        verified_name: info.verified_name,
        access_token_ciphertext: String::new(),
        app_secret_ciphertext: String::new(),
        verify_token_hash: tokens::secret_hash(&verify_token),
        status: "active".into(),
        created_by: p.user_id,
        created_at: now,
        updated_at: now,
        disconnected_at: None,
    };
    c.access_token_ciphertext = s
        .keys
        .encryption
        .encrypt(token.as_bytes(), &secret_aad(&c, "access_token"))?;
    c.app_secret_ciphertext = s
        .keys
        .encryption
        .encrypt(app_secret.as_bytes(), &secret_aad(&c, "app_secret"))?;
    let mut tx = s.store.begin(scope).await?;
    store::insert(&mut tx, &c).await.map_err(|e| {
        if e.is_unique_violation_on("whatsapp_connections", "phone_number_id") {
            AppError::conflict(
                "phone_number_already_connected",
                "this WhatsApp number is already connected",
            )
        } else {
            e.into()
        }
    })?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "whatsapp_connection.created").target("whatsapp_connection", c.id).change(
            None,
            Some(serde_json::json!({
                "display_name": c.display_name, "phone_number_id": c.phone_number_id, "waba_id": c.waba_id,
            })),
        ),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Created {
        connection: c,
        verify_token,
    })
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
    id: Uuid,
) -> AppResult<Connection> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let now = s.now();
    let mut tx = s.store.begin(p.tenant_scope()?).await?;
    let mut c = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    if c.status == "disconnected" {
        return Err(AppError::conflict(
            "already_disconnected",
            "this connection is already disconnected",
        ));
    }
    store::set_status(&mut tx, id, "disconnected", now).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "whatsapp_connection.disconnected")
            .target("whatsapp_connection", id),
        now,
    )
    .await?;
    tx.commit().await?;
    s.inbound.forget(id);
    c.status = "disconnected".into();
    c.disconnected_at = Some(now);
    c.updated_at = now;
    Ok(c)
}

pub async fn delete(s: &Services, p: &Principal, meta: &RequestMeta, id: Uuid) -> AppResult<()> {
    p.require(Permission::WhatsAppConnectionsManage)?;
    let now = s.now();
    let mut tx = s.store.begin(p.tenant_scope()?).await?;
    let c = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    if palisade_store::messaging::connection_has_conversations(&mut tx, id).await? {
        return Err(AppError::conflict(
            "connection_has_conversations",
            "this connection has conversations; disconnect it instead",
        ));
    }
    store::delete(&mut tx, id).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "whatsapp_connection.deleted")
            .target("whatsapp_connection", id)
            .change(
                Some(serde_json::json!({ "phone_number_id": c.phone_number_id })),
                None,
            ),
        now,
    )
    .await?;
    tx.commit().await?;
    s.inbound.forget(id);
    Ok(())
}

/// Meta's GET handshake: the challenge, when the mode is `subscribe` and the verify token is the
/// connection's. Any other request (unknown connection included) gets the same refusal.
pub async fn verify_subscription(
    s: &Services,
    id: Uuid,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> AppResult<String> {
    let refuse = || AppError::Forbidden {
        code: "verification_failed",
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
        .filter(|c| c.status == "active")
        .ok_or_else(refuse)?;
    let presented = tokens::secret_hash(token);
    if bool::from(presented.ct_eq(&c.verify_token_hash)) {
        Ok(challenge.to_owned())
    } else {
        Err(refuse())
    }
}
