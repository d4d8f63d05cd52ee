//! What an admin does with integrations: create one (its secret shown once), list, read,
//! change (name, rules, connection), rotate the secret, delete; and read a contact's orders.

use super::view::{IntegrationView, IntegrationWithSecretView, OrderView};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::FieldErrors;
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use palisade_domain::integration::{
    parse_rules, Integration, IntegrationKind, IntegrationName, Rule,
};
use palisade_domain::{
    ConnectionId, ContactId, FieldError, IntegrationId, OrderId, Permission, TenantId,
};
use palisade_store::integrations as store;
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

pub struct NewIntegration {
    pub kind: String,
    pub name: String,
    pub connection_id: Option<Uuid>,
}

/// `None` leaves a field as it is; `connection_id: Some(None)` clears it.
#[derive(Default)]
pub struct IntegrationPatch {
    pub name: Option<String>,
    pub rules: Option<Value>,
    pub connection_id: Option<Option<Uuid>>,
}

/// What the secret's ciphertext is bound to: a ciphertext copied to another row or tenant does
/// not decrypt.
pub(crate) fn aad(tenant: TenantId, id: IntegrationId) -> Vec<u8> {
    format!("integration:{tenant}:{id}").into_bytes()
}

/// 32 random bytes, base64url: what the shop signs its webhooks with.
fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("wcs_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the audit log keeps of an integration (never its secret).
fn audit_json(i: &Integration) -> Value {
    json!({
        "id": i.id, "kind": i.kind.as_str(), "name": i.name.as_str(),
        "connection_id": i.connection_id,
        "rules": i.rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
    })
}

fn view(s: &Services, i: &Integration) -> IntegrationView {
    IntegrationView::new(i, &s.settings.public_url)
}

async fn check_connection(
    uow: &mut UnitOfWork<'_>,
    id: Option<Uuid>,
) -> AppResult<Option<ConnectionId>> {
    let Some(raw) = id else { return Ok(None) };
    let id = ConnectionId::from(raw);
    if palisade_store::whatsapp_connections::find(uow.tx(), id)
        .await?
        .is_none()
    {
        return Err(AppError::field(
            "connection_id",
            "is not a WhatsApp connection of this organisation",
        ));
    }
    Ok(Some(id))
}

/// The row just written, as the database keeps it (timestamps at its precision).
async fn stored(
    tx: &mut palisade_store::Tx<palisade_store::TenantScope>,
    id: IntegrationId,
) -> AppResult<Integration> {
    Ok(store::find(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the integration just written is missing"))?)
}

/// Creates an integration; returns it with its secret, which is never shown again.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewIntegration,
) -> AppResult<IntegrationWithSecretView> {
    p.require(Permission::IntegrationsManage)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut errors = FieldErrors::new();
    let kind = IntegrationKind::parse(&new.kind);
    if kind.is_none() {
        errors.push(FieldError::new("kind", "must be woocommerce"));
    }
    let name = errors.check(IntegrationName::parse("name", &new.name));
    let (Some(kind), Some(name)) = (kind, name) else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let connection_id = check_connection(&mut uow, new.connection_id).await?;
    let id = IntegrationId::new();
    let secret = generate_secret();
    let i = Integration {
        id,
        tenant_id: tenant,
        kind,
        name,
        secret_ciphertext: s
            .keys
            .encryption
            .encrypt(secret.as_bytes(), &aad(tenant, id))?,
        connection_id,
        rules: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    store::insert(uow.tx(), &i).await?;
    let i = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("integration.created")
            .target("integration", id.as_uuid())
            .change(None, Some(audit_json(&i))),
    )
    .await?;
    uow.commit().await?;
    Ok(IntegrationWithSecretView {
        integration: view(s, &i),
        secret,
    })
}

pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<IntegrationView>> {
    p.require(Permission::IntegrationsManage)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(store::list(&mut tx)
        .await?
        .iter()
        .map(|i| view(s, i))
        .collect())
}

pub async fn get(s: &Services, p: &Principal, id: IntegrationId) -> AppResult<IntegrationView> {
    p.require(Permission::IntegrationsManage)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let i = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("integration"))?;
    Ok(view(s, &i))
}

/// Changes the name, the rules (the whole list, validated: trigger, status, template name and
/// language format, parameters' shape) or the connection.
pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: IntegrationId,
    patch: IntegrationPatch,
) -> AppResult<IntegrationView> {
    p.require(Permission::IntegrationsManage)?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(patch.name, |n| IntegrationName::parse("name", &n));
    let rules = match &patch.rules {
        None => None,
        Some(raw) => match parse_rules(raw) {
            Ok(r) => Some(r),
            Err(es) => {
                for e in es {
                    errors.push(e);
                }
                None
            }
        },
    };
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("integration"))?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(r) = rules {
        after.rules = r;
    }
    if let Some(c) = patch.connection_id {
        after.connection_id = check_connection(&mut uow, c).await?;
    }
    if after == before {
        return Ok(view(s, &before));
    }
    after.updated_at = now;
    store::update(uow.tx(), &after).await?;
    let after = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("integration.updated")
            .target("integration", id.as_uuid())
            .change(Some(audit_json(&before)), Some(audit_json(&after))),
    )
    .await?;
    uow.commit().await?;
    Ok(view(s, &after))
}

/// A new secret, in force at once (the shop's webhook must be given it); returned once.
pub async fn rotate_secret(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: IntegrationId,
) -> AppResult<IntegrationWithSecretView> {
    p.require(Permission::IntegrationsManage)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let mut i = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("integration"))?;
    let secret = generate_secret();
    i.secret_ciphertext = s
        .keys
        .encryption
        .encrypt(secret.as_bytes(), &aad(tenant, id))?;
    i.updated_at = uow.now();
    store::update(uow.tx(), &i).await?;
    let i = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("integration.secret_rotated")
            .target("integration", id.as_uuid()),
    )
    .await?;
    uow.commit().await?;
    Ok(IntegrationWithSecretView {
        integration: view(s, &i),
        secret,
    })
}

/// Deletes an integration with its orders and its delivery log; the shop's later webhooks
/// are refused.
pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: IntegrationId,
) -> AppResult<()> {
    p.require(Permission::IntegrationsManage)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("integration"))?;
    let orders = store::delete(uow.tx(), id).await?.unwrap_or(0);
    uow.audit(
        uow.entry("integration.deleted")
            .target("integration", id.as_uuid())
            .change(Some(audit_json(&before)), None)
            .metadata(json!({ "orders_deleted": orders })),
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

/// A contact's orders, newest first, 50 a page after `cursor`. Needs `contacts.read`; an id
/// that is not a contact of the caller's tenant is `404`.
pub async fn orders_of_contact(
    s: &Services,
    p: &Principal,
    contact: ContactId,
    cursor: Option<Uuid>,
) -> AppResult<Page<OrderView>> {
    p.require(Permission::ContactsRead)?;
    const LIMIT: i64 = 50;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if palisade_store::contacts::find(&mut tx, contact)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("contact"));
    }
    let items =
        store::orders_of_contact(&mut tx, contact, cursor.map(OrderId::from), LIMIT + 1).await?;
    Ok(Page::from_overfetch(items, LIMIT, |o| o.id.as_uuid()).map(|o| OrderView::from(&o)))
}
