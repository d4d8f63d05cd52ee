//! The webhook use cases an admin (or an API key) calls: create, list, read, change, delete,
//! approve, rotate the signing key, send a test event, and list or retry deliveries. Each checks
//! its permission and writes through one [`UnitOfWork`] (the change, its audit record and any
//! notification commit together). They answer with the views of `view.rs`. Separate from the
//! delivery worker, which runs under a system scope and shares only the store and the signing
//! keys.

use super::events::{event_payload, parse_events, queue_delivery, require_event_access};
use super::signing::{aad, new_signing_key, SignatureAlgorithm};
use super::targets::{is_allowlisted, parse_url};
use super::view::{DeliveryView, WebhookView};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::notifications::{self, NewNotification};
use crate::pagination::{ActivityCursor, Page};
use crate::safe_http;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::rfc3339;
use palisade_domain::{DeliveryId, EventType, FieldError, Permission, UserId, WebhookId};
use palisade_store::webhooks::{self as store, Delivery, Webhook, WebhookStatus};
use palisade_store::{TenantScope, Tx};
use serde_json::{json, Value};
use time::Duration;

/// How long the previous secret keeps signing after a rotation, by default.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(7);

fn parse_description(d: &str) -> Result<Option<String>, FieldError> {
    let d = d.trim();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(FieldError::new(
            "description",
            "must be at most 500 characters without control characters",
        ));
    }
    Ok((!d.is_empty()).then(|| d.to_owned()))
}

fn audit_json(w: &Webhook) -> Value {
    json!({
        "id": w.id, "url": safe_http::redact_url(&w.url), "description": w.description, "events": w.events,
        "status": w.status.as_str(),
    })
}

pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// `hmac_sha256` (default; `hmac-sha256` is accepted too) or `ed25519`.
    pub signature_algorithm: Option<String>,
}

/// Tells the tenant's other admins that `w` waits for approval (in the unit's transaction).
async fn notify_pending(
    uow: &mut UnitOfWork<'_, TenantScope>,
    w: &Webhook,
    actor: UserId,
) -> AppResult<()> {
    let now = uow.now();
    let tx = uow.tx();
    let recipients = notifications::tenant_admins(tx, w.tenant_id, Some(actor)).await?;
    notifications::notify(
        tx,
        w.tenant_id,
        &recipients,
        &NewNotification {
            kind: "webhook.pending_approval",
            title: "A webhook waits for approval".into(),
            body: format!(
                "A webhook to {} is outside the allowed domains; nothing is sent to it until an \
                 admin approves it.",
                safe_http::redact_url(&w.url)
            ),
            data: json!({ "webhook_id": w.id, "url": safe_http::redact_url(&w.url), "requested_by": w.created_by }),
            target: Some(("webhook", w.id.as_uuid())),
        },
        now,
    )
    .await?;
    Ok(())
}

pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `active` or `disabled` (re-enabling a disabled endpoint, or pausing one).
    pub status: Option<String>,
}

