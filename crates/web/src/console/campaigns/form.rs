//! `/campaigns/new` and `/campaigns/{id}/edit`: the campaign form, one parameter row per
//! variable of the chosen template.

use super::*;

/// The kinds of value a template variable may take, as the form's select offers them.
pub(super) const PARAM_KINDS: [(&str, &str); 5] = [
    ("literal", "Text (typed below)"),
    ("name", "Contact's name"),
    ("phone", "Contact's phone"),
    ("email", "Contact's email"),
    ("custom", "Contact's custom attribute (key below)"),
];

/// One parameter row as typed.
#[derive(Debug, Clone, Default)]
pub(super) struct ParamRow {
    kind: String,
    value: String,
    fallback: String,
}

/// The form as a person fills it.
#[derive(Debug, Clone, Default)]
pub(super) struct CampaignForm {
    csrf: String,
    step: String,
    name: String,
    connection_id: String,
    template: String,
    params: Vec<ParamRow>,
    tags: String,
    exclude_tags: String,
    contact_ids: String,
    scheduled_at: String,
}

impl CampaignForm {
    /// From the posted pairs (`param_kind_1`, `param_value_1`, `param_fallback_1`, …).
    fn from_pairs(pairs: Vec<(String, String)>) -> CampaignForm {
        let mut f = CampaignForm::default();
        let mut rows: BTreeMap<usize, ParamRow> = BTreeMap::new();
        for (k, v) in pairs {
            let row = |prefix: &str| {
                k.strip_prefix(prefix)
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=palisade_domain::integration::MAX_PARAMETERS).contains(n))
            };
            if let Some(n) = row("param_kind_") {
                rows.entry(n).or_default().kind = v;
            } else if let Some(n) = row("param_value_") {
                rows.entry(n).or_default().value = v;
            } else if let Some(n) = row("param_fallback_") {
                rows.entry(n).or_default().fallback = v;
            } else {
                match k.as_str() {
                    "csrf" => f.csrf = v,
                    "step" => f.step = v,
                    "name" => f.name = v,
                    "connection_id" => f.connection_id = v,
                    "template" => f.template = v,
                    "tags" => f.tags = v,
                    "exclude_tags" => f.exclude_tags = v,
                    "contact_ids" => f.contact_ids = v,
                    "scheduled_at" => f.scheduled_at = v,
                    _ => {}
                }
            }
        }
        let count = rows.keys().next_back().copied().unwrap_or(0);
        f.params = (1..=count)
            .map(|n| rows.remove(&n).unwrap_or_default())
            .collect();
        f
    }

    /// The parameters as the API takes them (the core parses and checks them).
    fn parameters(&self) -> Value {
        Value::Array(
            self.params
                .iter()
                .map(|r| {
                    let value = r.value.trim();
                    let field = match r.kind.as_str() {
                        "literal" | "" => return json!({"type": "literal", "value": r.value}),
                        "custom" => format!("custom_attributes.{value}"),
                        other => other.to_owned(),
                    };
                    let mut o = serde_json::Map::new();
                    o.insert("type".into(), json!("contact_field"));
                    o.insert("field".into(), json!(field));
                    if !r.fallback.trim().is_empty() {
                        o.insert("fallback".into(), json!(r.fallback.trim()));
                    }
                    Value::Object(o)
                })
                .collect(),
        )
    }

    fn audience(&self) -> Value {
        json!({
            "tags": split_list(&self.tags),
            "exclude_tags": split_list(&self.exclude_tags),
            "contact_ids": split_list(&self.contact_ids),
        })
    }

    /// The schedule as RFC 3339: a `datetime-local` value (`2030-01-31T09:00`) is read as UTC;
    /// anything else goes to the core as typed (which names what is wrong).
    fn scheduled_at(&self) -> Option<String> {
        let t = self.scheduled_at.trim();
        let shape = |s: &str| {
            s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            })
        };
        match t.len() {
            0 => None,
            16 if shape(t) => Some(format!("{t}:00Z")),
            19 if shape(t) => Some(format!("{t}Z")),
            _ => Some(t.to_owned()),
        }
    }
}

/// Values separated by commas or lines, trimmed, blanks left out.
pub(super) fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A parameter row as the page shows it.
pub(super) struct ParamSlot {
    n: usize,
    /// `Header {{1}}`, `Body {{2}}`.
    label: String,
    row: ParamRow,
}

