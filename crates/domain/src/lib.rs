//! Palisade's domain: the vocabulary every other crate speaks.
//!
//! Everything here is pure — no I/O, no async, no framework — so the rules (who may do what,
//! what a valid email or password is) can be read and tested in isolation. Outside strings become
//! these types at the edge ("parse, don't validate"): a value of a type defined here is valid.

/// `Display` (the value's `as_str`) and `FromStr` (the value of `ALL` with that name, or an error
/// naming `what`) of an enum whose values have names: statuses, kinds, methods.
macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), s))
            }
        }
    };
}

pub mod alert;
pub mod campaign;
pub mod consent;
pub mod contact;
pub mod deal;
pub mod event;
pub mod ids;
pub mod integration;
pub mod login;
pub mod message;
pub mod password;
pub mod permission;
pub mod role;
pub mod scope;
pub mod status;
pub mod template;
pub mod text;
pub mod ticket;
pub mod timestamp;
pub mod two_factor;

pub use alert::{AlertRule, AlertSeverity, AlertStatus};
pub use campaign::{Audience, CampaignStatus};
pub use consent::{Consent, KeywordConsent, OptOutSource};
pub use contact::{Contact, CustomAttributes, PhoneNumber, Tags};
pub use deal::{
    Currency, Deal, DealStageChange, DealTitle, Pipeline, PipelineName, Probability, Stage,
    StageKind,
};
pub use event::EventType;
pub use ids::{
    AlertDeliveryId, ApiKeyId, AttachmentId, AuditRecordId, CampaignId, ConnectionId, ContactId,
    ConversationId, DealId, DealStageChangeId, DeliveryId, EmailCodeId, InboundEventId,
    IntegrationId, InviteId, LoginAttemptId, MailId, MessageId, NotificationId, OrderId, PasskeyId,
    PasswordResetId, PipelineId, RefreshTokenId, SecurityAlertId, SessionId, StageId, TemplateId,
    TenantId, TicketCommentId, TicketId, UserId, WebauthnChallengeId, WebhookId,
};
pub use login::{LoginMethod, LoginResult};
pub use message::{MessageDirection, MessageKind};
pub use password::{PasswordContext, PasswordPolicy, PasswordPolicyPreset, PasswordViolation};
pub use permission::Permission;
pub use role::Role;
pub use scope::Scope;
pub use status::{ConnectionStatus, ConversationStatus, MediaStatus, MessageStatus};
pub use template::{NewTemplate, SendRefusal, Template, TemplateCategory, TemplateStatus};
pub use text::{EmailAddress, PersonName, TenantName};
pub use ticket::{
    Attachment, AttachmentName, AttachmentOwner, CommentVisibility, Ticket, TicketComment,
    TicketPriority, TicketStatus, TicketSubject,
};
pub use timestamp::rfc3339;
pub use two_factor::TwoFactorRequirement;

/// A rejected input: which field, and a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
