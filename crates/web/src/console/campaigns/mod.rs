//! `/campaigns` (the broadcast campaigns, filtered by status), `/campaigns/new` (a draft from
//! a form) and `/campaigns/{id}` (status, counts, failures, recipients and the actions).
//!
//! Reading calls the `palisade_core::campaigns` use cases the JSON routes call
//! (`campaigns.read`: admins and agents; another tenant's campaign is a `404` page). Every
//! change is a plain form the console answers itself, so the pages work without script: the
//! new campaign form (`POST /campaigns/new`, calling `campaigns::create`) and the actions
//! (`POST /campaigns/{id}/start|pause|resume|cancel|delete`, calling `campaigns::act` and
//! `campaigns::delete`), each after the checks the API makes for a change sent with the
//! session cookie (`forms::check_change`: same origin, the session's CSRF token, no read-only
//! impersonation). Permissions are the core's: an agent sees no write control, and a form
//! sent anyway is refused with the API's `403`.
//!
//! The new campaign form asks for one parameter row per variable of the chosen template
//! (header variables first, then the body's, as the core counts them). Without script the
//! rows follow the template through a **Choose template** button (the same form, posted with
//! `step=choose`: it re-renders, nothing is created).
//!
//! A draft or scheduled campaign is edited on the same form at `/campaigns/{id}/edit`, filled
//! from the campaign (its template found among the number's approved ones by name and
//! language) and saved with `campaigns::update` (every field sent, so an emptied time clears
//! the schedule); a campaign past that is refused with the API's `409`.

mod form;
mod list;
mod show;

use super::forms::{bad_form, check_change, ChangeForm, WithCsrf};
use super::page::{
    app_error, bad_query, connection_choices, contact_label, humanise, label_map, named_choices,
    non_blank, query_cursor, render, render_with, Choice, Chrome, Listing, Nav, PageQuery,
};
use super::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template as Askama;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use palisade_core::auth::Principal;
use palisade_core::campaigns::view::CampaignCountsView;
use palisade_core::campaigns::{
    self, Action, CampaignListQuery, CampaignPatch, NewCampaign, RecipientQuery, RECIPIENT_STATUSES,
};
use palisade_core::templates::{self, TemplateListQuery};
use palisade_core::{AppError, Services};
use palisade_domain::integration::TemplateParameter;
use palisade_domain::{CampaignId, CampaignStatus, ContactId, Permission, Template};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns", get(list::list))
        .route("/campaigns/new", get(form::new).post(form::create))
        .route("/campaigns/{id}", get(show::show))
        .route("/campaigns/{id}/edit", get(form::edit).post(form::save))
        .route("/campaigns/{id}/{action}", post(show::act))
}

/// The badge class of a campaign status: running green, waiting amber, cancelled red, the
/// rest grey.
fn status_badge(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Running => "badge-open",
        CampaignStatus::Scheduled | CampaignStatus::Paused => "badge-pending",
        CampaignStatus::Cancelled => "badge-danger",
        CampaignStatus::Draft | CampaignStatus::Completed => "badge-resolved",
    }
}

/// The badge class of a recipient status.
fn recipient_badge(status: &str) -> &'static str {
    match status {
        "delivered" | "read" => "badge-open",
        "queued" | "sent" => "badge-pending",
        "failed" => "badge-danger",
        _ => "badge-resolved",
    }
}

/// `1234567` → `1,234,567` (as the analytics figures).
fn thousands(n: i64) -> String {
    super::chart::group_digits(i128::from(n))
}

/// A parameter as a sentence: `Text "SPRING-24"`, `Contact's name, else "friend"`.
fn describe(p: &TemplateParameter) -> String {
    match p {
        TemplateParameter::Literal(v) => format!("Text \u{201c}{v}\u{201d}"),
        TemplateParameter::ContactField { field, fallback } => {
            let f = field.as_string();
            let what = match f.strip_prefix("custom_attributes.") {
                Some(key) => format!("Contact's custom attribute {key}"),
                None => format!("Contact's {f}"),
            };
            match fallback {
                Some(fb) => format!("{what}, else \u{201c}{fb}\u{201d}"),
                None => what,
            }
        }
        TemplateParameter::OrderField(f) => format!("Order {}", f.as_str()),
    }
}
