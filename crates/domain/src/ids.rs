//! Typed identifiers. A `UserId` cannot be passed where a `TenantId` is expected.
//!
//! All ids are UUID v7 (time-ordered), so primary-key indexes stay append-mostly.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// A tenant: one business hosted on the platform.
    TenantId
);
id_type!(
    /// A person who signs in: a tenant's admin or agent, or a platform super admin.
    UserId
);
id_type!(
    /// One signed-in device: the family of refresh tokens and the access tokens they mint.
    SessionId
);
id_type!(
    /// One refresh token of a session's rotation family (stored only as a hash).
    RefreshTokenId
);
id_type!(
    /// A person a tenant talks to on WhatsApp, with their marketing consent.
    ContactId
);
id_type!(
    /// A thread of messages with one contact on one WhatsApp connection.
    ConversationId
);
id_type!(
    /// One message in a conversation: inbound, outbound or an internal note.
    MessageId
);
id_type!(
    /// A tenant's WhatsApp Business phone number, connected through Meta.
    ConnectionId
);
id_type!(
    /// An endpoint a tenant registered to receive outgoing events.
    WebhookId
);
id_type!(
    /// One attempt history of delivering one event to one webhook endpoint.
    DeliveryId
);
id_type!(
    /// A tenant's API key (the id, not the secret).
    ApiKeyId
);
id_type!(
    /// A notification shown to one user.
    NotificationId
);
id_type!(
    /// An invitation for someone to join a tenant.
    InviteId
);
id_type!(
    /// A webhook call from Meta, stored before it is processed.
    InboundEventId
);
id_type!(
    /// One entry of the append-only audit log.
    AuditRecordId
);
id_type!(
    /// A mail in the outbox.
    MailId
);
id_type!(
    /// A security alert waiting to be sent to the platform's alert webhook.
    AlertDeliveryId
);
id_type!(
    /// A one-time code that verifies a user's email address.
    EmailCodeId
);
id_type!(
    /// A password reset token sent by mail.
    PasswordResetId
);
id_type!(
    /// One sign-in attempt in a user's login history.
    LoginAttemptId
);
id_type!(
    /// A user's registered passkey (WebAuthn credential).
    PasskeyId
);
id_type!(
    /// A pending WebAuthn ceremony (registration or sign-in): single-use, five minutes.
    WebauthnChallengeId
);
id_type!(
    /// A tenant's sales pipeline: an ordered list of stages.
    PipelineId
);
id_type!(
    /// One stage of a pipeline.
    StageId
);
id_type!(
    /// A deal: a sale in progress with a contact, in a stage of a pipeline.
    DealId
);
id_type!(
    /// One move of a deal from a stage to another.
    DealStageChangeId
);
id_type!(
    /// A broadcast campaign: one template sent to an audience of contacts.
    CampaignId
);
id_type!(
    /// A WhatsApp message template of a connection's business account.
    TemplateId
);
id_type!(
    /// A security alert raised by a detection rule.
    SecurityAlertId
);
id_type!(
    /// A shop connected to a tenant (WooCommerce), sending its orders by signed webhooks.
    IntegrationId
);
id_type!(
    /// An order a shop told Palisade about.
    OrderId
);
id_type!(
    /// A support ticket.
    TicketId
);
id_type!(
    /// A comment on a ticket (public: sent to the customer; internal: the team only).
    TicketCommentId
);
id_type!(
    /// A file attached to a ticket.
    AttachmentId
);
