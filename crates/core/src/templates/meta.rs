//! Talking to Meta about templates: the connection's token, Meta's refusals as errors, and
//! `sync` (every template of the WABA, paged, stored; those that need attention notified).

use super::*;

/// The connection a template request names: one of the tenant's (`422` on `connection_id`
/// otherwise, as for a deal's contact) and active (`409 connection_disconnected`).
pub(super) async fn active_connection(tx: &mut Tx<TenantScope>, id: Uuid) -> AppResult<Connection> {
    let c = connections::find(tx, ConnectionId::from_uuid(id))
        .await?
        .ok_or_else(|| {
            AppError::field(
                "connection_id",
                "must be a WhatsApp connection of this tenant",
            )
        })?;
    if c.status != ConnectionStatus::Active {
        return Err(AppError::conflict(
            code::CONNECTION_DISCONNECTED,
            "the WhatsApp connection is disconnected",
        ));
    }
    Ok(c)
}

pub(super) fn access_token(s: &Services, c: &Connection) -> AppResult<String> {
    let token = s
        .keys
        .encryption
        .decrypt(&c.access_token_ciphertext, &secret_aad(c, "access_token"))
        .map_err(|e| anyhow::anyhow!("access token of connection {}: {e:?}", c.id))?;
    Ok(String::from_utf8(token)
        .map_err(|_| anyhow::anyhow!("access token of connection {} is not UTF-8", c.id))?)
}

/// Meta's refusal as a `422 meta_refused` carrying Meta's code and explanation; Meta out of
/// reach as a `503`.
pub(super) fn meta_error(what: &str, e: GraphError) -> AppError {
    match e {
        GraphError::Api {
            code,
            message,
            details,
            ..
        } => AppError::Unprocessable {
            code: code::META_REFUSED,
            message: format!(
                "Meta refused to {what} (error {code}): {}",
                details.unwrap_or(message)
            ),
        },
        GraphError::Transport(why) => {
            tracing::warn!(error = %why, "WhatsApp Graph API unreachable for templates");
            AppError::Unavailable {
                message: "the WhatsApp Graph API could not be reached; try again shortly".into(),
                retry_after_secs: 5,
            }
        }
    }
}

pub(super) fn quality_of(m: &MetaTemplate) -> Option<String> {
    let q = m.quality_score.as_ref()?;
    q.get("score")
        .and_then(Value::as_str)
        .or(q.as_str())
        .map(str::to_owned)
}

pub(super) fn reason_of(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONE"))
        .map(|r| r.chars().take(500).collect())
}

/// Tells the tenant's admins that a template can no longer be sent.
pub(super) async fn notify_attention<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    t: &Template,
    now: OffsetDateTime,
) -> AppResult<()> {
    let admins = notifications::tenant_admins(tx, tenant, None).await?;
    let status = t.status.as_str().to_ascii_lowercase();
    let reason = t
        .rejection_reason
        .as_deref()
        .map(|r| format!(" Meta's reason: {r}."))
        .unwrap_or_default();
    notifications::notify(
        tx,
        tenant,
        &admins,
        &NewNotification {
            kind: "template.attention",
            title: format!("Template {} ({}) is {status}", t.name, t.language),
            body: format!(
                "Meta marked the message template {} ({}) {}; it cannot be sent until it is \
                 approved again.{reason}",
                t.name,
                t.language,
                t.status.as_str()
            ),
            data: json!({
                "template_id": t.id, "name": t.name, "language": t.language,
                "status": t.status.as_str(), "reason": t.rejection_reason,
            }),
            target: Some(("template", t.id.as_uuid())),
        },
        now,
    )
    .await?;
    Ok(())
}

/// Reads every page of a connection's templates from Meta.
pub(super) async fn fetch_all(s: &Services, c: &Connection) -> AppResult<Vec<MetaTemplate>> {
    let token = access_token(s, c)?;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = s
            .graph
            .list_templates(&token, &c.waba_id, after.as_deref())
            .await
            .map_err(|e| meta_error("list the templates", e))?;
        out.extend(page.data);
        let paging = page.paging.unwrap_or_default();
        match (paging.next, paging.cursors.and_then(|c| c.after)) {
            (Some(_), Some(cursor)) => after = Some(cursor),
            _ => return Ok(out),
        }
    }
    tracing::warn!(connection = %c.id, "template sync stopped after {MAX_PAGES} pages");
    Ok(out)
}