/// Creates an endpoint; returns it and its secret, which is never shown again.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewWebhook,
) -> AppResult<(WebhookView, String)> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let mut errors = FieldErrors::new();
    let target = errors.check(parse_url(s, &input.url));
    let events = errors.check(parse_events(&input.events));
    let description = errors
        .check_some(input.description.as_deref(), parse_description)
        .flatten();
    let algorithm = match input.signature_algorithm.as_deref() {
        None => Some(SignatureAlgorithm::HmacSha256),
        Some(a) => SignatureAlgorithm::parse(a).or_else(|| {
            errors.push(FieldError::new(
                "signature_algorithm",
                "must be hmac_sha256 (Standard Webhooks v1) or ed25519 (v1a)",
            ));
            None
        }),
    };
    let (Some(target), Some(events), Some(algorithm)) = (target, events, algorithm) else {
        return Err(AppError::validation(errors));
    };
    errors.finish()?;
    require_event_access(p, &events)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let max = i64::try_from(s.settings.webhooks_max_per_tenant).unwrap_or(i64::MAX);
    // Concurrent creates wait here for each other, so each counts the ones committed before it.
    palisade_store::tenants::lock(uow.tx()).await?;
    if store::count(uow.tx()).await? >= max {
        return Err(AppError::conflict(
            code::WEBHOOK_LIMIT_REACHED,
            format!("a tenant can have at most {max} webhooks; delete one first"),
        ));
    }
    let allowlisted = is_allowlisted(s, uow.tx(), scope.tenant_id(), &target).await?;
    let id = WebhookId::new();
    let (stored, secret, public_key) = new_signing_key(algorithm)?;
    let ciphertext = s
        .keys
        .encryption
        .encrypt(stored.as_bytes(), &aad(scope.tenant_id(), id))?;
    let w = Webhook {
        id,
        tenant_id: scope.tenant_id(),
        url: target.as_str().to_owned(),
        description,
        events,
        status: if allowlisted {
            WebhookStatus::Active
        } else {
            WebhookStatus::PendingApproval
        },
        secret_ciphertext: ciphertext,
        previous_secret_ciphertext: None,
        previous_secret_expires_at: None,
        signature_algorithm: algorithm.as_str().into(),
        public_key,
        created_by: p.user_id,
        approved_by: None,
        approved_at: allowlisted.then_some(now),
        disabled_reason: None,
        consecutive_failures: 0,
        failing_since: None,
        last_success_at: None,
        last_failure_at: None,
        created_at: now,
        updated_at: now,
    };
    store::insert(uow.tx(), &w).await?;
    let entry = uow
        .entry("webhook.created")
        .target("webhook", w.id.as_uuid())
        .change(None, Some(audit_json(&w)))
        .metadata(json!({ "allowlisted": allowlisted }));
    uow.audit(entry).await?;
    if !allowlisted {
        notify_pending(&mut uow, &w, p.user_id).await?;
    }
    uow.commit().await?;
    Ok(((&w).into(), secret))
}

pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<WebhookView>> {
    p.require(Permission::WebhooksRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(store::list(&mut tx).await?.iter().map(Into::into).collect())
}

pub async fn get(s: &Services, p: &Principal, id: WebhookId) -> AppResult<WebhookView> {
    p.require(Permission::WebhooksRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok((&found(&mut tx, id).await?).into())
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
    changes: WebhookChanges,
) -> AppResult<WebhookView> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let mut errors = FieldErrors::new();
    let target = errors.check_some(changes.url.as_deref(), |u| parse_url(s, u));
    let events = errors.check_some(changes.events.as_deref(), parse_events);
    let description = errors.check_some(changes.description.as_deref(), parse_description);
    let status = match changes.status.as_deref() {
        None => None,
        Some("active") => Some(WebhookStatus::Active),
        Some("disabled") => Some(WebhookStatus::Disabled),
        Some(_) => {
            errors.push(FieldError::new(
                "status",
                "must be active or disabled (approve pending webhooks with POST …/approve)",
            ));
            None
        }
    };
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = found_for_update(uow.tx(), id).await?;
    let mut after = before.clone();
    if let Some(e) = events {
        after.events = e;
    }
    if let Some(d) = description {
        after.description = d;
    }
    match status {
        Some(WebhookStatus::Active) if before.status == WebhookStatus::PendingApproval => {
            return Err(AppError::conflict(
                code::APPROVAL_REQUIRED,
                "this webhook awaits approval; use POST /api/v1/webhooks/{id}/approve",
            ));
        }
        Some(WebhookStatus::Active) => {
            after.status = WebhookStatus::Active;
            after.disabled_reason = None;
            after.consecutive_failures = 0;
            after.failing_since = None;
        }
        Some(st) => {
            after.status = st;
            after.disabled_reason = Some("disabled by an admin".into());
        }
        None => {}
    }
    // New events, or the same events sent somewhere else, are a new subscription.
    if changes.events.is_some() || target.as_ref().is_some_and(|t| t.as_str() != before.url) {
        require_event_access(p, &after.events)?;
    }
    if let Some(t) = target {
        if t.as_str() != before.url {
            after.url = t.as_str().to_owned();
            if !is_allowlisted(s, uow.tx(), scope.tenant_id(), &t).await? {
                // A new destination needs approval again.
                after.status = WebhookStatus::PendingApproval;
                after.approved_by = None;
                after.approved_at = None;
                notify_pending(&mut uow, &after, p.user_id).await?;
            }
        }
    }
    after.updated_at = now;
    store::update(uow.tx(), &after).await?;
    let entry = uow
        .entry("webhook.updated")
        .target("webhook", id.as_uuid())
        .change(Some(audit_json(&before)), Some(audit_json(&after)));
    uow.audit(entry).await?;
    uow.commit().await?;
    Ok((&after).into())
}

pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
) -> AppResult<()> {
    p.require(Permission::WebhooksManage)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = found(uow.tx(), id).await?;
    store::delete(uow.tx(), id).await?;
    let entry = uow
        .entry("webhook.deleted")
        .target("webhook", id.as_uuid())
        .change(Some(audit_json(&before)), None);
    uow.audit(entry).await?;
    uow.commit().await
}