#[derive(Askama)]
#[template(path = "campaigns/new.html")]
pub(super) struct NewPage {
    chrome: Chrome,
    /// The campaign edited (`/campaigns/{id}/edit`); `None` for a new one.
    editing: Option<Uuid>,
    form: CampaignForm,
    connections: Vec<Choice>,
    templates: Vec<Choice>,
    slots: Vec<ParamSlot>,
    kinds: Vec<Choice>,
    error: String,
    fields: BTreeMap<String, String>,
}

impl NewPage {
    fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The approved templates of a connection (those a campaign may send).
pub(super) async fn approved(s: &Services, p: &Principal, connection: Uuid) -> Vec<Template> {
    templates::list(
        s,
        p,
        TemplateListQuery {
            connection_id: Some(connection),
            status: Some("APPROVED".into()),
            limit: Some(200),
            ..TemplateListQuery::default()
        },
    )
    .await
    .map(|page| page.data)
    .unwrap_or_default()
}

/// The form page for `form`: the number picked (the first when none or an unknown one), its
/// approved templates, and one row per variable of the template picked. Returns the chosen
/// template too.
pub(super) async fn new_page(
    s: &Services,
    viewer: &Viewer,
    mut form: CampaignForm,
    editing: Option<Uuid>,
) -> Result<(NewPage, Option<Template>), AppError> {
    let p = &viewer.principal;
    p.require(Permission::CampaignsWrite)?;
    let connections = connection_choices(s, p).await;
    if !connections
        .iter()
        .any(|c| c.value == form.connection_id.trim())
    {
        form.connection_id = connections
            .first()
            .map(|c| c.value.clone())
            .unwrap_or_default();
    }
    let list = match Uuid::parse_str(form.connection_id.trim()) {
        Ok(c) => approved(s, p, c).await,
        Err(_) => Vec::new(),
    };
    let chosen = list
        .iter()
        .find(|t| t.id.to_string() == form.template.trim())
        .or_else(|| list.first())
        .cloned();
    if let Some(t) = &chosen {
        form.template = t.id.to_string();
    }
    let header = chosen
        .as_ref()
        .map_or(0, |t| usize::try_from(t.header_params).unwrap_or(0));
    let wanted = chosen
        .as_ref()
        .map_or(0, |t| header + usize::try_from(t.body_params).unwrap_or(0));
    let slots = (1..=wanted)
        .map(|n| ParamSlot {
            n,
            label: if n <= header {
                format!("Header {{{{{n}}}}}")
            } else {
                format!("Body {{{{{}}}}}", n - header)
            },
            row: form.params.get(n - 1).cloned().unwrap_or(ParamRow {
                kind: "literal".into(),
                ..ParamRow::default()
            }),
        })
        .collect();
    let templates = list
        .iter()
        .map(|t| {
            let vars = t.header_params + t.body_params;
            Choice {
                value: t.id.to_string(),
                label: format!(
                    "{} ({}) · {vars} {}",
                    t.name,
                    t.language,
                    if vars == 1 { "variable" } else { "variables" }
                ),
            }
        })
        .collect();
    Ok((
        NewPage {
            chrome: Chrome::new(
                s,
                viewer,
                if editing.is_some() {
                    "Edit campaign"
                } else {
                    "New campaign"
                },
                Nav::Campaigns,
            ),
            editing,
            form,
            connections,
            templates,
            slots,
            kinds: PARAM_KINDS
                .iter()
                .map(|(v, l)| Choice {
                    value: (*v).to_owned(),
                    label: (*l).to_owned(),
                })
                .collect(),
            error: String::new(),
            fields: BTreeMap::new(),
        },
        chosen,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NewParams {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    template: String,
}

pub(super) async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<NewParams>,
) -> Response {
    let form = CampaignForm {
        connection_id: params.connection,
        template: params.template,
        ..CampaignForm::default()
    };
    match new_page(&state.services, &viewer, form, None).await {
        Ok((page, _)) => render(&page),
        Err(e) => app_error(e),
    }
}

/// The campaign id of a path, or the `404` page another tenant's campaign gets.
pub(super) fn campaign_id(raw: &str) -> Result<CampaignId, Response> {
    Uuid::parse_str(raw.trim())
        .map(CampaignId::from_uuid)
        .map_err(|_| app_error(AppError::NotFound("campaign")))
}

/// The refusal of an edit of a campaign past draft or scheduled, as the API says it.
pub(super) fn not_editable(status: CampaignStatus) -> AppError {
    AppError::conflict(
        palisade_core::error::code::CAMPAIGN_NOT_EDITABLE,
        format!(
            "a {} campaign cannot be edited: only a draft or scheduled campaign can",
            status.as_str()
        ),
    )
}

impl CampaignForm {
    /// The form filled from a stored campaign; `template`: the id of its template among the
    /// number's approved ones (empty when it is not one of them any more).
    fn from_campaign(d: &campaigns::CampaignDetail, template: String) -> CampaignForm {
        let c = &d.campaign;
        let params = c
            .parameters
            .iter()
            .map(|p| match p {
                TemplateParameter::ContactField { field, fallback } => {
                    let f = field.as_string();
                    let (kind, value) = match f.strip_prefix("custom_attributes.") {
                        Some(key) => ("custom".to_owned(), key.to_owned()),
                        None => (f, String::new()),
                    };
                    ParamRow {
                        kind,
                        value,
                        fallback: fallback.clone().unwrap_or_default(),
                    }
                }
                TemplateParameter::Literal(v) => ParamRow {
                    kind: "literal".into(),
                    value: v.clone(),
                    fallback: String::new(),
                },
                TemplateParameter::OrderField(f) => ParamRow {
                    kind: "literal".into(),
                    value: f.as_str().to_owned(),
                    fallback: String::new(),
                },
            })
            .collect();
        // The form's time is a `datetime-local` value in UTC.
        let scheduled_at = c
            .scheduled_at
            .map(|t| {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            })
            .unwrap_or_default();
        CampaignForm {
            csrf: String::new(),
            step: String::new(),
            name: c.name.clone(),
            connection_id: c.connection_id.to_string(),
            template,
            params,
            tags: c.audience.tags.join(", "),
            exclude_tags: c.audience.exclude_tags.join(", "),
            contact_ids: c
                .audience
                .contact_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            scheduled_at,
        }
    }
}

/// `GET /campaigns/{id}/edit`: the form filled from a draft or scheduled campaign.
pub(super) async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let id = match campaign_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    if let Err(e) = p.require(Permission::CampaignsWrite) {
        return app_error(e);
    }
    let d = match campaigns::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let c = &d.campaign;
    if !c.status.editable() {
        return app_error(not_editable(c.status));
    }
    let template = approved(s, p, c.connection_id.as_uuid())
        .await
        .into_iter()
        .find(|t| t.name == c.template_name && t.language == c.template_language)
        .map(|t| t.id.to_string())
        .unwrap_or_default();
    let form = CampaignForm::from_campaign(&d, template);
    match new_page(s, &viewer, form, Some(id.as_uuid())).await {
        Ok((page, _)) => render(&page),
        Err(e) => app_error(e),
    }
}

/// `POST /campaigns/{id}/edit`: saves the form with `campaigns::update`.
pub(super) async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let id = match campaign_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    submit(&state, &viewer, &meta, &headers, form, Some(id)).await
}

/// The form field that shows a core field error (`audience.tags` → `tags`).
pub(super) fn form_field(api: &str) -> &str {
    match api {
        "template.name" | "template.language" | "template" => "template",
        "audience.tags" | "audience" => "tags",
        "audience.exclude_tags" => "exclude_tags",
        "audience.contact_ids" => "contact_ids",
        other => other,
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    submit(&state, &viewer, &meta, &headers, form, None).await
}

/// The new campaign form (`editing` `None`: `campaigns::create`) or the edit form of
/// `editing` (`campaigns::update`), posted: the campaign's page, or the form again with the
/// refusals at their fields.
pub(super) async fn submit(
    state: &AppState,
    viewer: &Viewer,
    meta: &palisade_core::auth::RequestMeta,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
    editing: Option<CampaignId>,
) -> Response {
    let s = &state.services;
    let f = match form {
        Ok(Form(pairs)) => CampaignForm::from_pairs(pairs),
        Err(e) => return bad_form(e),
    };
    if let Err(r) = check_change(s, viewer, headers, &f.csrf) {
        return r;
    }
    let typed_connection = f.connection_id.trim().to_owned();
    let typed_template = f.template.trim().to_owned();
    let (mut page, chosen) =
        match new_page(s, viewer, f.clone(), editing.map(|i| i.as_uuid())).await {
            Ok(x) => x,
            Err(e) => return app_error(e),
        };
    // "Choose template": the same form with the rows of the template picked; nothing sent.
    if f.step == "choose" {
        return render(&page);
    }
    // The number and template must be among those the page offered (the number's approved
    // templates); otherwise the core is asked with what cannot match, so that every other
    // field's mistake is said at once.
    let mut own: BTreeMap<String, String> = BTreeMap::new();
    if page.form.connection_id != typed_connection {
        own.insert(
            "connection_id".into(),
            "choose one of your WhatsApp numbers".into(),
        );
    }
    let template = chosen.filter(|t| t.id.to_string() == typed_template);
    if template.is_none() {
        own.insert(
            "template".into(),
            "choose an approved template of this number".into(),
        );
    }
    let new = NewCampaign {
        name: f.name.clone(),
        connection_id: Uuid::parse_str(&typed_connection).unwrap_or_else(|_| Uuid::nil()),
        template_name: template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        template_language: template
            .as_ref()
            .map(|t| t.language.clone())
            .unwrap_or_default(),
        parameters: f.parameters(),
        audience: Some(f.audience()),
        scheduled_at: f.scheduled_at(),
    };
    let result = match editing {
        None => campaigns::create(s, &viewer.principal, meta, new).await,
        // Every field, so that an emptied time clears the schedule.
        Some(id) => {
            let patch = CampaignPatch {
                name: Some(new.name),
                connection_id: Some(new.connection_id),
                template_name: Some(new.template_name),
                template_language: Some(new.template_language),
                parameters: Some(new.parameters),
                audience: new.audience,
                scheduled_at: Some(new.scheduled_at),
            };
            campaigns::update(s, &viewer.principal, meta, id, patch).await
        }
    };
    let e = match result {
        Ok(d) => {
            return crate::console::auth_pages::see_other(&format!("/campaigns/{}", d.campaign.id))
        }
        Err(e) => e,
    };
    // Refusals the person can act on come back on the form; the rest are pages.
    let on_form = match &e {
        AppError::Validation { .. } | AppError::Unprocessable { .. } => true,
        AppError::NotFound(what) => *what == "WhatsApp connection",
        _ => false,
    };
    if !on_form {
        return app_error(e);
    }
    let c = crate::error::classify(e);
    let mut fields = own.clone();
    let mut add = |slot: &str, message: &str| {
        let text = fields.entry(slot.to_owned()).or_default();
        if !text.is_empty() && !text.contains(message) {
            text.push(' ');
        }
        if !text.contains(message) {
            text.push_str(message);
        }
    };
    for (k, v) in c.fields.clone().unwrap_or_default() {
        let slot = form_field(&k);
        // The console's own words for a template or number it did not offer.
        if own.contains_key(slot) {
            continue;
        }
        add(slot, &v.join(" "));
    }
    match c.code {
        palisade_core::error::code::TEMPLATE_PARAMETER_MISMATCH => add("parameters", &c.message),
        code if code.starts_with("template_") && !own.contains_key("template") => {
            add("template", &c.message);
        }
        palisade_core::error::code::NOT_FOUND if !own.contains_key("connection_id") => {
            add("connection_id", "choose one of your WhatsApp numbers");
        }
        _ => {}
    }
    let not = if editing.is_some() {
        "The campaign was not saved"
    } else {
        "The campaign was not created"
    };
    page.error = if fields.is_empty() {
        format!("{not}: {}", c.message)
    } else {
        format!("{not}: check the fields marked below.")
    };
    page.fields = fields;
    render_with(c.status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_s_parameters_audience_and_time() {
        let f = CampaignForm::from_pairs(vec![
            ("param_kind_2".into(), "literal".into()),
            ("param_value_2".into(), "SPRING-24".into()),
            ("param_kind_1".into(), "name".into()),
            ("param_fallback_1".into(), " friend ".into()),
            ("param_kind_3".into(), "custom".into()),
            ("param_value_3".into(), "city".into()),
            ("param_kind_99".into(), "literal".into()),
            ("tags".into(), "vip, lead\n".into()),
            ("contact_ids".into(), "a\nb, c".into()),
            ("scheduled_at".into(), "2030-01-31T09:00".into()),
        ]);
        assert_eq!(
            f.parameters(),
            json!([
                {"type": "contact_field", "field": "name", "fallback": "friend"},
                {"type": "literal", "value": "SPRING-24"},
                {"type": "contact_field", "field": "custom_attributes.city"},
            ])
        );
        assert_eq!(
            f.audience(),
            json!({"tags": ["vip", "lead"], "exclude_tags": [], "contact_ids": ["a", "b", "c"]})
        );
        assert_eq!(f.scheduled_at().as_deref(), Some("2030-01-31T09:00:00Z"));
        let typed = CampaignForm {
            scheduled_at: "tomorrow".into(),
            ..CampaignForm::default()
        };
        assert_eq!(typed.scheduled_at().as_deref(), Some("tomorrow"));
        assert_eq!(CampaignForm::default().scheduled_at(), None);
    }
}