/// Pulls every template of the connection's WABA from Meta and makes the stored ones match.
pub async fn sync(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    connection_id: Uuid,
) -> AppResult<TemplateSyncView> {
    p.require(Permission::TemplatesManage)?;
    let conn = {
        let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
        active_connection(&mut tx, connection_id).await?
    };
    let fetched = fetch_all(s, &conn).await?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let tenant = p.tenant_scope()?.tenant_id();
    // Two syncs (and Meta's template webhooks) of one connection run one after the other.
    if !store::lock_connection(uow.tx(), tenant, conn.id).await? {
        return Err(AppError::NotFound("WhatsApp connection"));
    }
    let now = uow.now();
    let stored = store::list_of_connection(uow.tx(), conn.id).await?;
    let mut by_key: HashMap<(String, String), Template> = stored
        .into_iter()
        .map(|t| ((t.name.clone(), t.language.clone()), t))
        .collect();
    let (mut created, mut updated) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for m in &fetched {
        let key = (m.name.clone(), m.language.clone());
        if !seen.insert(key.clone()) {
            continue;
        }
        let (header_params, body_params) = parameter_counts(&m.components);
        let fresh = Template {
            id: TemplateId::new(),
            tenant_id: tenant,
            connection_id: conn.id,
            waba_id: conn.waba_id.clone(),
            meta_id: m.id.clone(),
            name: m.name.clone(),
            language: m.language.clone(),
            category: TemplateCategory::from_meta(&m.category),
            status: TemplateStatus::parse(&m.status),
            quality_score: quality_of(m),
            rejection_reason: reason_of(m.rejected_reason.as_deref()),
            components: if m.components.is_array() {
                m.components.clone()
            } else {
                json!([])
            },
            header_params,
            body_params,
            synced_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        match by_key.remove(&key) {
            None => {
                store::insert(uow.tx(), &fresh).await?;
                if fresh.status.needs_attention() {
                    notify_attention(uow.tx(), tenant, &fresh, now).await?;
                }
                created.push(fresh);
            }
            Some(before) => {
                let after = Template {
                    id: before.id,
                    created_at: before.created_at,
                    ..fresh
                };
                let changed = after.meta_id != before.meta_id
                    || after.category != before.category
                    || after.status != before.status
                    || after.quality_score != before.quality_score
                    || after.rejection_reason != before.rejection_reason
                    || after.components != before.components;
                let after = if changed {
                    after
                } else {
                    Template {
                        updated_at: before.updated_at,
                        ..after
                    }
                };
                store::update(uow.tx(), &after).await?;
                if changed {
                    if after.status != before.status && after.status.needs_attention() {
                        notify_attention(uow.tx(), tenant, &after, now).await?;
                    }
                    updated.push(after);
                }
            }
        }
    }
    let removed: Vec<Template> = by_key.into_values().collect();
    for t in &removed {
        store::delete(uow.tx(), t.id).await?;
    }
    let result = TemplateSyncView {
        connection_id: conn.id.as_uuid(),
        fetched: fetched.len(),
        created: created.len(),
        updated: updated.len(),
        removed: removed.len(),
    };
    uow.audit(
        uow.entry("template.synced")
            .target("whatsapp_connection", conn.id)
            .metadata(json!({
                "fetched": result.fetched, "created": result.created,
                "updated": result.updated, "removed": result.removed,
            })),
    )
    .await?;
    let views = |list: &[Template]| list.iter().map(TemplateView::from).collect::<Vec<_>>();
    uow.emit_all(EventType::TemplateCreated, &views(&created))
        .await?;
    uow.emit_all(EventType::TemplateUpdated, &views(&updated))
        .await?;
    let gone: Vec<TemplateDeleted> = removed
        .iter()
        .map(|t| TemplateDeleted {
            template: TemplateView::from(t),
            deleted: true,
        })
        .collect();
    uow.emit_all(EventType::TemplateDeleted, &gone).await?;
    uow.commit().await?;
    Ok(result)
}
