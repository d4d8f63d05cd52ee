//! Consent keywords in inbound messages: which messages are keywords, and applying them in the
//! transaction that stores the messages. The rule of what a keyword changes is the domain's
//! ([`palisade_domain::Consent::apply_keyword`]); this part finds the keywords, loads each contact locked, and
//! records the change (audit and `contact.updated`). Contacts created by inbound messages are
//! announced here too ([`announce_created`]).

use super::{audit_json, ContactView};
use crate::audit::AuditEntryExt;
use crate::{AppResult, Settings, UnitOfWork};
use palisade_domain::{
    Contact, ContactId, EventType, KeywordConsent, MessageDirection, MessageKind, TenantId,
};
use palisade_store::contacts as store;
use palisade_store::messages::NewMessage;
use palisade_store::SystemScope;
use serde_json::{json, Value};

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
    let paths: &[&str] = match m.kind {
        MessageKind::Text => &["/text/body"],
        MessageKind::Button => &["/button/text", "/button/payload"],
        MessageKind::Interactive => &[
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

/// Queues `contact.created` for contacts that inbound messages created, in the unit of work of
/// the inbound batch (the contacts are read only when an endpoint of the tenant subscribes).
/// Unlike contacts created through the API, these
/// are not audited: a customer writing in is not an action of anyone in the tenant.
pub async fn announce_created(
    uow: &mut UnitOfWork<'_, SystemScope>,
    tenant: TenantId,
    ids: &[ContactId],
) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    uow.set_tenant(tenant);
    let event = EventType::ContactCreated;
    if !uow.is_subscribed(event).await? {
        return Ok(());
    }
    let contacts = store::find_many(uow.tx(), tenant, ids).await?;
    let views: Vec<ContactView> = contacts.iter().map(ContactView::from).collect();
    uow.emit_all(event, &views).await?;
    Ok(())
}

/// Applies opt-out and opt-in keywords among newly stored inbound messages, in the unit of work
/// that stores them, oldest first: the contact is opted out (source `keyword`, at the message's
/// time), or an opt-out is lifted (opted in at the message's time). An opt-in keyword does not
/// create consent for a contact that never opted out. A keyword older than the contact's
/// current state (a late redelivery) changes nothing. Each change is audited
/// (`contact.opted_out` / `contact.opted_in`, by the inbound pipeline) and emits
/// `contact.updated`.
pub async fn apply_consent_keywords(
    uow: &mut UnitOfWork<'_, SystemScope>,
    settings: &Settings,
    messages: &[NewMessage],
) -> AppResult<()> {
    let keywords = ConsentKeywords::from_settings(settings);
    if keywords.opt_out.is_empty() && keywords.opt_in.is_empty() {
        return Ok(());
    }
    let mut hits: Vec<(&NewMessage, KeywordConsent, String)> = messages
        .iter()
        .filter(|m| m.direction == MessageDirection::Inbound)
        .filter_map(|m| keywords.classify(m).map(|(k, w)| (m, k, w)))
        .collect();
    hits.sort_by_key(|(m, _, _)| m.sent_at.unwrap_or(m.created_at));
    let now = uow.now();
    for (m, consent, keyword) in hits {
        let at = m.sent_at.unwrap_or(m.created_at);
        // Locked, so a concurrent edit through the API cannot write back the consent it read.
        let Some(c) =
            store::find_by_conversation_for_update(uow.tx(), m.tenant_id, m.conversation_id)
                .await?
        else {
            continue;
        };
        let Some(changed) = c.consent.apply_keyword(consent, at) else {
            continue;
        };
        let Some(c) = store::write_consent(uow.tx(), m.tenant_id, c.id, changed, now).await? else {
            continue;
        };
        uow.set_tenant(m.tenant_id);
        record_keyword_change(uow, &c, consent, &keyword, m).await?;
    }
    Ok(())
}

/// WhatsApp answered a marketing template with 131050 (the contact stopped marketing messages
/// from this business), synchronously or in a `failed` status webhook: the conversation's
/// contact is opted out (source `whatsapp`, at `at`) unless already out or opted in later.
/// Audited (`contact.opted_out`) and emits `contact.updated`.
pub async fn opt_out_stopped_marketing(
    uow: &mut UnitOfWork<'_, SystemScope>,
    tenant: TenantId,
    conversation_id: palisade_domain::ConversationId,
    message_id: palisade_domain::MessageId,
    at: time::OffsetDateTime,
) -> AppResult<()> {
    let Some(c) = store::find_by_conversation_for_update(uow.tx(), tenant, conversation_id).await?
    else {
        return Ok(());
    };
    let Some(changed) = c.consent.apply_whatsapp_stop(at) else {
        return Ok(());
    };
    let now = uow.now();
    let Some(c) = store::write_consent(uow.tx(), tenant, c.id, changed, now).await? else {
        return Ok(());
    };
    uow.set_tenant(tenant);
    uow.audit(
        uow.entry("contact.opted_out")
            .target("contact", c.id)
            .change(None, Some(audit_json(&c)))
            .metadata(json!({ "source": "whatsapp", "code": 131050, "message_id": message_id })),
    )
    .await?;
    uow.emit(EventType::ContactUpdated, &ContactView::from(&c))
        .await?;
    Ok(())
}

async fn record_keyword_change(
    uow: &mut UnitOfWork<'_, SystemScope>,
    c: &Contact,
    consent: KeywordConsent,
    keyword: &str,
    m: &NewMessage,
) -> AppResult<()> {
    let action = match consent {
        KeywordConsent::OptOut => "contact.opted_out",
        KeywordConsent::OptIn => "contact.opted_in",
    };
    uow.audit(
        uow.entry(action)
            .target("contact", c.id)
            .change(None, Some(audit_json(c)))
            .metadata(json!({ "source": "keyword", "keyword": keyword, "message_id": m.id })),
    )
    .await?;
    uow.emit(EventType::ContactUpdated, &ContactView::from(c))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn keywords_match_whole_messages_only() {
        let s = Settings::default();
        let k = ConsentKeywords::from_settings(&s);
        let msg = |kind: &str, body: Value| NewMessage {
            id: palisade_domain::MessageId::new(),
            tenant_id: TenantId::new(),
            conversation_id: palisade_domain::ConversationId::new(),
            connection_id: palisade_domain::ConnectionId::new(),
            wamid: "wamid.X".into(),
            direction: MessageDirection::Inbound,
            kind: MessageKind::parse(kind),
            body,
            text: None,
            status: palisade_domain::MessageStatus::Received,
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
