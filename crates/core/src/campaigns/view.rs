//! The shapes campaigns leave the server in: the REST answers and the `campaign.*` webhook
//! events' data.

use palisade_domain::integration::TemplateParameter;
use palisade_domain::rfc3339;
use palisade_store::campaigns::{first_error, Campaign, Counts, Recipient};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CampaignTemplateView {
    pub name: String,
    pub language: String,
}

/// Every targeted recipient is in exactly one of skipped, queued, sent, delivered, read and
/// failed (its latest state); `replied` counts the recipients who wrote after the campaign's
/// message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CampaignCountsView {
    pub targeted: i64,
    pub skipped: i64,
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub replied: i64,
}

impl From<&Counts> for CampaignCountsView {
    fn from(c: &Counts) -> Self {
        CampaignCountsView {
            targeted: c.targeted,
            skipped: c.skipped,
            queued: c.queued,
            sent: c.sent,
            delivered: c.delivered,
            read: c.read,
            failed: c.failed,
            replied: c.replied,
        }
    }
}

/// Failed recipients by Meta's error code (0 for Palisade's own: `outcome_unknown`,
/// `contact_opted_out`, …) and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CampaignFailureView {
    pub code: i64,
    pub title: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = CampaignResponse)]
pub struct CampaignView {
    pub id: Uuid,
    pub name: String,
    pub connection_id: Uuid,
    pub template: CampaignTemplateView,
    /// One per template variable, in order: `{type: literal, value}` or `{type:
    /// contact_field, field, fallback?}`.
    #[schema(value_type = Vec<Object>)]
    pub parameters: serde_json::Value,
    /// `{tags, contact_ids, exclude_tags}`.
    #[schema(value_type = Object)]
    pub audience: serde_json::Value,
    /// draft, scheduled, running, paused, completed or cancelled.
    #[schema(value_type = CampaignStatusSchema)]
    pub status: String,
    #[schema(format = DateTime)]
    pub scheduled_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    pub created_by: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// On `GET /campaigns/{id}`, the answers of its actions and each campaign of
    /// `GET /campaigns`; not in events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<CampaignCountsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<CampaignFailureView>>,
}

/// draft, scheduled, running, paused, completed or cancelled.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CampaignStatus)]
pub enum CampaignStatusSchema {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl From<&Campaign> for CampaignView {
    fn from(c: &Campaign) -> Self {
        CampaignView {
            id: c.id.as_uuid(),
            name: c.name.clone(),
            connection_id: c.connection_id.as_uuid(),
            template: CampaignTemplateView {
                name: c.template_name.clone(),
                language: c.template_language.clone(),
            },
            parameters: serde_json::Value::Array(
                c.parameters
                    .iter()
                    .map(TemplateParameter::to_json)
                    .collect(),
            ),
            audience: c.audience.to_json(),
            status: c.status.as_str().to_owned(),
            scheduled_at: c.scheduled_at.map(rfc3339),
            started_at: c.started_at.map(rfc3339),
            completed_at: c.completed_at.map(rfc3339),
            created_by: c.created_by.map(|u| u.as_uuid()),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            counts: None,
            failures: None,
        }
    }
}

/// A campaign with its counts and failures.
#[derive(Debug, Clone)]
pub struct CampaignDetail {
    pub campaign: Campaign,
    pub counts: Counts,
    pub failures: Vec<(i64, String, i64)>,
}

impl From<&CampaignDetail> for CampaignView {
    fn from(d: &CampaignDetail) -> Self {
        let mut v = CampaignView::from(&d.campaign);
        v.counts = Some(CampaignCountsView::from(&d.counts));
        v.failures = Some(
            d.failures
                .iter()
                .map(|(code, title, count)| CampaignFailureView {
                    code: *code,
                    title: title.clone(),
                    count: *count,
                })
                .collect(),
        );
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecipientErrorView {
    pub code: i64,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CampaignRecipientResponse)]
pub struct RecipientView {
    pub contact_id: Uuid,
    /// skipped, queued, sent, delivered, read or failed.
    pub status: String,
    /// Why a skipped recipient was not sent the campaign: `opted_out`,
    /// `no_marketing_consent`, `missing_parameter`, `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RecipientErrorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Recipient> for RecipientView {
    fn from(r: &Recipient) -> Self {
        RecipientView {
            contact_id: r.contact_id.as_uuid(),
            status: r.status.clone(),
            skip_reason: r.skip_reason.clone(),
            error: (r.status == "failed").then(|| {
                let (code, title) = first_error(r.error.as_ref());
                RecipientErrorView { code, title }
            }),
            wamid: r.wamid.clone(),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// The data of `campaign.deleted`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignDeleted {
    #[serde(flatten)]
    pub campaign: CampaignView,
    pub deleted: bool,
}
