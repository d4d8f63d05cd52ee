//! Consent keywords in inbound messages: which messages are keywords, and applying them in the
//! transaction that stores the messages. The rule of what a keyword changes is the domain's
//! ([`palisade_domain::Consent::apply_keyword`]); this part finds the keywords, loads each contact locked, and
//! records the change (audit and `contact.updated`). Contacts created by inbound messages are
//! announced here too ([`announce_created`]).

use super::{audit_json, ContactView};
use crate::audit::{self, AuditEntryExt};
use crate::auth::RequestMeta;
use crate::{AppError, AppResult, Settings};
use palisade_domain::{Contact, ContactId, KeywordConsent, TenantId};
use palisade_store::contacts as store;
use palisade_store::messaging::NewMessage;
use palisade_store::{audit as audit_log, StoreError, SystemScope, Tx};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// The default opt-out keywords: the carrier-standard English set, Meta's marketing opt-out
/// button (`Stop promotions`), and the usual words in French, Spanish, Portuguese, German and
/// Italian.
pub const DEFAULT_OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP PROMOTIONS",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "ARRET",
    "ARRÊT",
    "BAJA",
    "PARAR",
    "ALTO",
    "CANCELAR",
    "STOPP",
    "ABMELDEN",
    "DISISCRIVI",
    "SAIR",
];

/// The default opt-in keywords (they only lift an opt-out; see [`apply_consent_keywords`]).
pub const DEFAULT_OPT_IN_KEYWORDS: &[&str] = &["START", "UNSTOP"];

/// How a keyword and a message are compared: trimmed, without surrounding punctuation (`Stop!`),
/// runs of whitespace as one space, upper-cased.
pub fn normalize_keyword(s: &str) -> String {
    s.trim()
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '.' | '!' | '¡' | '?' | '¿'))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The configured keywords, normalised.
#[derive(Debug, Clone, Default)]
pub struct ConsentKeywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

impl ConsentKeywords {
    pub fn from_settings(s: &Settings) -> Self {
        let norm = |list: &[String]| {
            list.iter()
                .map(|k| normalize_keyword(k))
                .filter(|k| !k.is_empty())
                .collect()
        };
        ConsentKeywords {
            opt_out: norm(&s.opt_out_keywords),
            opt_in: norm(&s.opt_in_keywords),
        }
    }

    /// What a message asks for, if anything. The whole text must be the keyword (`STOP`, `stop.`),
    /// so ordinary sentences that contain one ("please don't stop") change nothing.
    pub fn classify(&self, m: &NewMessage) -> Option<(KeywordConsent, String)> {
        for candidate in message_texts(m) {
            let n = normalize_keyword(&candidate);
            if self.opt_out.contains(&n) {
                return Some((KeywordConsent::OptOut, n));
            }
            if self.opt_in.contains(&n) {
                return Some((KeywordConsent::OptIn, n));
            }
        }
        None
    }
}

/// The texts of an inbound message a keyword may be: a text message's body, a quick-reply
/// button's text and payload (Meta's "Stop promotions" button arrives this way), an interactive
/// reply's title and id.
fn message_texts(m: &NewMessage) -> Vec<String> {
    let b = &m.body;
    let paths: &[&str] = match m.kind.as_str() {
        "text" => &["/text/body"],
        "button" => &["/button/text", "/button/payload"],
        "interactive" => &[
            "/interactive/button_reply/title",
            "/interactive/button_reply/id",
            "/interactive/list_reply/title",
            "/interactive/list_reply/id",
        ],
        _ => &[],
    };
    paths
        .iter()
        .filter_map(|p| b.pointer(p).and_then(Value::as_str))
        .filter(|s| s.len() <= 64)
        .map(str::to_owned)
        .collect()
}

fn to_store_error(e: AppError) -> StoreError {
    match e {
        AppError::Internal(e) => e
            .downcast::<StoreError>()
            .unwrap_or_else(|e| StoreError::Config(format!("{e:#}"))),
        other => StoreError::Config(other.to_string()),
    }
}

/// Queues `contact.created` for contacts that inbound messages created, in their transaction
/// (nothing is read when no endpoint of the tenant subscribes). Unlike contacts created
/// through the API, these are not audited: a customer writing in is not an action of anyone
/// in the tenant.
pub async fn announce_created(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    ids: &[Uuid],
    now: OffsetDateTime,
) -> palisade_store::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let hooks = crate::webhooks::subscribers(tx, tenant, "contact.created")
        .await
        .map_err(to_store_error)?;
    if hooks.is_empty() {
        return Ok(());
    }
    let ids: Vec<ContactId> = ids.iter().copied().map(ContactId::from).collect();
    let contacts = store::find_many(tx, tenant, &ids).await?;
    let events = contacts
        .iter()
        .map(|c| ContactView::from(c).to_json())
        .collect::<anyhow::Result<Vec<Value>>>()
        .map_err(|e| to_store_error(e.into()))?;
    crate::webhooks::enqueue_to(tx, tenant, &hooks, "contact.created", events, now)
        .await
        .map_err(to_store_error)?;
    Ok(())
}

