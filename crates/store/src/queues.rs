//! How much work waits in each durable queue, across tenants: for the operator's metrics
//! (`palisade_queue_depth`). One statement of scalar counts, each served by the queue's own
//! index (the "due" indexes of the outbound queue, webhook deliveries, media, mail and alert
//! webhooks, and the pending index of inbound events), so a scrape costs a few index scans,
//! not table scans.

use crate::{Query, Result, SystemScope, Tx};

/// Rows waiting in each queue: due now or scheduled for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueDepths {
    /// Queued outgoing WhatsApp messages (`whatsapp_outbound_queue`).
    pub outbound_sends: i64,
    /// Webhook deliveries not yet delivered or given up (`pending`, or `failed` awaiting a retry).
    pub webhook_deliveries: i64,
    /// Inbound media not yet downloaded (`pending`).
    pub media_downloads: i64,
    /// Mails not yet sent or given up (`pending`).
    pub mail: i64,
    /// Stored Meta webhooks not yet processed.
    pub inbound_events: i64,
    /// Security alerts not yet sent to the platform's alert webhook or given up (`pending`).
    pub alert_webhooks: i64,
}

impl QueueDepths {
    /// Each queue with the name it has in the metric's `queue` label.
    pub fn labelled(&self) -> [(&'static str, i64); 6] {
        [
            ("outbound_sends", self.outbound_sends),
            ("webhook_deliveries", self.webhook_deliveries),
            ("media_downloads", self.media_downloads),
            ("mail", self.mail),
            ("inbound_events", self.inbound_events),
            ("alert_webhooks", self.alert_webhooks),
        ]
    }
}

pub async fn depths(tx: &mut Tx<SystemScope>) -> Result<QueueDepths> {
    tx.fetch_one(Query::new(
        "SELECT
           (SELECT COUNT(*) FROM whatsapp_outbound_queue) AS outbound_sends,
           (SELECT COUNT(*) FROM webhook_deliveries WHERE status IN ('pending', 'failed')) AS webhook_deliveries,
           (SELECT COUNT(*) FROM message_media WHERE status = 'pending') AS media_downloads,
           (SELECT COUNT(*) FROM mail_outbox WHERE status = 'pending') AS mail,
           (SELECT COUNT(*) FROM whatsapp_inbound_events WHERE processed_at IS NULL) AS inbound_events,
           (SELECT COUNT(*) FROM alert_webhook_outbox WHERE status = 'pending') AS alert_webhooks",
    ))
    .await
}
