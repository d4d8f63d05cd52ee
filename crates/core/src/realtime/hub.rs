//! The per-node fan-out: one broadcast channel per tenant with local sockets, the per-owner
//! socket limit, and what this node knows of other nodes' sockets (presence). In-memory only;
//! the database side of crossing nodes is in `cluster.rs`.

use super::events::{Event, Frame};
use crate::auth::Principal;
use palisade_domain::{ApiKeyId, TenantId, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// Events a socket may fall behind by before it is told it missed some.
pub const TENANT_BUFFER: usize = 256;
/// Events waiting to be sent to other nodes; beyond this they are dropped (and logged).
const REMOTE_QUEUE: usize = 16_384;

/// The version of the wire format of notifications between nodes.
pub(super) const WIRE_VERSION: &str = "1";

/// How long an announcement lasts (three missed announcements).
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// How long a tenant's first socket on this node waits for its announcement to come back over
/// the transport (so the other nodes have been sent it) before it is told `ready` anyway
/// (Redis or the listener down).
pub const ANNOUNCE_WAIT: Duration = Duration::from_secs(1);

/// A tenant with sockets on this node: its channel, and whether this node has heard its own
/// announcement of the tenant come back (every other node was sent it first).
struct Local {
    tx: broadcast::Sender<Frame>,
    announced: watch::Sender<bool>,
}

/// The per-node fan-out (see the `realtime` module comment).
pub struct Hub {
    /// This process, so it can skip its own notifications and recognise its own announcements
    /// coming back.
    pub(super) node: Uuid,
    tenants: Mutex<HashMap<TenantId, Local>>,
    /// Payloads for the notifier task (PostgreSQL only).
    remote: Option<mpsc::Sender<String>>,
    pub(super) remote_rx: Mutex<Option<mpsc::Receiver<String>>>,
    /// Tenants with sockets on other nodes, as announced: tenant → node → when.
    elsewhere: Mutex<HashMap<TenantId, HashMap<Uuid, Instant>>>,
    /// When a full remote queue was last reported (one warning per second at most).
    queue_full_warned: Mutex<Option<Instant>>,
    closing: watch::Sender<bool>,
    /// Open sockets on this node per owner (`PALISADE_WS_MAX_PER_USER`).
    sockets: Mutex<HashMap<SocketOwner, usize>>,
    /// Sockets one owner may hold open on this node; 0: no limit.
    max_sockets_per_owner: usize,
    /// The largest payload the transport between nodes carries; a larger event travels as a
    /// reference.
    remote_max_bytes: usize,
}

/// Whom an open socket counts against for `PALISADE_WS_MAX_PER_USER`: the signed-in user (an
/// impersonation counts against the user it acts as), or the API key (each key its own budget,
/// so one integration cannot use up its creator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketOwner {
    User(UserId),
    ApiKey(ApiKeyId),
}

impl SocketOwner {
    pub fn of(p: &Principal) -> SocketOwner {
        match p.api_key() {
            Some(k) => SocketOwner::ApiKey(k.id),
            None => SocketOwner::User(p.user_id),
        }
    }
}