/// Applies opt-out and opt-in keywords among newly stored inbound messages, in their
/// transaction, oldest first: the contact is opted out (source `keyword`, at the message's
/// time), or an opt-out is lifted (opted in at the message's time). An opt-in keyword does not
/// create consent for a contact that never opted out. A keyword older than the contact's
/// current state (a late redelivery) changes nothing. Each change is audited
/// (`contact.opted_out` / `contact.opted_in`, no actor) and emits `contact.updated`.
pub async fn apply_consent_keywords(
    tx: &mut Tx<SystemScope>,
    settings: &Settings,
    messages: &[NewMessage],
    now: OffsetDateTime,
) -> palisade_store::Result<()> {
    let keywords = ConsentKeywords::from_settings(settings);
    if keywords.opt_out.is_empty() && keywords.opt_in.is_empty() {
        return Ok(());
    }
    let mut hits: Vec<(&NewMessage, KeywordConsent, String)> = messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .filter_map(|m| keywords.classify(m).map(|(k, w)| (m, k, w)))
        .collect();
    hits.sort_by_key(|(m, _, _)| m.sent_at.unwrap_or(m.created_at));
    for (m, consent, keyword) in hits {
        let at = m.sent_at.unwrap_or(m.created_at);
        // Locked, so a concurrent edit through the API cannot write back the consent it read.
        let Some(c) =
            store::find_by_conversation_for_update(tx, m.tenant_id, m.conversation_id).await?
        else {
            continue;
        };
        let Some(changed) = c.consent.apply_keyword(consent, at) else {
            continue;
        };
        let Some(c) = store::write_consent(tx, m.tenant_id, c.id, changed, now).await? else {
            continue;
        };
        record_keyword_change(tx, m.tenant_id, &c, consent, &keyword, m, now)
            .await
            .map_err(to_store_error)?;
    }
    Ok(())
}

async fn record_keyword_change(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    c: &Contact,
    consent: KeywordConsent,
    keyword: &str,
    m: &NewMessage,
    now: OffsetDateTime,
) -> AppResult<()> {
    let action = match consent {
        KeywordConsent::OptOut => "contact.opted_out",
        KeywordConsent::OptIn => "contact.opted_in",
    };
    let meta = RequestMeta {
        request_id: "whatsapp-inbound".into(),
        ..RequestMeta::default()
    };
    audit_log::append(
        tx,
        &audit::entry(&meta, Some(tenant), action)
            .target("contact", c.id)
            .change(None, Some(audit_json(c)))
            .metadata(json!({ "source": "keyword", "keyword": keyword, "message_id": m.id })),
        now,
    )
    .await?;
    crate::webhooks::enqueue(
        tx,
        tenant,
        "contact.updated",
        ContactView::from(c).to_json()?,
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_messages_only() {
        let s = Settings::default();
        let k = ConsentKeywords::from_settings(&s);
        let msg = |kind: &str, body: Value| NewMessage {
            id: Uuid::now_v7(),
            tenant_id: TenantId::new(),
            conversation_id: Uuid::now_v7(),
            connection_id: Uuid::now_v7(),
            wamid: "wamid.X".into(),
            direction: "inbound",
            kind: kind.into(),
            body,
            text: None,
            status: "received",
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let text = |t: &str| msg("text", json!({"type": "text", "text": {"body": t}}));
        for t in [
            "STOP",
            " stop ",
            "Stop!",
            "arrêt",
            "ARRET.",
            "stop   promotions",
            "Baja",
        ] {
            assert_eq!(
                k.classify(&text(t)).map(|x| x.0),
                Some(KeywordConsent::OptOut),
                "{t}"
            );
        }
        for t in ["please stop", "stopped", "STOP it", "", "start me up"] {
            assert_eq!(k.classify(&text(t)), None, "{t}");
        }
        assert_eq!(
            k.classify(&text("Start")).map(|x| x.0),
            Some(KeywordConsent::OptIn)
        );
        let button = msg(
            "button",
            json!({"type": "button", "button": {"text": "Stop promotions", "payload": "x"}}),
        );
        assert_eq!(
            k.classify(&button).map(|x| x.0),
            Some(KeywordConsent::OptOut)
        );
        let image = msg(
            "image",
            json!({"type": "image", "image": {"caption": "STOP"}}),
        );
        assert_eq!(k.classify(&image), None, "captions are not keywords");
        let none = ConsentKeywords::default();
        assert_eq!(none.classify(&text("STOP")), None);
    }
}