/// Approves a pending endpoint (any admin); records who approved it.
pub async fn approve(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
) -> AppResult<WebhookView> {
    p.require(Permission::WebhooksApprove)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = found_for_update(uow.tx(), id).await?;
    require_status(
        &before,
        WebhookStatus::PendingApproval,
        code::NOT_PENDING_APPROVAL,
        ", not pending approval",
    )?;
    let mut after = before.clone();
    after.status = WebhookStatus::Active;
    after.approved_by = Some(p.user_id);
    after.approved_at = Some(now);
    after.updated_at = now;
    store::update(uow.tx(), &after).await?;
    let entry = uow
        .entry("webhook.approved")
        .target("webhook", id.as_uuid())
        .change(Some(audit_json(&before)), Some(audit_json(&after)))
        .metadata(json!({ "url": safe_http::redact_url(&after.url) }));
    uow.audit(entry).await?;
    uow.commit().await?;
    Ok((&after).into())
}

/// A new secret or key pair (the secret / public key is returned). The previous key keeps
/// signing for `overlap_seconds` (default 24 hours, at most 7 days; 0 drops it at once, as
/// does `expire_previous_now`).
pub async fn rotate_secret(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
    expire_previous_now: bool,
    overlap_seconds: Option<i64>,
) -> AppResult<(WebhookView, String)> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let overlap = match overlap_seconds {
        None => ROTATION_OVERLAP,
        Some(n) if (0..=MAX_ROTATION_OVERLAP.whole_seconds()).contains(&n) => Duration::seconds(n),
        Some(_) => {
            return Err(AppError::field(
                "overlap_seconds",
                format!(
                    "must be between 0 and {} (7 days)",
                    MAX_ROTATION_OVERLAP.whole_seconds()
                ),
            ))
        }
    };
    if expire_previous_now && overlap_seconds.is_some_and(|n| n > 0) {
        return Err(AppError::field(
            "overlap_seconds",
            "contradicts expire_previous_now: true (send one of them)",
        ));
    }
    let expire_previous_now = expire_previous_now || overlap == Duration::ZERO;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = found_for_update(uow.tx(), id).await?;
    require_event_access(p, &before.events)?;
    let algorithm = SignatureAlgorithm::parse(&before.signature_algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown signature algorithm"))?;
    let (stored, secret, public_key) = new_signing_key(algorithm)?;
    let mut after = before.clone();
    after.public_key = public_key;
    after.secret_ciphertext = s
        .keys
        .encryption
        .encrypt(stored.as_bytes(), &aad(scope.tenant_id(), id))?;
    if expire_previous_now {
        after.previous_secret_ciphertext = None;
        after.previous_secret_expires_at = None;
    } else {
        after.previous_secret_ciphertext = Some(before.secret_ciphertext.clone());
        after.previous_secret_expires_at = Some(now + overlap);
    }
    after.updated_at = now;
    store::update(uow.tx(), &after).await?;
    let entry = uow
        .entry("webhook.secret_rotated")
        .target("webhook", id.as_uuid())
        .metadata(json!({
            "expire_previous_now": expire_previous_now,
            "signature_algorithm": after.signature_algorithm,
            "previous_valid_until": after.previous_secret_expires_at.map(rfc3339),
        }));
    uow.audit(entry).await?;
    uow.commit().await?;
    Ok(((&after).into(), secret))
}

