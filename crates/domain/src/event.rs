//! The events Palisade sends to a tenant's webhook endpoints, as a closed set.
//!
//! Use cases name an event with [`EventType`], never with a string, so a typo cannot queue an
//! event nobody can subscribe to, and what a subscriber must be allowed to read to receive an
//! event ([`EventType::required_permission`]) is decided here, once.

use crate::Permission;

/// One kind of outgoing webhook event. `as_str` is its wire name (`contact.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeleted,
    ApiKeyCreated,
    ApiKeyRevoked,
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    DealDeleted,
    TicketCreated,
    TicketUpdated,
    TicketCommentAdded,
    TemplateCreated,
    TemplateUpdated,
    TemplateDeleted,
    OrderCreated,
    OrderUpdated,
    CampaignCreated,
    CampaignUpdated,
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    CampaignCancelled,
    CampaignCompleted,
    CampaignDeleted,
    WebhookTest,
    SecurityAlert,
}

impl EventType {
    /// Every event, in the order the API lists them.
    pub const ALL: [EventType; 32] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::ApiKeyCreated,
        EventType::ApiKeyRevoked,
        EventType::ContactCreated,
        EventType::ContactUpdated,
        EventType::ContactDeleted,
        EventType::DealCreated,
        EventType::DealUpdated,
        EventType::DealStageChanged,
        EventType::DealWon,
        EventType::DealLost,
        EventType::DealDeleted,
        EventType::TicketCreated,
        EventType::TicketUpdated,
        EventType::TicketCommentAdded,
        EventType::TemplateCreated,
        EventType::TemplateUpdated,
        EventType::TemplateDeleted,
        EventType::OrderCreated,
        EventType::OrderUpdated,
        EventType::CampaignCreated,
        EventType::CampaignUpdated,
        EventType::CampaignStarted,
        EventType::CampaignPaused,
        EventType::CampaignResumed,
        EventType::CampaignCancelled,
        EventType::CampaignCompleted,
        EventType::CampaignDeleted,
        EventType::WebhookTest,
        EventType::SecurityAlert,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::ContactCreated => "contact.created",
            EventType::ContactUpdated => "contact.updated",
            EventType::ContactDeleted => "contact.deleted",
            EventType::DealCreated => "deal.created",
            EventType::DealUpdated => "deal.updated",
            EventType::DealStageChanged => "deal.stage_changed",
            EventType::DealWon => "deal.won",
            EventType::DealLost => "deal.lost",
            EventType::DealDeleted => "deal.deleted",
            EventType::TicketCreated => "ticket.created",
            EventType::TicketUpdated => "ticket.updated",
            EventType::TicketCommentAdded => "ticket.comment_added",
            EventType::TemplateCreated => "template.created",
            EventType::TemplateUpdated => "template.updated",
            EventType::TemplateDeleted => "template.deleted",
            EventType::OrderCreated => "order.created",
            EventType::OrderUpdated => "order.updated",
            EventType::CampaignCreated => "campaign.created",
            EventType::CampaignUpdated => "campaign.updated",
            EventType::CampaignStarted => "campaign.started",
            EventType::CampaignPaused => "campaign.paused",
            EventType::CampaignResumed => "campaign.resumed",
            EventType::CampaignCancelled => "campaign.cancelled",
            EventType::CampaignCompleted => "campaign.completed",
            EventType::CampaignDeleted => "campaign.deleted",
            EventType::WebhookTest => "webhook.test",
            EventType::SecurityAlert => "security.alert",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// What a subscriber must be allowed to read to receive this event; `None` when the event
    /// carries no tenant data (`webhook.test`). `user.*` and `api_key.*` need permissions no API
    /// key scope grants, so only signed-in admins subscribe to them.
    pub const fn required_permission(self) -> Option<Permission> {
        match self {
            EventType::WebhookTest => None,
            EventType::ContactCreated | EventType::ContactUpdated | EventType::ContactDeleted => {
                Some(Permission::ContactsRead)
            }
            EventType::DealCreated
            | EventType::DealUpdated
            | EventType::DealStageChanged
            | EventType::DealWon
            | EventType::DealLost
            | EventType::DealDeleted => Some(Permission::DealsRead),
            EventType::TicketCreated | EventType::TicketUpdated | EventType::TicketCommentAdded => {
                Some(Permission::TicketsRead)
            }
            EventType::TemplateCreated
            | EventType::TemplateUpdated
            | EventType::TemplateDeleted => Some(Permission::TemplatesRead),
            // Orders are read on their contact (`GET /api/v1/contacts/{id}/orders`).
            EventType::OrderCreated | EventType::OrderUpdated => Some(Permission::ContactsRead),
            EventType::CampaignCreated
            | EventType::CampaignUpdated
            | EventType::CampaignStarted
            | EventType::CampaignPaused
            | EventType::CampaignResumed
            | EventType::CampaignCancelled
            | EventType::CampaignCompleted
            | EventType::CampaignDeleted => Some(Permission::CampaignsRead),
            EventType::UserCreated | EventType::UserUpdated | EventType::UserDeleted => {
                Some(Permission::UsersRead)
            }
            EventType::ApiKeyCreated | EventType::ApiKeyRevoked => Some(Permission::ApiKeysManage),
            EventType::SecurityAlert => Some(Permission::SecurityAlertsRead),
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
        }
        let mut names: Vec<_> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(EventType::parse("contact.*"), None);
    }

    #[test]
    fn only_the_test_event_needs_no_permission() {
        for e in EventType::ALL {
            assert_eq!(
                e.required_permission().is_none(),
                e == EventType::WebhookTest,
                "{e}"
            );
        }
    }
}
