//! `/campaigns/{id}`: a campaign's status, counts, failures and recipients, and the actions
//! (`POST /campaigns/{id}/start|pause|resume|cancel|delete`).

use super::*;

#[derive(Debug, Default, Deserialize)]
pub(super) struct ShowParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

pub(super) struct Figure {
    label: &'static str,
    value: String,
}

pub(super) struct RecipientRow {
    contact_id: Uuid,
    contact: String,
    status: String,
    badge: &'static str,
    detail: String,
    updated_at: String,
}

pub(super) struct Failure {
    code: i64,
    title: String,
    count: String,
}

/// A button of the page: the action's path segment, its label and, for the ones that cannot
/// be undone, the question asked first (with script).
pub(super) struct ActionButton {
    action: &'static str,
    label: &'static str,
    class: &'static str,
    confirm: String,
    confirm_label: &'static str,
}

#[derive(Askama)]
#[template(path = "campaigns/show.html")]
pub(super) struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    status: String,
    badge: &'static str,
    connection: String,
    template: String,
    parameters: Vec<String>,
    audience_tags: String,
    audience_exclude: String,
    audience_ids: usize,
    everyone: bool,
    scheduled_at: String,
    started_at: String,
    completed_at: String,
    created_at: String,
    figures: Vec<Figure>,
    failures: Vec<Failure>,
    actions: Vec<ActionButton>,
    /// Whether the page links to the edit form (a draft or scheduled campaign, a writer).
    can_edit: bool,
    recipients: Vec<RecipientRow>,
    recipient_statuses: Vec<Choice>,
    recipient_status: String,
    recipient_list: Listing,
}

/// The actions `status` allows, for someone who may write (and delete) campaigns.
pub(super) fn actions_for(
    status: CampaignStatus,
    name: &str,
    can_write: bool,
    can_delete: bool,
) -> Vec<ActionButton> {
    let mut out = Vec::new();
    let button = |action, label, class| ActionButton {
        action,
        label,
        class,
        confirm: String::new(),
        confirm_label: "",
    };
    if can_write {
        if status.start(false).is_ok() {
            out.push(ActionButton {
                confirm: format!(
                    "Start the campaign {name}? Its audience is fixed now and its messages go out \
                     (at the scheduled time, if it is still ahead)."
                ),
                confirm_label: "Yes, start",
                ..button("start", "Start", "btn-primary")
            });
        }
        if status.pause().is_ok() {
            out.push(button("pause", "Pause", "btn-secondary"));
        }
        if status.resume(false).is_ok() {
            out.push(button("resume", "Resume", "btn-primary"));
        }
        if status.cancel().is_ok() {
            out.push(ActionButton {
                confirm: format!(
                    "Cancel the campaign {name}? The messages not sent yet will not be sent, \
                     and it cannot be started again."
                ),
                confirm_label: "Yes, cancel it",
                ..button("cancel", "Cancel campaign", "btn-danger")
            });
        }
    }
    if can_delete && status == CampaignStatus::Draft {
        out.push(ActionButton {
            confirm: format!("Delete the draft {name}?"),
            confirm_label: "Delete",
            ..button("delete", "Delete campaign", "btn-danger")
        });
    }
    out
}

pub(super) fn figures(c: &CampaignCountsView) -> Vec<Figure> {
    [
        ("Targeted", c.targeted),
        ("Skipped", c.skipped),
        ("Queued", c.queued),
        ("Sent", c.sent),
        ("Delivered", c.delivered),
        ("Read", c.read),
        ("Failed", c.failed),
        ("Replied", c.replied),
    ]
    .into_iter()
    .map(|(label, n)| Figure {
        label,
        value: thousands(n),
    })
    .collect()
}

