//! Contacts and inbound messages: STOP opts a contact out and START lifts it; erasing a
//! contact removes its conversations and queued sends.

use super::{contact_by_phone, customer_says, customer_sends};
use crate::support::{audit_count, whatsapp_fixture};
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::json;

both!(
    inbound_stop_opts_out_and_start_lifts_it,
    erasing_a_contact_removes_its_conversations_and_queued_sends,
);

async fn inbound_stop_opts_out_and_start_lifts_it(db: Db) {
    let s = whatsapp_fixture(db).await;
    customer_says(&s, "447700900123", "Hello there").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(c["opted_out"], false);
    assert_eq!(c["marketing_opt_in"], false);
    // A sentence containing the word is not the keyword.
    customer_says(&s, "447700900123", "please don't stop the offers").await;
    assert_eq!(
        contact_by_phone(&s, "+447700900123").await["opted_out"],
        false
    );
    customer_says(&s, "447700900123", "  Stop! ").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(c["opted_out"], true, "{c}");
    assert_eq!(c["opt_out_source"], "keyword");
    assert_eq!(c["marketing_opt_in"], false);
    let at = time::OffsetDateTime::parse(
        c["opted_out_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let drift = (time::OffsetDateTime::now_utc() - at).whole_seconds().abs();
    assert!(drift < 120, "the opt-out time is the message's: {at}");
    assert_eq!(audit_count(&s.app, "contact.opted_out").await, 1);
    // A second STOP changes nothing more.
    customer_says(&s, "447700900123", "STOP").await;
    let again = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(again["opted_out_at"], c["opted_out_at"]);
    assert_eq!(audit_count(&s.app, "contact.opted_out").await, 1);
    // A localized keyword works for another contact; an ordinary message leaves a third alone.
    customer_says(&s, "33612345678", "arrêt").await;
    assert_eq!(
        contact_by_phone(&s, "+33612345678").await["opted_out"],
        true
    );
    customer_says(&s, "34612345678", "hola").await;
    assert_eq!(
        contact_by_phone(&s, "+34612345678").await["opted_out"],
        false
    );
    // Meta's "Stop promotions" quick-reply button on a marketing template is a keyword too.
    customer_sends(
        &s,
        "4915112345678",
        json!({"type": "button", "button": {"text": "Stop promotions", "payload": "promo-off"}}),
    )
    .await;
    let de = contact_by_phone(&s, "+4915112345678").await;
    assert_eq!(de["opt_out_source"], "keyword", "{de}");
    // START lifts the opt-out.
    customer_says(&s, "447700900123", "start").await;
    let back = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(back["opted_out"], false, "{back}");
    assert_eq!(back["marketing_opt_in"], true);
    assert!(back["opt_out_source"].is_null() && back["opted_in_at"].is_string());
    assert_eq!(audit_count(&s.app, "contact.opted_in").await, 1);
    // START from someone who never opted out creates no consent.
    customer_says(&s, "34612345678", "START").await;
    assert_eq!(
        contact_by_phone(&s, "+34612345678").await["marketing_opt_in"],
        false
    );
    // The WhatsApp id and profile name belong to the number: the same number written
    // differently keeps them, a new number drops them (replies must not go to the old one).
    let es = contact_by_phone(&s, "+34612345678").await;
    assert_eq!(es["wa_id"], "34612345678");
    let path = format!("/api/v1/contacts/{}", es["id"].as_str().unwrap());
    let t = &s.owner.access_token;
    let same = s
        .app
        .patch(&path, t, json!({"phone": "+34 612 345 678"}))
        .await;
    assert_eq!(same.body["wa_id"], "34612345678");
    assert_eq!(same.body["wa_profile_name"], "Customer");
    let moved = s
        .app
        .patch(&path, t, json!({"phone": "+34612345679"}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert!(moved.body["wa_id"].is_null() && moved.body["wa_profile_name"].is_null());
    // The messages themselves are stored like any other.
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM messages WHERE text = 'STOP'")
            .await
            .unwrap(),
        1
    );
}

async fn erasing_a_contact_removes_its_conversations_and_queued_sends(db: Db) {
    let s = whatsapp_fixture(db).await;
    let t = &s.owner.access_token;
    customer_says(&s, "447700900123", "Hi, where is my order?").await;
    customer_says(&s, "15550100199", "Someone else").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    let id = c["id"].as_str().unwrap();
    let convs = s.app.get("/api/v1/conversations", t).await;
    let conv = convs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["contact_id"] == id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(t),
            json!({"type": "text", "text": {"body": "On its way"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let note = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            Some(t),
            json!({"body": "VIP"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);

    let del = s.app.delete(&format!("/api/v1/contacts/{id}"), t).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let count = |sql: &'static str| {
        let s = &s;
        async move { s.app.db.count_as_owner(sql).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM contacts").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM conversations").await, 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM messages").await,
        1,
        "only the other contact's"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM whatsapp_outbound_queue").await,
        0
    );
    assert_eq!(
        s.app
            .get(&format!("/api/v1/conversations/{conv}"), t)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let rec = s
        .app
        .get("/api/v1/audit-logs?action=contact.deleted", t)
        .await;
    let meta = &rec.body["data"][0]["metadata"];
    assert_eq!(meta["conversations"], 1);
    assert_eq!(meta["messages"], 3, "{meta}");
    // The sender carries on: nothing left to send for the erased contact, nothing fails.
    palisade_core::whatsapp::outbound::send_pending(&s.app.services)
        .await
        .unwrap();
    // The customer writing again is a new contact with a new conversation.
    customer_says(&s, "447700900123", "Hello again").await;
    let again = contact_by_phone(&s, "+447700900123").await;
    assert_ne!(again["id"], id);
}
