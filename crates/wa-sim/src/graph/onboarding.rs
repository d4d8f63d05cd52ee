//! The calls Palisade makes while connecting a number: the WABA's phone numbers, its subscribed
//! apps and `register`. They only check ownership and shape; the simulator has no apps to
//! subscribe (webhooks are routed by the control API's subscribe call).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::{cursor, ok, own_phone, own_waba, parse_json, project, GResult, St, Q};
use crate::error::GraphError;
use crate::state::Phone;

pub(super) fn phone_fields(phone: &Phone, throughput: u32) -> Map<String, Value> {
    let level = if throughput >= 1000 {
        "HIGH"
    } else {
        "STANDARD"
    };
    let v = json!({
        "id": phone.id,
        "display_phone_number": phone.display_phone_number,
        "verified_name": phone.verified_name,
        "quality_rating": "GREEN",
        "throughput": {"level": level},
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "name_status": "APPROVED",
        "status": "CONNECTED",
        "account_mode": "LIVE",
        "is_official_business_account": false,
        "whatsapp_business_manager_messaging_limit": "TIER_250",
        "messaging_limit_tier": "TIER_250",
    });
    v.as_object().cloned().unwrap_or_default()
}

/// `GET /{version}/{waba_id}/phone_numbers`: the WABA's (single) number.
pub(super) async fn list_phone_numbers(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    let owner = own_waba(&st, &version, &waba, "get", &headers, &q)?;
    let phone = st
        .phone(&owner)
        .ok_or_else(|| GraphError::unknown_object("get", &waba))?;
    let full = phone_fields(&phone, st.cfg().throughput_per_second);
    let defaults = [
        "verified_name",
        "code_verification_status",
        "display_phone_number",
        "quality_rating",
        "platform_type",
        "throughput",
    ];
    let item = project(
        &full,
        q.get("fields"),
        &defaults,
        "WhatsAppBusinessPhoneNumber",
    )?;
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"data": [item], "paging": {"cursors": {"before": cursor(0), "after": cursor(0)}}}),
    ))
}

/// `GET /{version}/{waba_id}/subscribed_apps`.
pub(super) async fn subscribed_apps(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    own_waba(&st, &version, &waba, "get", &headers, &q)?;
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"data": [{"whatsapp_business_api_data": {"id": "1", "name": "Palisade Sim App"}}]}),
    ))
}

/// `POST /{version}/{waba_id}/subscribed_apps` (webhooks themselves are routed by the control
/// API's subscribe call).
pub(super) async fn subscribe_app(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    own_waba(&st, &version, &waba, "post", &headers, &q)?;
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

/// `POST /{version}/{phone_number_id}/register {messaging_product, pin}`.
pub(super) async fn register(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    own_phone(&st, &version, &id, "post", &headers, &q)?;
    let b = parse_json(&body)?;
    if b.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(GraphError::invalid_parameter(
            "Param messaging_product must be 'whatsapp'.",
        ));
    }
    let pin_ok = b
        .get("pin")
        .and_then(Value::as_str)
        .is_some_and(|p| p.len() == 6 && p.chars().all(|c| c.is_ascii_digit()));
    if !pin_ok {
        return Err(GraphError::invalid_parameter(
            "Param pin must be a 6-digit string.",
        ));
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}
