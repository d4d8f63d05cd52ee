//! A campaign's state changes (start, pause, resume, cancel: each stored, audited and sent as
//! a webhook by one `record_transition`) and deleting one.

use super::*;

/// A state change asked for through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl Action {
    fn event(self) -> EventType {
        match self {
            Action::Start => EventType::CampaignStarted,
            Action::Pause => EventType::CampaignPaused,
            Action::Resume => EventType::CampaignResumed,
            Action::Cancel => EventType::CampaignCancelled,
        }
    }

    fn audit(self) -> &'static str {
        match self {
            Action::Start => "campaign.started",
            Action::Pause => "campaign.paused",
            Action::Resume => "campaign.resumed",
            Action::Cancel => "campaign.cancelled",
        }
    }
}

/// Starts, pauses, resumes or cancels a campaign (`409 campaign_state_conflict` when its status
/// does not allow it). Starting checks the template and the connection again and materialises
/// the audience; cancelling skips the recipients not dispatched yet (`cancelled`).
pub async fn act(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: CampaignId,
    action: Action,
) -> AppResult<CampaignDetail> {
    p.require(Permission::CampaignsWrite)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
    let future = in_future(before.scheduled_at, now);
    let next = match action {
        Action::Start => before.status.start(future),
        Action::Pause => before.status.pause(),
        Action::Resume => before.status.resume(future),
        Action::Cancel => before.status.cancel(),
    }
    .map_err(|r| AppError::conflict(code::CAMPAIGN_STATE_CONFLICT, r.message))?;
    let mut after = before.clone();
    after.status = next;
    after.updated_at = now;
    match action {
        Action::Start => {
            let category = check_template(
                uow.tx(),
                before.connection_id,
                &before.template_name,
                &before.template_language,
                &before.parameters,
            )
            .await?;
            let conn = palisade_store::whatsapp_connections::find(uow.tx(), before.connection_id)
                .await?
                .ok_or(AppError::NotFound("WhatsApp connection"))?;
            if conn.status != ConnectionStatus::Active {
                return Err(AppError::conflict(
                    code::CONNECTION_DISCONNECTED,
                    "the campaign's WhatsApp connection is disconnected; reconnect it first",
                ));
            }
            store::materialise(
                uow.tx(),
                id,
                &before.audience,
                category == TemplateCategory::Marketing,
                now,
            )
            .await?;
            after.started_at = Some(now);
        }
        Action::Cancel => {
            store::skip_pending(uow.tx(), id, "cancelled", now).await?;
            after.completed_at = Some(now);
        }
        Action::Pause | Action::Resume => {}
    }
    let after = record_transition(&mut uow, &before, after, action, None).await?;
    let detail = detail(uow.tx(), after).await?;
    uow.commit().await?;
    Ok(detail)
}

/// Stores a status change (`after`), audits it as `action` (with `reason` in the metadata when
/// given) and queues its webhook event; returns the campaign as stored.
pub(super) async fn record_transition(
    uow: &mut UnitOfWork<'_, TenantScope>,
    before: &Campaign,
    after: Campaign,
    action: Action,
    reason: Option<&str>,
) -> AppResult<Campaign> {
    store::update(uow.tx(), &after).await?;
    let after = stored(uow.tx(), before.id).await?;
    let mut entry = uow
        .entry(action.audit())
        .target("campaign", before.id)
        .change(Some(audit_json(before)), Some(audit_json(&after)));
    if let Some(reason) = reason {
        entry = entry.metadata(json!({ "reason": reason }));
    }
    uow.audit(entry).await?;
    uow.emit(action.event(), &CampaignView::from(&after))
        .await?;
    Ok(after)
}

/// The dispatcher found the campaign's messages refused by the send path (its template no
/// longer approved, or gone; its connection disconnected): rather than keep a `running`
/// campaign that sends nothing, it is paused (audited `campaign.paused` with the reason,
/// webhook `campaign.paused`) and the tenant's admins are told in the app. Resuming it after
/// the cause is fixed sends to the recipients still pending. Nothing happens if it is no
/// longer running (paused or cancelled meanwhile).
///
/// `scope` is the campaign's tenant, as the dispatcher leased it (`dispatch.rs`).
pub(crate) async fn pause_blocked(
    s: &Services,
    scope: TenantScope,
    id: CampaignId,
    reason: &str,
) -> AppResult<bool> {
    let tenant = scope.tenant_id();
    let mut uow = UnitOfWork::system(
        s,
        crate::unit_of_work::SystemActor::CampaignDispatcher,
        scope,
    )
    .await?;
    let now = uow.now();
    let Some(before) = store::find_for_update(uow.tx(), id).await? else {
        return Ok(false);
    };
    if before.status != CampaignStatus::Running {
        return Ok(false);
    }
    let Ok(next) = before.status.pause() else {
        return Ok(false);
    };
    let mut after = before.clone();
    after.status = next;
    after.updated_at = now;
    let reason: String = reason.chars().take(500).collect();
    let after = record_transition(&mut uow, &before, after, Action::Pause, Some(&reason)).await?;
    let admins = crate::notifications::tenant_admins(uow.tx(), tenant, None).await?;
    crate::notifications::notify(
        uow.tx(),
        tenant,
        &admins,
        &crate::notifications::NewNotification {
            kind: "campaign.paused",
            title: format!("Campaign {} was paused", after.name),
            body: format!(
                "The campaign {} cannot send its messages ({reason}); it was paused. Fix the \
                 cause and resume it to send to the recipients still waiting.",
                after.name
            ),
            data: json!({ "campaign_id": id, "reason": reason }),
            target: Some(("campaign", id.as_uuid())),
        },
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(true)
}

pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: CampaignId,
) -> AppResult<()> {
    p.require(Permission::CampaignsDelete)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
    if !before.status.deletable() {
        return Err(AppError::conflict(
            code::CAMPAIGN_RUNNING,
            "a running campaign cannot be deleted; pause or cancel it first",
        ));
    }
    store::delete(uow.tx(), id).await?;
    uow.audit(
        uow.entry("campaign.deleted")
            .target("campaign", id)
            .change(Some(audit_json(&before)), None),
    )
    .await?;
    uow.emit(
        EventType::CampaignDeleted,
        &CampaignDeleted {
            campaign: CampaignView::from(&before),
            deleted: true,
        },
    )
    .await?;
    uow.commit().await
}
