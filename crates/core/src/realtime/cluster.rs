//! Across processes: the task that sends this node's events to the other nodes, the listener
//! that delivers other nodes' events to local sockets (loading rows sent as references), and
//! the presence timer. Separate because it is the only part that talks to the outside world
//! outside a request.
//!
//! The transport is Redis pub/sub when `PALISADE_REDIS_URL` is set (on its own subscription
//! connection; no payload size limit worth the name), otherwise PostgreSQL `NOTIFY`/`LISTEN`.
//! Both carry the same payloads; [`Transport`] is the one place that knows which. SQLite
//! without Redis starts none of it.

use super::events::Event;
use super::hub::{lock, WIRE_VERSION};
use crate::coordination::Redis;
use crate::{AppResult, Services};
use palisade_domain::{ConversationId, MessageId, TenantId};
use palisade_store::realtime as rows;
use palisade_store::SystemScope;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The PostgreSQL notification channel of realtime events (and, under the key prefix, the
/// Redis channel).
pub const CHANNEL: &str = "palisade_realtime";

/// The largest event sent whole over Redis; a larger one travels as a reference, as over
/// PostgreSQL (a frame is a message or a conversation: far below this in practice).
pub const REDIS_MAX_BYTES: usize = 512 * 1024;

/// How long a starting node waits for its Redis subscription before serving anyway.
const SUBSCRIBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How events travel between nodes.
#[derive(Clone)]
enum Transport {
    Postgres,
    Redis(Arc<Redis>),
}

impl Transport {
    fn of(s: &Services) -> Transport {
        match &s.redis {
            Some(r) => Transport::Redis(r.clone()),
            None => Transport::Postgres,
        }
    }

    async fn send(&self, s: &Services, batch: &[String]) -> AppResult<()> {
        match self {
            Transport::Postgres => {
                s.store.notify(CHANNEL, batch).await?;
            }
            Transport::Redis(r) => {
                if !r.publish(CHANNEL, batch).await {
                    return Err(anyhow::anyhow!("Redis did not take the events").into());
                }
            }
        }
        Ok(())
    }
}

/// What a node hears from the others.
enum Feed {
    Postgres(palisade_store::Listener),
    Redis(mpsc::Receiver<String>),
}

impl Feed {
    /// The next payload; `None` when the feed has ended for good.
    async fn recv(&mut self) -> Option<AppResult<String>> {
        match self {
            Feed::Postgres(l) => Some(l.recv().await.map_err(Into::into)),
            Feed::Redis(rx) => rx.recv().await.map(Ok),
        }
    }
}

/// Payloads sent to PostgreSQL in one statement.
const NOTIFY_BATCH: usize = 200;

/// How often a node announces the tenants it holds sockets for.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(10);

/// Starts the cross-process fan-out (PostgreSQL or Redis): the listener is listening when this
/// returns (over Redis: unless Redis does not answer within two seconds), so a node serves
/// sockets only once it hears the others. Nothing to start on SQLite without Redis.
pub async fn start(s: &Services) -> AppResult<Vec<tokio::task::JoinHandle<()>>> {
    let Some(rx) = lock(&s.realtime.remote_rx).take() else {
        return Ok(Vec::new());
    };
    let transport = Transport::of(s);
    let mut tasks = vec![tokio::spawn(notifier(s.clone(), transport.clone(), rx))];
    let feed = match &transport {
        Transport::Postgres => s.store.listen(CHANNEL).await?.map(Feed::Postgres),
        Transport::Redis(r) => {
            let (rx, task) = r.subscribe(CHANNEL, SUBSCRIBE_WAIT).await;
            tasks.push(task);
            Some(Feed::Redis(rx))
        }
    };
    if let Some(feed) = feed {
        tasks.push(tokio::spawn(listen(s.clone(), feed)));
    }
    // Presence: ask the others for theirs (they answer with an announcement), then announce
    // this node's tenants on a timer and forget what expired.
    let hub = s.realtime.clone();
    hub.send_remote(format!("{WIRE_VERSION} {} - hello", hub.node));
    // Not `worker::spawn_periodic`: nothing here fails or drains, and the timer keeps tokio's
    // default (burst) catch-up, so a stalled node re-announces at once; the helper would add
    // an error path and change that.
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRESENCE_EVERY);
        loop {
            tick.tick().await;
            hub.announce_all();
            hub.prune_presence();
        }
    }));
    Ok(tasks)
}

