//! `POST /{version}/{phone_number_id}/messages`: mark-as-read and every send type. Validation
//! of the body is in [`crate::validate`]; here the number's state decides: media ownership, the
//! template's approval, the throughput and pair rate limits, and the customer service window.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{ok, own_phone, parse_json, GResult, St, Q};
use crate::error::{GraphError, WINDOW_DETAILS, WINDOW_TITLE};
use crate::ids;
use crate::state::{lock, AppState, Outbound};
use crate::validate::{self, Request};
use crate::webhook;

pub(super) async fn send(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    let (major, phone) = own_phone(&st, &version, &id, "post", &headers, &q)?;
    let body = parse_json(&body)?;
    let s = match validate::validate(&body)? {
        Request::MarkRead { message_id } => {
            let known = lock(&st.inner)
                .inbound_ids
                .contains(&(phone.id.clone(), message_id.clone()));
            if !known {
                return Err(GraphError::invalid_parameter(format!(
                    "Param message_id '{message_id}' is not a message received by this number."
                )));
            }
            return Ok(ok(&version, StatusCode::OK, json!({"success": true})));
        }
        Request::Send(s) => s,
    };
    let cfg = st.cfg();
    let (wamid, fail_window) = {
        let mut inner = lock(&st.inner);
        if let Some(media_id) = body
            .get(&s.kind)
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
        {
            let usable = inner
                .media
                .get(media_id)
                .is_some_and(|m| m.phone_id == phone.id);
            if !usable {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {}['id'] '{media_id}' is not a valid media id of this number.",
                    s.kind
                )));
            }
        }
        let template = if s.kind == "template" {
            let list = inner
                .templates
                .get(&phone.waba_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Some(validate::check_template(list, &body)?)
        } else {
            None
        };
        if template.is_some() {
            if let Some(code) = inner.refusals.get(&s.wa_id) {
                return Err(GraphError::refused(*code));
            }
        }
        AppState::take_throughput(&mut inner, &phone.id, cfg.throughput_per_second, true)?;
        AppState::take_pair(
            &mut inner,
            &phone.id,
            &s.wa_id,
            cfg.pair_burst,
            cfg.pair_interval_ms,
        )?;
        let in_window = AppState::window_open(&inner, &phone.id, &s.wa_id, cfg.window_ms);
        let mut fail_window = false;
        if template.is_none() && !in_window {
            if cfg.accept_then_fail {
                fail_window = true;
            } else {
                return Err(GraphError::window_closed());
            }
        }
        let (category, free) = match &template {
            Some(t) => {
                let category = t.category.to_ascii_lowercase();
                let free = category == "utility" && in_window;
                (category, free)
            }
            None => ("service".to_owned(), true),
        };
        let wamid = ids::wamid(&s.wa_id);
        let list = inner.outbound.entry(phone.id.clone()).or_default();
        list.push(Outbound {
            wamid: wamid.clone(),
            to: s.wa_id.clone(),
            kind: s.kind.clone(),
            body: body.clone(),
            status: "accepted".into(),
            version: major,
            category,
            free,
            billed_after_sent: false,
            at_ms: ids::unix_millis(),
        });
        let idx = list.len().saturating_sub(1);
        inner
            .outbound_index
            .insert(wamid.clone(), (phone.id.clone(), idx));
        (wamid, fail_window)
    };
    if fail_window {
        let errors = json!([GraphError::webhook_item(
            131047,
            WINDOW_TITLE,
            WINDOW_DETAILS
        )]);
        webhook::spawn_failure(&st, wamid.clone(), errors);
    } else if cfg.auto_status {
        webhook::spawn_progression(&st, wamid.clone());
    }
    if st.cfg().hold_send_answers {
        // Counted down on drop too: a client that dies while it waits drops this request.
        struct Waiting<'a>(&'a std::sync::atomic::AtomicU64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        st.send_answers_waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _waiting = Waiting(&st.send_answers_waiting);
        while st.cfg().hold_send_answers && !*st.shutdown.borrow() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": s.input, "wa_id": s.wa_id}],
            "messages": [{"id": wamid}],
        }),
    ))
}