pub(super) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    params: Result<Query<ShowParams>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a campaign id: the same 404 as another tenant's campaign.
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(CampaignId::from_uuid) else {
        return app_error(AppError::NotFound("campaign"));
    };
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let d = match campaigns::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let cursor = match query_cursor(&params.cursor) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let c = &d.campaign;
    let conn_names = label_map(&connection_choices(s, p).await);
    let counts = CampaignCountsView::from(&d.counts);
    let time =
        |t: Option<time::OffsetDateTime>| t.map(palisade_domain::rfc3339).unwrap_or_default();
    let mut page = ShowPage {
        chrome: Chrome::new(s, &viewer, c.name.clone(), Nav::Campaigns),
        id: c.id.as_uuid(),
        name: c.name.clone(),
        status: humanise(c.status.as_str()),
        badge: status_badge(c.status),
        connection: conn_names
            .get(&c.connection_id.to_string())
            .cloned()
            .unwrap_or_default(),
        template: format!("{} ({})", c.template_name, c.template_language),
        parameters: c.parameters.iter().map(describe).collect(),
        audience_tags: c.audience.tags.join(", "),
        audience_exclude: c.audience.exclude_tags.join(", "),
        audience_ids: c.audience.contact_ids.len(),
        everyone: c.audience.everyone(),
        scheduled_at: time(c.scheduled_at),
        started_at: time(c.started_at),
        completed_at: time(c.completed_at),
        created_at: palisade_domain::rfc3339(c.created_at),
        figures: figures(&counts),
        failures: d
            .failures
            .iter()
            .map(|(code, title, count)| Failure {
                code: *code,
                title: title.clone(),
                count: thousands(*count),
            })
            .collect(),
        actions: actions_for(
            c.status,
            &c.name,
            p.require(Permission::CampaignsWrite).is_ok(),
            p.require(Permission::CampaignsDelete).is_ok(),
        ),
        can_edit: c.status.editable() && p.require(Permission::CampaignsWrite).is_ok(),
        recipients: Vec::new(),
        recipient_statuses: named_choices(RECIPIENT_STATUSES),
        recipient_status: params.status.trim().to_owned(),
        recipient_list: Listing::new(
            format!("/campaigns/{}", c.id),
            &[("status", &params.status)],
        ),
    };
    let found = campaigns::recipients(
        s,
        p,
        id,
        RecipientQuery {
            status: non_blank(&params.status),
            cursor,
            limit: Some(50),
        },
    )
    .await;
    let found = match page.recipient_list.rows(found) {
        Ok(found) => found,
        Err(r) => return r,
    };
    // The page's contacts in one read, as a person knows them (an erased contact, or
    // one that cannot be read: its id only).
    let ids: Vec<ContactId> = found
        .iter()
        .map(|r| ContactId::from_uuid(r.contact_id))
        .collect();
    let labels: HashMap<ContactId, String> = palisade_core::contacts::get_many(s, p, &ids)
        .await
        .unwrap_or_default()
        .iter()
        .map(|c| (c.id, contact_label(c)))
        .collect();
    for r in found {
        let contact = labels
            .get(&ContactId::from_uuid(r.contact_id))
            .cloned()
            .unwrap_or_else(|| r.contact_id.to_string());
        let detail = match (&r.skip_reason, &r.error) {
            (Some(reason), _) => humanise(reason),
            (None, Some(e)) if e.code != 0 => format!("{} ({})", e.title, e.code),
            (None, Some(e)) => e.title.clone(),
            (None, None) => String::new(),
        };
        page.recipients.push(RecipientRow {
            contact_id: r.contact_id,
            contact,
            badge: recipient_badge(&r.status),
            status: humanise(&r.status),
            detail,
            updated_at: r.updated_at,
        });
    }
    render_with(page.recipient_list.status, &page)
}

// ---- the actions ----

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

impl WithCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    Path((id, action)): Path<(String, String)>,
    ChangeForm(_): ChangeForm<ActionForm>,
) -> Response {
    let s = &state.services;
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(CampaignId::from_uuid) else {
        return app_error(AppError::NotFound("campaign"));
    };
    let p = &viewer.principal;
    let to_campaign = format!("/campaigns/{id}");
    let result = match action.as_str() {
        "start" => campaigns::act(s, p, &meta, id, Action::Start)
            .await
            .map(|_| to_campaign),
        "pause" => campaigns::act(s, p, &meta, id, Action::Pause)
            .await
            .map(|_| to_campaign),
        "resume" => campaigns::act(s, p, &meta, id, Action::Resume)
            .await
            .map(|_| to_campaign),
        "cancel" => campaigns::act(s, p, &meta, id, Action::Cancel)
            .await
            .map(|_| to_campaign),
        "delete" => campaigns::delete(s, p, &meta, id)
            .await
            .map(|()| "/campaigns".to_owned()),
        _ => Err(AppError::NotFound("campaign action")),
    };
    match result {
        Ok(to) => crate::console::auth_pages::see_other(&to),
        // A refusal (409 for the status, 422 for a template no longer approved, 403, 404):
        // the error page with the API's status and message.
        Err(e) => app_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_status_and_the_role() {
        let names = |st, w, d| {
            actions_for(st, "x", w, d)
                .iter()
                .map(|a| a.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(CampaignStatus::Draft, true, true),
            ["start", "cancel", "delete"]
        );
        assert_eq!(
            names(CampaignStatus::Running, true, true),
            ["pause", "cancel"]
        );
        assert_eq!(
            names(CampaignStatus::Paused, true, true),
            ["resume", "cancel"]
        );
        assert!(names(CampaignStatus::Completed, true, true).is_empty());
        assert!(names(CampaignStatus::Draft, false, false).is_empty());
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(0), "0");
    }
}