async fn notifier(s: Services, transport: Transport, mut rx: mpsc::Receiver<String>) {
    let mut batch = Vec::with_capacity(NOTIFY_BATCH);
    while rx.recv_many(&mut batch, NOTIFY_BATCH).await > 0 {
        if let Err(e) = transport.send(&s, &batch).await {
            match transport {
                Transport::Postgres => {
                    tracing::warn!(error = %e, lost = batch.len(), "realtime: could not notify other nodes");
                }
                // A Redis outage is logged once by `coordination`, not per batch.
                Transport::Redis(_) => {
                    tracing::debug!(error = %e, lost = batch.len(), "realtime: could not notify other nodes");
                }
            }
        }
        batch.clear();
    }
}

async fn listen(s: Services, mut feed: Feed) {
    while let Some(next) = feed.recv().await {
        match next {
            Ok(payload) => {
                if let Err(e) = heard(&s, &payload).await {
                    tracing::warn!(error = %e, "realtime: could not deliver an event from another node");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "realtime: listening failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Delivers a notification from another node to this node's sockets.
async fn heard(s: &Services, payload: &str) -> AppResult<()> {
    let mut parts = payload.splitn(4, ' ');
    let (Some(WIRE_VERSION), Some(node), Some(tenant), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(anyhow::anyhow!("malformed realtime notification").into());
    };
    let node: Uuid = node.parse().map_err(anyhow::Error::from)?;
    let hub = &s.realtime;
    if tenant == "-" {
        // Presence: `here <tenant>,<tenant>,…` or `hello`.
        match rest.split_once(' ') {
            Some(("here", list)) => {
                let tenants = list
                    .split(',')
                    .map(|t| t.parse::<Uuid>().map(TenantId::from_uuid))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(anyhow::Error::from)?;
                if node == hub.node {
                    hub.heard_own_presence(tenants);
                } else {
                    hub.heard_presence(node, tenants);
                }
            }
            // Its own hello is this node's own business.
            None if rest == "hello" && node == hub.node => {}
            None if rest == "hello" => hub.announce_all(),
            _ => return Err(anyhow::anyhow!("malformed realtime presence").into()),
        }
        return Ok(());
    }
    if node == hub.node {
        // Its own events were delivered here when published.
        return Ok(());
    }
    let tenant = TenantId::from_uuid(tenant.parse().map_err(anyhow::Error::from)?);
    if !hub.has_local(tenant) {
        return Ok(());
    }
    if rest.starts_with('{') {
        hub.deliver(tenant, Arc::from(rest));
        return Ok(());
    }
    // A reference: `ref <kind> <id>` (the event was too large for NOTIFY).
    let mut r = rest.split(' ');
    let (Some("ref"), Some(kind), Some(id)) = (r.next(), r.next(), r.next()) else {
        return Err(anyhow::anyhow!("malformed realtime reference").into());
    };
    let id: Uuid = id.parse().map_err(anyhow::Error::from)?;
    let mut tx = s
        .store
        .begin_read(SystemScope::new("realtime.resolve"))
        .await?;
    let event = match kind {
        "message.created" | "message.status" => {
            rows::messages(&mut tx, tenant, &[MessageId::from(id)])
                .await?
                .into_iter()
                .next()
                .map(|m| {
                    if kind == "message.created" {
                        Event::MessageCreated(m)
                    } else {
                        Event::MessageStatus(m)
                    }
                })
        }
        "conversation.updated" => rows::conversations(&mut tx, tenant, &[ConversationId::from(id)])
            .await?
            .into_iter()
            .next()
            .map(Event::ConversationUpdated),
        _ => None,
    };
    drop(tx);
    if let Some(e) = event {
        hub.deliver(tenant, e.frame());
    }
    Ok(())
}
