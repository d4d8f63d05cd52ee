//! What a message is besides its status: which way it went ([`MessageDirection`]) and Meta's
//! type of it ([`MessageKind`]). Their names are the stored values and the JSON strings.

use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// Which way a message went: `inbound` (from the contact), `outbound` (an agent's or an API
/// key's, through the send queue) or `internal` (a note, never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageDirection {
    Inbound,
    Outbound,
    Internal,
}

impl MessageDirection {
    pub const ALL: [MessageDirection; 3] = [
        MessageDirection::Inbound,
        MessageDirection::Outbound,
        MessageDirection::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageDirection::Inbound => "inbound",
            MessageDirection::Outbound => "outbound",
            MessageDirection::Internal => "internal",
        }
    }
}

text_enum!(MessageDirection, "message direction");

/// Meta's type of a message (`type` in its JSON). The types this server acts on are named;
/// any other is kept as Meta sent it ([`MessageKind::Other`]): Meta adds types, and an inbound
/// message is stored as it came (a test delivers a `hologram`), so this set is open and no
/// stored value is invalid. `note` is this server's own, for internal notes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Interactive,
    Button,
    Reaction,
    Template,
    /// An internal note.
    Note,
    /// What an inbound message without a readable `type` is stored as.
    Unknown,
    /// A type not named above, as Meta sent it.
    Other(OtherKind),
}

/// The name of a [`MessageKind::Other`]: never one of the named kinds (it is built only by
/// parsing), so two equal kinds are always the same variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherKind(String);

impl OtherKind {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl MessageKind {
    /// The named kinds.
    pub const NAMED: [MessageKind; 14] = [
        MessageKind::Text,
        MessageKind::Image,
        MessageKind::Audio,
        MessageKind::Video,
        MessageKind::Document,
        MessageKind::Sticker,
        MessageKind::Location,
        MessageKind::Contacts,
        MessageKind::Interactive,
        MessageKind::Button,
        MessageKind::Reaction,
        MessageKind::Template,
        MessageKind::Note,
        MessageKind::Unknown,
    ];

    /// The kinds whose message carries a file (`{"id", "mime_type", …}` under its type).
    pub const MEDIA: [MessageKind; 5] = [
        MessageKind::Image,
        MessageKind::Audio,
        MessageKind::Video,
        MessageKind::Document,
        MessageKind::Sticker,
    ];

    /// The kind named `s` (Meta's `type`): a named kind, or else `Other`.
    pub fn parse(s: &str) -> MessageKind {
        MessageKind::NAMED
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| MessageKind::Other(OtherKind(s.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Audio => "audio",
            MessageKind::Video => "video",
            MessageKind::Document => "document",
            MessageKind::Sticker => "sticker",
            MessageKind::Location => "location",
            MessageKind::Contacts => "contacts",
            MessageKind::Interactive => "interactive",
            MessageKind::Button => "button",
            MessageKind::Reaction => "reaction",
            MessageKind::Template => "template",
            MessageKind::Note => "note",
            MessageKind::Unknown => "unknown",
            MessageKind::Other(o) => o.as_str(),
        }
    }

    /// Whether the message carries a file (see [`MEDIA`](Self::MEDIA)).
    pub fn is_media(&self) -> bool {
        MessageKind::MEDIA.contains(self)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(MessageKind::parse(s))
    }
}

impl From<&str> for MessageKind {
    fn from(s: &str) -> Self {
        MessageKind::parse(s)
    }
}

impl Serialize for MessageKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(MessageKind::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_round_trip_through_their_names_and_json() {
        for d in MessageDirection::ALL {
            assert_eq!(d.as_str().parse::<MessageDirection>(), Ok(d));
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::json!(d.as_str())
            );
        }
        assert!("sideways".parse::<MessageDirection>().is_err());
    }

    #[test]
    fn kinds_keep_any_name_meta_sends() {
        for k in MessageKind::NAMED {
            assert_eq!(MessageKind::parse(k.as_str()), k);
        }
        let other = MessageKind::parse("hologram");
        assert_eq!(other.as_str(), "hologram");
        assert!(matches!(other, MessageKind::Other(_)));
        assert_eq!(MessageKind::parse("text"), MessageKind::Text);
        let json = serde_json::to_string(&other).unwrap();
        assert_eq!(json, r#""hologram""#);
        assert_eq!(serde_json::from_str::<MessageKind>(&json).unwrap(), other);
        assert!(MessageKind::Sticker.is_media() && !MessageKind::Text.is_media());
    }
}
