//! `GET /{version}/{id}`: one route for every node type, so the id alone decides whether a
//! phone number, a WABA, a media object or a template answers (as on the real Graph API).
//! `POST` and `DELETE` on the same path only touch one kind each, so they live with it:
//! [`super::templates::edit_template`] and [`super::media::delete_media`].

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::onboarding::phone_fields;
use super::{authenticate, check_version, ok, project, GResult, St, Q};
use crate::error::GraphError;
use crate::state::{lock, Media, Phone, Template};

pub(super) async fn get_object(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    let cfg = st.cfg();
    enum Found {
        Phone(Phone),
        Waba(Phone),
        Media(Media),
        Template(Template, String),
    }
    let found = {
        let inner = lock(&st.inner);
        if let Some(p) = inner.phones.get(&id) {
            Some(Found::Phone(p.clone()))
        } else if let Some(p) = inner.wabas.get(&id).and_then(|p| inner.phones.get(p)) {
            Some(Found::Waba(p.clone()))
        } else if let Some(m) = inner.media.get(&id) {
            Some(Found::Media(m.clone()))
        } else {
            inner.templates.iter().find_map(|(waba, list)| {
                list.iter()
                    .find(|t| t.id == id)
                    .map(|t| Found::Template(t.clone(), waba.clone()))
            })
        }
    };
    let fields = q.get("fields");
    match found {
        None => Err(GraphError::unknown_object("get", &id)),
        Some(Found::Phone(phone)) => {
            if phone.id != owner {
                return Err(GraphError::permission());
            }
            let full = phone_fields(&phone, cfg.throughput_per_second);
            let defaults = [
                "verified_name",
                "code_verification_status",
                "display_phone_number",
                "quality_rating",
                "platform_type",
                "throughput",
            ];
            let body = project(&full, fields, &defaults, "WhatsAppBusinessPhoneNumber")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
        Some(Found::Waba(phone)) => {
            if phone.id != owner {
                return Err(GraphError::permission());
            }
            let full = json!({
                "id": phone.waba_id,
                "name": phone.verified_name,
                "currency": "USD",
                "timezone_id": "1",
                "message_template_namespace": format!("sim_{}", phone.waba_id),
                "account_review_status": "APPROVED",
            });
            let full = full.as_object().cloned().unwrap_or_default();
            let defaults = [
                "name",
                "currency",
                "timezone_id",
                "message_template_namespace",
            ];
            let body = project(&full, fields, &defaults, "WhatsAppBusinessAccount")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
        Some(Found::Media(media)) => {
            if media.phone_id != owner {
                return Err(GraphError::permission());
            }
            if q.get("phone_number_id")
                .is_some_and(|p| *p != media.phone_id)
            {
                return Err(GraphError::invalid_parameter(
                    "The media does not belong to phone_number_id.",
                ));
            }
            Ok(ok(
                &version,
                StatusCode::OK,
                json!({
                    "messaging_product": "whatsapp",
                    "url": st.media_url(&media.id),
                    "mime_type": media.mime_type,
                    "sha256": media.sha256_hex,
                    "file_size": media.bytes.len(),
                    "id": media.id,
                }),
            ))
        }
        Some(Found::Template(t, waba)) => {
            let allowed = lock(&st.inner).wabas.get(&waba) == Some(&owner);
            if !allowed {
                return Err(GraphError::permission());
            }
            let full = t.to_json().as_object().cloned().unwrap_or_default();
            let all: Vec<&str> = full.keys().map(String::as_str).collect();
            let body = project(&full, fields, &all, "WhatsAppMessageTemplate")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
    }
}
