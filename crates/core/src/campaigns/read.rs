//! Reading campaigns: the list with each one's counts, one campaign, its recipients.

use super::*;

/// The tenant's campaigns, newest first, narrowed by status, each with its counts (the page's
/// in one grouped statement, in the same read as the page).
pub async fn list(
    s: &Services,
    p: &Principal,
    q: CampaignListQuery,
) -> AppResult<Page<(Campaign, store::Counts)>> {
    p.require(Permission::CampaignsRead)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(raw) => Some(CampaignStatus::parse(raw).ok_or_else(|| {
            AppError::field(
                "status",
                format!(
                    "{raw:?} is not one of draft, scheduled, running, paused, completed, cancelled"
                ),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list(
        &mut tx,
        status,
        q.cursor.map(CampaignId::from_uuid),
        limit + 1,
    )
    .await?;
    let page = Page::from_overfetch(items, limit, |c| c.id.as_uuid());
    let ids: Vec<CampaignId> = page.data.iter().map(|c| c.id).collect();
    let mut counts = store::counts_many(&mut tx, &ids).await?;
    Ok(page.map(|c| {
        let n = counts.remove(&c.id).unwrap_or_default();
        (c, n)
    }))
}

pub async fn get(s: &Services, p: &Principal, id: CampaignId) -> AppResult<CampaignDetail> {
    p.require(Permission::CampaignsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let c = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
    detail(&mut tx, c).await
}

pub async fn recipients(
    s: &Services,
    p: &Principal,
    id: CampaignId,
    q: RecipientQuery,
) -> AppResult<Page<RecipientView>> {
    p.require(Permission::CampaignsRead)?;
    if let Some(st) = q.status.as_deref() {
        if !RECIPIENT_STATUSES.contains(&st) {
            return Err(AppError::field(
                "status",
                format!("{st:?} is not one of {}", RECIPIENT_STATUSES.join(", ")),
            ));
        }
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if store::find(&mut tx, id).await?.is_none() {
        return Err(AppError::NotFound("campaign"));
    }
    let items = store::recipients(
        &mut tx,
        id,
        q.status.as_deref(),
        q.cursor.map(ContactId::from_uuid),
        limit + 1,
    )
    .await?;
    Ok(
        Page::from_overfetch(items, limit, |r| r.contact_id.as_uuid())
            .map(|r| RecipientView::from(&r)),
    )
}
