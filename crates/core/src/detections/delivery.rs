//! Telling people about an alert that just opened: an audit record, the tenant's
//! `security.alert` webhook event, a mail to the tenant's admins (high and critical), and the
//! platform's mailbox and webhook (`PALISADE_SECURITY_ALERT_EMAIL`, `_WEBHOOK`).

use super::api::AlertView;
use crate::audit::AuditEntryExt;
use crate::mail::{self, Mail};
use crate::outbox::SendError;
use crate::{AppResult, Services, UnitOfWork};
use palisade_domain::AlertDeliveryId;
use palisade_domain::{rfc3339, EventType, Role};
use palisade_store::alert_webhook_outbox::{self, NewAlertDelivery};
use palisade_store::security_alerts::SecurityAlert;
use palisade_store::{users, Scope};
use reqwest::header::HeaderMap;
use reqwest::Method;
use secrecy::ExposeSecret;

/// What goes out in the alert's own transaction (so it exists exactly when the alert does).
pub(super) async fn within<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    a: &SecurityAlert,
) -> AppResult<()> {
    let s = uow.services();
    let view = AlertView::from(a);
    // The audit record goes last: appending locks the tenant's chain head until commit, and the
    // mails reference the admins' user rows (a key-share lock). A change that holds a user row
    // (a demotion) and then appends to the chain would otherwise deadlock with this unit on
    // PostgreSQL.
    if let Some(tenant) = a.tenant_id {
        uow.emit(EventType::SecurityAlert, &view).await?;
        if a.severity.is_mailed() {
            let admins: Vec<_> = users::list(uow.tx(), Some(tenant), false)
                .await?
                .into_iter()
                .filter(|u| u.role == Role::Admin)
                .collect();
            for admin in admins {
                let m = compose(s, a, &admin.email).user(admin.id);
                mail::queue(uow, m).await?;
            }
        }
    }
    if let Some(to) = s.settings.detect.alert_email.clone() {
        mail::queue(uow, compose(s, a, &to)).await?;
    }
    let now = uow.now();
    if platform_webhook_in(s, uow.tx(), a, now).await? {
        uow.after_commit(|s| s.alert_webhooks.notify_one());
    }
    let entry = uow
        .entry("security.alert.raised")
        .target("security_alert", a.id)
        .metadata(serde_json::json!({
            "rule": a.rule.as_str(),
            "severity": a.severity.as_str(),
            "subject_type": a.subject_type,
            "subject_id": a.subject_id,
        }));
    uow.audit(entry).await?;
    Ok(())
}

fn compose(s: &Services, a: &SecurityAlert, to: &str) -> Mail {
    let subject = format!(
        "Security alert ({}): {}",
        a.severity.as_str(),
        a.rule.as_str().replace('_', " ")
    );
    Mail::compose("security_alert", to, &subject)
        .paragraph(a.summary.clone())
        .paragraph(format!("Rule: {}", a.rule.as_str()))
        .paragraph(format!("Severity: {}", a.severity.as_str()))
        .paragraph(format!(
            "Subject: {} {}",
            a.subject_type,
            a.subject_label.as_deref().unwrap_or(&a.subject_id)
        ))
        .paragraph(format!("First seen: {}", rfc3339(a.first_seen_at)))
        .action(
            "Review the alert",
            // The console's alerts page, narrowed to the alert's rule (a platform alert is
            // listed there for super admins).
            mail::link(s, "/security/alerts", &[("rule", a.rule.as_str())]),
        )
}

/// Queues the mail to `PALISADE_SECURITY_ALERT_EMAIL` for a platform alert raised outside a
/// unit of work (the command line), in the alert's own transaction.
pub async fn platform_mail_in<S: Scope>(
    s: &Services,
    tx: &mut palisade_store::Tx<S>,
    a: &SecurityAlert,
) -> AppResult<()> {
    if let Some(to) = s.settings.detect.alert_email.clone() {
        mail::queue_in(s, tx, compose(s, a, &to), s.now()).await?;
    }
    Ok(())
}

/// Queues the alert for `PALISADE_SECURITY_ALERT_WEBHOOK` in the alert's own transaction (the
/// durable outbox `store::alert_webhook_outbox`, sent by [`super::webhook_outbox`]'s worker).
/// Returns whether one was queued (none without a URL).
pub async fn platform_webhook_in<S: Scope>(
    s: &Services,
    tx: &mut palisade_store::Tx<S>,
    a: &SecurityAlert,
    now: time::OffsetDateTime,
) -> AppResult<bool> {
    if s.settings.detect.alert_webhook.is_none() {
        return Ok(false);
    }
    let payload = crate::webhooks::event_payload(
        EventType::SecurityAlert,
        serde_json::to_value(AlertView::from(a)).unwrap_or_default(),
        now,
    );
    let body = serde_json::to_string(&payload).unwrap_or_default();
    let message_id = format!("alert_{}_{}", a.id, a.occurrences);
    alert_webhook_outbox::insert(
        tx,
        NewAlertDelivery {
            id: AlertDeliveryId::new(),
            tenant_id: a.tenant_id,
            alert_id: a.id,
            message_id: &message_id,
            payload: &body,
        },
        now,
    )
    .await?;
    Ok(true)
}

/// One attempt to send a queued alert body to `PALISADE_SECURITY_ALERT_WEBHOOK`, signed like
/// every Palisade webhook (Standard Webhooks: `webhook-id`, `webhook-timestamp` of this
/// attempt, `webhook-signature: v1,<HMAC-SHA256>` with `PALISADE_SECURITY_ALERT_WEBHOOK_SECRET`).
/// `Err` says why it was not accepted; `permanent` when trying again cannot help (no URL set).
pub(super) async fn send_platform_webhook(
    s: &Services,
    message_id: &str,
    body: &[u8],
) -> Result<(), SendError> {
    let Some(url) = s.settings.detect.alert_webhook.clone() else {
        return Err(SendError::permanent(
            "PALISADE_SECURITY_ALERT_WEBHOOK is no longer set",
        ));
    };
    let ts = s.now().unix_timestamp();
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("content-type", "application/json".into());
    put("webhook-id", message_id.to_owned());
    put("webhook-timestamp", ts.to_string());
    if let Some(key) = s
        .settings
        .detect
        .alert_webhook_secret
        .as_ref()
        .and_then(|k| crate::webhooks::secret_bytes(k.expose_secret()))
    {
        put(
            "webhook-signature",
            format!("v1,{}", crate::webhooks::sign(&key, message_id, ts, body)),
        );
    }
    // The operator chose this URL (it may well be an internal SIEM): the development
    // policy, which allows private addresses.
    let policy = crate::safe_http::OutboundPolicy::development();
    let target = crate::safe_http::TargetUrl::parse(&url, &policy).map_err(|e| {
        SendError::permanent(format!(
            "PALISADE_SECURITY_ALERT_WEBHOOK is not a usable URL: {e}"
        ))
    })?;
    match crate::safe_http::send(&policy, Method::POST, &target, headers, body.to_vec()).await {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(SendError::transient(format!(
            "the receiver answered {}",
            r.status.as_u16()
        ))),
        Err(e) => Err(SendError::transient(format!("{e}"))),
    }
}
