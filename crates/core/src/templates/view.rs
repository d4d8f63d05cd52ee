//! The one shape a template leaves the server in: the REST answers and the `template.*`
//! webhook events' data.

use palisade_domain::{rfc3339, Template};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TemplateParameters)]
pub struct TemplateParametersView {
    /// Parameters a send gives the header (its `{{1}}`, or one for a media header).
    pub header: i64,
    /// Parameters a send gives the body (`{{1}}` … `{{n}}`).
    pub body: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TemplateResponse)]
pub struct TemplateView {
    pub id: Uuid,
    /// The WhatsApp connection whose business account holds it.
    pub connection_id: Uuid,
    pub waba_id: String,
    /// Meta's id of the template.
    pub meta_id: String,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION` (or a category Meta added since).
    pub category: String,
    /// Meta's status: `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, `IN_APPEAL`, or
    /// another Meta added. Only `APPROVED` templates can be sent.
    pub status: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`, once Meta rated it.
    pub quality_score: Option<String>,
    /// Why Meta rejected it, when it did.
    pub rejection_reason: Option<String>,
    /// Meta's components (HEADER, BODY, FOOTER, BUTTONS).
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    pub parameters: TemplateParametersView,
    /// When it was last read from Meta; `null` until Meta was heard from.
    #[schema(format = DateTime)]
    pub synced_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Template> for TemplateView {
    fn from(t: &Template) -> Self {
        TemplateView {
            id: t.id.as_uuid(),
            connection_id: t.connection_id.as_uuid(),
            waba_id: t.waba_id.clone(),
            meta_id: t.meta_id.clone(),
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            quality_score: t.quality_score.clone(),
            rejection_reason: t.rejection_reason.clone(),
            components: t.components.clone(),
            parameters: TemplateParametersView {
                header: t.header_params,
                body: t.body_params,
            },
            synced_at: t.synced_at.map(rfc3339),
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

/// `POST /api/v1/whatsapp/templates/sync`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TemplateSyncResponse)]
pub struct TemplateSyncView {
    pub connection_id: Uuid,
    /// Templates Meta listed (all pages).
    pub fetched: usize,
    pub created: usize,
    pub updated: usize,
    /// Templates stored here that Meta no longer has (deleted here).
    pub removed: usize,
}

/// `template.deleted`'s data.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TemplateDeleted {
    pub template: TemplateView,
    pub deleted: bool,
}