/// Queues a `webhook.test` event for this endpoint only.
pub async fn send_test(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
) -> AppResult<DeliveryView> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let w = found(uow.tx(), id).await?;
    require_status(
        &w,
        WebhookStatus::Active,
        code::WEBHOOK_NOT_ACTIVE,
        "; only active webhooks receive events",
    )?;
    // To this endpoint only, whatever it subscribes to: not `uow.emit`, which fans out.
    let event = EventType::WebhookTest;
    let payload = event_payload(
        event,
        json!({ "webhook_id": id, "message": "This is a test event from Palisade." }),
        now,
    );
    let delivery_id = queue_delivery(uow.tx(), scope.tenant_id(), id, event, &payload, now).await?;
    let entry = uow
        .entry("webhook.test_sent")
        .target("webhook", id.as_uuid())
        .metadata(json!({ "delivery_id": delivery_id }));
    uow.audit(entry).await?;
    let d = delivery_found(uow.tx(), id, delivery_id).await?;
    uow.commit().await?;
    Ok((&d).into())
}

/// A webhook's deliveries, newest first, `limit` a page (default 100, at most 500), from
/// `cursor` (the previous page's `next_cursor`, an opaque (created at, id) position).
pub async fn list_deliveries(
    s: &Services,
    p: &Principal,
    id: WebhookId,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<DeliveryView, String>> {
    p.require(Permission::WebhooksRead)?;
    let before = cursor
        .map(|c| ActivityCursor::parse("cursor", c))
        .transpose()?;
    let limit = limit.unwrap_or(100).clamp(1, 500);
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    let w = found(&mut tx, id).await?;
    // Deliveries carry the events' data.
    require_event_access(p, &w.events)?;
    let list = store::list_deliveries(
        &mut tx,
        id,
        before.map(|c| (c.at, DeliveryId::from(c.id))),
        limit + 1,
    )
    .await?;
    let page = Page::from_overfetch(list, limit, |d| {
        ActivityCursor {
            at: d.created_at,
            id: d.id.as_uuid(),
        }
        .encode()
    });
    Ok(page.map(|d| DeliveryView::from(&d)))
}

/// Schedules a delivery for an immediate new attempt.
pub async fn retry_delivery(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: WebhookId,
    delivery_id: DeliveryId,
) -> AppResult<DeliveryView> {
    p.require(Permission::WebhooksManage)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let w = found(uow.tx(), id).await?;
    require_event_access(p, &w.events)?;
    delivery_found(uow.tx(), id, delivery_id).await?;
    store::requeue_delivery(uow.tx(), delivery_id, now).await?;
    let entry = uow
        .entry("webhook.delivery_retried")
        .target("webhook", id.as_uuid())
        .metadata(json!({ "delivery_id": delivery_id }));
    uow.audit(entry).await?;
    let d = delivery_found(uow.tx(), id, delivery_id).await?;
    uow.commit().await?;
    Ok((&d).into())
}

/// The endpoint `id` of the transaction's tenant, or `404`.
async fn found(tx: &mut Tx<TenantScope>, id: WebhookId) -> AppResult<Webhook> {
    let tenant = tx.scope().tenant_id();
    store::find(tx, tenant, id)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

/// [`found`], locked until the transaction ends: every read-modify-write of an endpoint reads
/// it this way (see [`store::find_for_update`]).
async fn found_for_update(tx: &mut Tx<TenantScope>, id: WebhookId) -> AppResult<Webhook> {
    let tenant = tx.scope().tenant_id();
    store::find_for_update(tx, tenant, id)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

/// The delivery `id` of the endpoint `webhook`, or `404`.
async fn delivery_found(
    tx: &mut Tx<TenantScope>,
    webhook: WebhookId,
    id: DeliveryId,
) -> AppResult<Delivery> {
    let tenant = tx.scope().tenant_id();
    store::find_delivery(tx, tenant, webhook, id)
        .await?
        .ok_or(AppError::NotFound("delivery"))
}

/// `409 code` unless the endpoint is `wanted`; the message reads "this webhook is {status}"
/// followed by `why`.
fn require_status(
    w: &Webhook,
    wanted: WebhookStatus,
    code: &'static str,
    why: &str,
) -> AppResult<()> {
    if w.status == wanted {
        return Ok(());
    }
    Err(AppError::conflict(
        code,
        format!("this webhook is {}{why}", w.status.as_str()),
    ))
}
