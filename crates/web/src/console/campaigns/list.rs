//! `/campaigns`: the list, filtered by status, with each campaign's counts.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

pub(super) struct Row {
    id: Uuid,
    name: String,
    status: String,
    badge: &'static str,
    connection: String,
    template: String,
    sent: String,
    targeted: String,
    failed: i64,
    /// When it is scheduled for (while scheduled), else when it was created.
    when_label: &'static str,
    when: String,
}

#[derive(Askama)]
#[template(path = "campaigns/list.html")]
pub(super) struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    statuses: Vec<Choice>,
    status: String,
    list: Listing,
    show_connection: bool,
    can_write: bool,
}

pub(super) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<ListParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    if let Err(e) = p.require(Permission::CampaignsRead) {
        return app_error(e);
    }
    let cursor = match query_cursor(&params.cursor) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let conns = connection_choices(s, p).await;
    let conn_names = label_map(&conns);
    let mut page = ListPage {
        chrome: Chrome::new(s, &viewer, "Campaigns", Nav::Campaigns),
        rows: Vec::new(),
        statuses: named_choices(CampaignStatus::ALL.iter().map(|st| st.as_str())),
        status: params.status.trim().to_owned(),
        list: Listing::new("/campaigns", &[("status", &params.status)]),
        show_connection: !conns.is_empty(),
        can_write: p.require(Permission::CampaignsWrite).is_ok(),
    };
    let found = campaigns::list(
        s,
        p,
        CampaignListQuery {
            status: non_blank(&params.status),
            cursor,
            limit: Some(25),
        },
    )
    .await;
    let found = match page.list.rows(found) {
        Ok(found) => found,
        Err(r) => return r,
    };
    page.rows = found
        .iter()
        .map(|(c, n)| {
            let scheduled = c.status == CampaignStatus::Scheduled && c.scheduled_at.is_some();
            Row {
                id: c.id.as_uuid(),
                name: c.name.clone(),
                status: humanise(c.status.as_str()),
                badge: status_badge(c.status),
                connection: conn_names
                    .get(&c.connection_id.to_string())
                    .cloned()
                    .unwrap_or_default(),
                template: format!("{} ({})", c.template_name, c.template_language),
                sent: thousands(n.sent + n.delivered + n.read),
                targeted: thousands(n.targeted),
                failed: n.failed,
                when_label: if scheduled { "Scheduled" } else { "Created" },
                when: palisade_domain::rfc3339(if scheduled {
                    c.scheduled_at.unwrap_or(c.created_at)
                } else {
                    c.created_at
                }),
            }
        })
        .collect();
    render_with(page.list.status, &page)
}