/// One open socket, counted against its owner until dropped.
pub struct SocketSlot {
    hub: Arc<Hub>,
    owner: SocketOwner,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.hub.sockets);
        if let Some(n) = open.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every critical section is one call.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// `cross_process`: other nodes share the database and must hear this node's events.
    pub fn new(cross_process: bool) -> Hub {
        let (tx, rx) = if cross_process {
            let (tx, rx) = mpsc::channel(REMOTE_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Hub {
            node: Uuid::now_v7(),
            tenants: Mutex::new(HashMap::new()),
            remote: tx,
            remote_rx: Mutex::new(rx),
            elsewhere: Mutex::new(HashMap::new()),
            queue_full_warned: Mutex::new(None),
            closing: watch::channel(false).0,
            sockets: Mutex::new(HashMap::new()),
            max_sockets_per_owner: 0,
            remote_max_bytes: palisade_store::NOTIFY_MAX_BYTES,
        }
    }

    /// The largest payload the transport between nodes carries (PostgreSQL `NOTIFY`: under
    /// 8000 bytes; Redis: [`super::REDIS_MAX_BYTES`]).
    pub fn with_remote_max_bytes(mut self, max: usize) -> Hub {
        self.remote_max_bytes = max;
        self
    }

    /// Limits the sockets one owner may hold open on this node (0: no limit).
    pub fn with_max_sockets_per_owner(mut self, max: usize) -> Hub {
        self.max_sockets_per_owner = max;
        self
    }

    /// Counts a new socket against `owner`; `None` when the owner already holds the maximum
    /// here. The count is per node: behind a load balancer an owner may hold the maximum on
    /// each node.
    pub fn open_socket(self: &Arc<Self>, owner: SocketOwner) -> Option<SocketSlot> {
        let mut open = lock(&self.sockets);
        let n = open.entry(owner).or_insert(0);
        if self.max_sockets_per_owner != 0 && *n >= self.max_sockets_per_owner {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            hub: self.clone(),
            owner,
        })
    }

    /// Websockets open on this node (for the operator's metrics).
    pub fn open_sockets(&self) -> usize {
        lock(&self.sockets).values().sum()
    }

    /// Whether anyone could receive the tenant's events: a socket here, or one that another
    /// node announced (see "Presence" in the module docs). Publishers skip loading rows for
    /// events nobody would receive.
    pub fn wants(&self, tenant: TenantId) -> bool {
        self.has_local(tenant) || self.has_elsewhere(tenant)
    }

    fn has_elsewhere(&self, tenant: TenantId) -> bool {
        if self.remote.is_none() {
            return false;
        }
        let now = Instant::now();
        lock(&self.elsewhere).get(&tenant).is_some_and(|nodes| {
            nodes
                .values()
                .any(|at| now.duration_since(*at) < PRESENCE_TTL)
        })
    }

    /// Records another node's announcement of tenants it holds sockets for.
    pub(super) fn heard_presence(&self, node: Uuid, tenants: impl IntoIterator<Item = TenantId>) {
        let now = Instant::now();
        let mut map = lock(&self.elsewhere);
        for t in tenants {
            map.entry(t).or_default().insert(node, now);
        }
    }

    /// Forgets announcements that have expired.
    pub(super) fn prune_presence(&self) {
        let now = Instant::now();
        lock(&self.elsewhere).retain(|_, nodes| {
            nodes.retain(|_, at| now.duration_since(*at) < PRESENCE_TTL);
            !nodes.is_empty()
        });
    }

    /// Tells the other nodes that this node holds sockets of `tenants`.
    fn announce(&self, tenants: &[TenantId]) {
        // 37 bytes per tenant; 200 per notification stays far below the payload limit.
        for chunk in tenants.chunks(200) {
            let list: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            self.send_remote(format!(
                "{WIRE_VERSION} {} - here {}",
                self.node,
                list.join(",")
            ));
        }
    }

    /// Announces every tenant with a socket here.
    pub(super) fn announce_all(&self) {
        let tenants: Vec<TenantId> = lock(&self.tenants).keys().copied().collect();
        self.announce(&tenants);
    }

    pub(super) fn send_remote(&self, payload: String) {
        let Some(remote) = &self.remote else { return };
        if remote.try_send(payload).is_err() {
            let mut last = lock(&self.queue_full_warned);
            if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    "realtime: the queue to other nodes is full; events are not sent to them"
                );
            }
        }
    }

    pub(super) fn has_local(&self, tenant: TenantId) -> bool {
        lock(&self.tenants).contains_key(&tenant)
    }

    /// Sends the event to the tenant's sockets on this node and (PostgreSQL or Redis) every
    /// other node.
    /// Call only after the change it describes has committed. Never blocks.
    pub fn publish(&self, event: &Event) {
        let tenant = event.tenant();
        if !self.wants(tenant) {
            return;
        }
        let frame = event.frame();
        self.deliver(tenant, frame.clone());
        if self.has_elsewhere(tenant) {
            let mut payload = format!("{WIRE_VERSION} {} {} {frame}", self.node, tenant);
            if payload.len() > self.remote_max_bytes {
                payload = format!(
                    "{WIRE_VERSION} {} {} ref {} {}",
                    self.node,
                    tenant,
                    event.kind(),
                    event.object_id()
                );
            }
            self.send_remote(payload);
        }
    }

    pub fn publish_all(&self, events: &[Event]) {
        for e in events {
            self.publish(e);
        }
    }

    /// Delivers a rendered frame to this node's sockets of the tenant.
    pub(super) fn deliver(&self, tenant: TenantId, frame: Frame) {
        if let Some(local) = lock(&self.tenants).get(&tenant) {
            // No receiver left between the check and the send: nothing to do.
            let _ = local.tx.send(frame);
        }
    }

    /// Subscribes to the tenant's events on this node. The tenant must come from a verified
    /// credential (see [`authorize`]). Await [`Subscription::announced`] before telling the
    /// client it is ready.
    pub fn subscribe(self: &Arc<Self>, tenant: TenantId) -> Subscription {
        let (rx, announced, first) = {
            let mut map = lock(&self.tenants);
            let first = !map.contains_key(&tenant);
            let local = map.entry(tenant).or_insert_with(|| Local {
                tx: broadcast::channel(TENANT_BUFFER).0,
                // Nothing to announce on a single node.
                announced: watch::channel(self.remote.is_none()).0,
            });
            (local.tx.subscribe(), local.announced.subscribe(), first)
        };
        if first {
            // The other nodes start sending this tenant's events here.
            self.announce(&[tenant]);
        }
        Subscription {
            hub: self.clone(),
            tenant,
            rx: Some(rx),
            announced,
        }
    }

    /// This node heard its own announcement of `tenants` come back over the transport: every
    /// other node has been sent it, so their events for these tenants come here from now on.
    pub(super) fn heard_own_presence(&self, tenants: impl IntoIterator<Item = TenantId>) {
        let map = lock(&self.tenants);
        for t in tenants {
            if let Some(local) = map.get(&t) {
                local.announced.send_replace(true);
            }
        }
    }

    /// Tenants with at least one socket on this node.
    pub fn local_tenants(&self) -> usize {
        lock(&self.tenants).len()
    }

    /// Tells every socket that the server is shutting down.
    pub fn shut_down(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves (changes to `true`) when the server is shutting down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// A socket's feed of its tenant's events. Dropping the last one of a tenant drops its channel.
pub struct Subscription {
    hub: Arc<Hub>,
    tenant: TenantId,
    rx: Option<broadcast::Receiver<Frame>>,
    announced: watch::Receiver<bool>,
}

/// What [`Subscription::recv`] got.
#[derive(Debug)]
pub enum Received {
    Frame(Frame),
    /// The socket fell behind and this many events were skipped.
    Lagged(u64),
}

impl Subscription {
    /// Resolves once the other nodes have been sent this node's announcement of the tenant
    /// (at once on a single node or when an earlier socket waited already), or after
    /// [`ANNOUNCE_WAIT`]. Without it, a client told `ready` at once could miss an event
    /// another node publishes before it hears the announcement.
    pub async fn announced(&mut self) {
        // A timeout (transport down) or a dropped sender: serve anyway.
        let _ = tokio::time::timeout(ANNOUNCE_WAIT, self.announced.wait_for(|a| *a)).await;
    }

    /// The next frame. Cancel-safe (for `select!`).
    pub async fn recv(&mut self) -> Received {
        loop {
            let Some(rx) = self.rx.as_mut() else {
                return std::future::pending().await;
            };
            match rx.recv().await {
                Ok(f) => return Received::Frame(f),
                Err(broadcast::error::RecvError::Lagged(n)) => return Received::Lagged(n),
                // The sender lives in the hub's map while this receiver exists.
                Err(broadcast::error::RecvError::Closed) => self.rx = None,
            }
        }
    }
}

impl Subscription {
    /// The next frame if one is already waiting (`None` if none is, or the channel closed).
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.rx.as_mut()?.try_recv() {
            Ok(f) => Some(Received::Frame(f)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                None
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = lock(&self.hub.tenants);
        if map
            .get(&self.tenant)
            .is_some_and(|local| local.tx.receiver_count() == 0)
        {
            map.remove(&self.tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{ConnectionId, ConversationId, MessageId, MessageStatus};
    use palisade_store::messages::Message;
    use serde_json::json;
    use time::OffsetDateTime;

    fn message(tenant: TenantId) -> Message {
        let now = OffsetDateTime::now_utc();
        Message {
            id: MessageId::new(),
            tenant_id: tenant,
            conversation_id: ConversationId::new(),
            connection_id: ConnectionId::new(),
            wamid: Some("wamid.x".into()),
            direction: palisade_domain::MessageDirection::Inbound,
            kind: palisade_domain::MessageKind::Text,
            body: json!({"type": "text", "text": {"body": "hi"}}),
            text: Some("hi".into()),
            status: MessageStatus::Received,
            error: None,
            context_wamid: None,
            sent_at: Some(now),
            created_at: now,
            status_updated_at: now,
            author_id: None,
            media: None,
            sent_file: None,
        }
    }

    #[tokio::test]
    async fn a_tenant_receives_its_events_only_and_channels_go_with_their_last_socket() {
        let hub = Arc::new(Hub::new(false));
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut sa = hub.subscribe(a);
        let mut sb = hub.subscribe(b);
        hub.publish(&Event::MessageCreated(message(a)));
        match sa.recv().await {
            Received::Frame(f) => assert!(f.contains("\"message.created\""), "{f}"),
            other => panic!("{other:?}"),
        }
        let nothing = tokio::time::timeout(Duration::from_millis(50), sb.recv()).await;
        assert!(nothing.is_err(), "tenant B received tenant A's event");
        assert_eq!(hub.local_tenants(), 2);
        drop(sa);
        assert_eq!(
            hub.local_tenants(),
            1,
            "A's channel goes with its last socket"
        );
        assert!(!hub.wants(a), "nobody listens for A: nothing is rendered");
    }

    #[test]
    fn sockets_are_limited_per_owner_and_released_on_drop() {
        let hub = Arc::new(Hub::new(false).with_max_sockets_per_owner(2));
        let (a, b) = (
            SocketOwner::User(UserId::new()),
            SocketOwner::ApiKey(ApiKeyId::new()),
        );
        let first = hub.open_socket(a).unwrap();
        let _second = hub.open_socket(a).unwrap();
        assert!(hub.open_socket(a).is_none(), "a third socket of A");
        assert!(hub.open_socket(b).is_some(), "B has its own budget");
        drop(first);
        assert!(
            hub.open_socket(a).is_some(),
            "a closed socket frees its slot"
        );
    }

    #[tokio::test]
    async fn a_slow_socket_is_told_it_missed_events_and_blocks_nobody() {
        let hub = Arc::new(Hub::new(false));
        let t = TenantId::new();
        let mut slow = hub.subscribe(t);
        let mut fast = hub.subscribe(t);
        for _ in 0..TENANT_BUFFER + 10 {
            hub.publish(&Event::MessageCreated(message(t)));
            assert!(matches!(fast.recv().await, Received::Frame(_)));
        }
        match slow.recv().await {
            Received::Lagged(n) => assert_eq!(n, 10),
            other => panic!("{other:?}"),
        }
        assert!(matches!(slow.recv().await, Received::Frame(_)));
    }

    #[test]
    fn large_events_travel_between_nodes_as_references() {
        let hub = Hub::new(true);
        let t = TenantId::new();
        let mut rx = lock(&hub.remote_rx).take().unwrap();
        hub.heard_presence(Uuid::now_v7(), [t]);
        let small = message(t);
        let mut big = message(t);
        big.text = Some("x".repeat(9000));
        hub.publish(&Event::MessageCreated(small.clone()));
        hub.publish(&Event::MessageStatus(big.clone()));
        let first = rx.try_recv().unwrap();
        assert!(
            first.starts_with(&format!("1 {} {t} {{", hub.node)),
            "{first}"
        );
        assert!(first.len() <= palisade_store::NOTIFY_MAX_BYTES);
        let second = rx.try_recv().unwrap();
        assert_eq!(
            second,
            format!("1 {} {t} ref message.status {}", hub.node, big.id)
        );
    }

    #[test]
    fn events_cross_only_to_tenants_that_another_node_announced() {
        let hub = Arc::new(Hub::new(true));
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut rx = lock(&hub.remote_rx).take().unwrap();
        // Nobody holds sockets of A: nothing is loaded or sent.
        assert!(!hub.wants(a));
        hub.publish(&Event::MessageCreated(message(a)));
        assert!(rx.try_recv().is_err());
        // Another node announces A (and not B).
        let other = Uuid::now_v7();
        hub.heard_presence(other, [a]);
        assert!(hub.wants(a) && !hub.wants(b));
        hub.publish(&Event::MessageCreated(message(a)));
        hub.publish(&Event::MessageCreated(message(b)));
        let sent = rx.try_recv().unwrap();
        assert!(
            sent.starts_with(&format!("1 {} {a} {{", hub.node)),
            "{sent}"
        );
        assert!(rx.try_recv().is_err(), "B's event was sent across");
        // A first local socket of B is announced to the others, once.
        let _s1 = hub.subscribe(b);
        let _s2 = hub.subscribe(b);
        assert_eq!(rx.try_recv().unwrap(), format!("1 {} - here {b}", hub.node));
        assert!(rx.try_recv().is_err());
        // Announcements expire.
        lock(&hub.elsewhere)
            .get_mut(&a)
            .unwrap()
            .insert(other, Instant::now() - PRESENCE_TTL);
        hub.prune_presence();
        assert!(!hub.wants(a));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_socket_is_ready_once_its_announcement_came_back() {
        use tokio::time::Instant;
        // One node: nothing to announce, ready at once.
        let alone = Arc::new(Hub::new(false));
        let mut s = alone.subscribe(TenantId::new());
        let start = Instant::now();
        s.announced().await;
        assert_eq!(start.elapsed(), Duration::ZERO);

        let hub = Arc::new(Hub::new(true));
        let t = TenantId::new();
        let (mut first, mut second) = (hub.subscribe(t), hub.subscribe(t));
        // Not heard back (Redis or the listener down): served after the bounded wait.
        let start = Instant::now();
        first.announced().await;
        assert_eq!(start.elapsed(), ANNOUNCE_WAIT);
        // Another tenant's echo, or one of a tenant without sockets here, changes nothing.
        hub.heard_own_presence([TenantId::new()]);
        let start = Instant::now();
        second.announced().await;
        assert_eq!(start.elapsed(), ANNOUNCE_WAIT);
        // Heard back: every socket of the tenant is ready at once, later ones too.
        hub.heard_own_presence([t]);
        let mut third = hub.subscribe(t);
        let start = Instant::now();
        first.announced().await;
        second.announced().await;
        third.announced().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The last socket gone, the tenant's next first socket is announced (and waited for)
        // again.
        drop((first, second, third));
        let mut again = hub.subscribe(t);
        let start = Instant::now();
        again.announced().await;
        assert_eq!(start.elapsed(), ANNOUNCE_WAIT);
    }
}
