//! One module per feature, each with its own `router()`.

pub mod analytics;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod auth_mail;
pub mod campaigns;
pub mod contacts;
pub mod deals;
pub mod health;
pub mod integrations;
pub mod login_history;
pub mod me;
pub mod media;
pub mod messaging;
pub mod notifications;
pub mod passkeys;
pub mod platform;
pub mod security;
pub mod templates;
pub mod tenant;
pub mod tickets;
pub mod two_factor;
pub mod users;
pub mod webhooks;
pub mod whatsapp;
pub mod ws;

use serde::Serialize;
use utoipa::ToSchema;

/// A list response: `{"data": [...]}`, so lists can grow pagination fields without breaking.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T: ToSchema> {
    pub data: Vec<T>,
}

pub(crate) use palisade_domain::rfc3339;

/// For a PATCH field (`#[serde(default, deserialize_with = "super::present")]`): tells an
/// absent field (`None`: unchanged) from an explicit `null` (`Some(None)`: cleared).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}
