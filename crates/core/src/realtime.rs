//! Realtime events for the websocket (`GET /api/v1/ws`): what changed in a tenant's inbox,
//! pushed to that tenant's open sockets on every node.
//!
//! Threat: one tenant seeing another's events, or a revoked credential keeping a live feed.
//! Invariants:
//! - An event belongs to the tenant of the row it carries (`tenant_id` of the message or
//!   conversation), never to anything a client sent; a socket subscribes to the tenant of its
//!   verified credential ([`authorize`]) and receives only that tenant's channel.
//! - Events are published only after the change commits (use cases call [`Hub::publish`] after
//!   `commit`), so a rolled-back change emits nothing. The rows they carry are read in the
//!   transaction of the change, so an event describes exactly what was committed.
//! - `data` is the JSON the REST API returns for the object ([`message_json`],
//!   [`conversation_json`]; a web-layer test keeps them equal to the REST responses).
//!
//! Fan-out: one `tokio::sync::broadcast` channel per tenant with local subscribers, created
//! with the first socket and dropped with the last. A frame is rendered once per event and
//! shared by every socket. A slow socket never blocks a publisher: it falls behind, and when it
//! has missed events it is told (`lagged`) and should reload what it shows.
//!
//! Across processes (PostgreSQL): each event is also sent with `NOTIFY` on [`CHANNEL`] by a
//! background task (batched, off the request path); every node `LISTEN`s on a dedicated
//! connection and delivers what it hears to its local sockets, skipping what it published
//! itself (it delivered that locally already), so each socket gets each event once. A
//! `NOTIFY` payload must stay under 8000 bytes: a larger event travels as a reference (kind and
//! id) and the receiving node loads the row, so its `data` may already show a later state of
//! the same object. SQLite runs as one process by design: local fan-out only.
//!
//! Presence (PostgreSQL): a node sends a tenant's events to the others only while some node has
//! a socket of that tenant, so a deployment without open sockets neither loads event rows nor
//! floods `NOTIFY` (measured: at 3,600 inbound messages/s the event reads and notifications
//! were most of the database's work). Nodes announce, on the same channel, the tenants they
//! hold sockets for: right away when a tenant's first socket opens here, all of them every
//! [`PRESENCE_EVERY`], and all of them when a node starts and says hello. An announcement lasts
//! [`PRESENCE_TTL`]; a tenant whose last socket closed stops being announced and expires. The
//! cost is a window of a few milliseconds after a tenant's first socket opens on one node (or
//! after a node starts) in which another node's event for it is not sent across; a client
//! loads what it shows after `ready`, as it does after any reconnect.

use crate::auth::{self, KeyUse, Principal};
use crate::{AppError, AppResult, Services};
use palisade_domain::{rfc3339, Permission, TenantId, UserId};
use palisade_store::messaging::{Conversation, Message};
use palisade_store::realtime as rows;
use palisade_store::{SystemScope, TenantScope, Tx, NOTIFY_MAX_BYTES};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// The PostgreSQL notification channel of realtime events.
pub const CHANNEL: &str = "palisade_realtime";
/// Events a socket may fall behind by before it is told it missed some.
pub const TENANT_BUFFER: usize = 256;
/// Events waiting to be sent to other nodes; beyond this they are dropped (and logged).
const REMOTE_QUEUE: usize = 16_384;
/// Payloads sent to PostgreSQL in one statement.
const NOTIFY_BATCH: usize = 200;
const WIRE_VERSION: &str = "1";
/// How often a node announces the tenants it holds sockets for.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(10);
/// How long an announcement lasts (three missed announcements).
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// A change a tenant's sockets are told about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new message in a conversation: inbound, outbound (queued), or an internal note.
    MessageCreated(Message),
    /// A message's status moved (`sent`, `delivered`, `read`, `failed`).
    MessageStatus(Message),
    /// A conversation was opened, or its status, assignee, labels or latest message changed.
    ConversationUpdated(Conversation),
}

impl Event {
    /// The `type` of the event's frame.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MessageCreated(_) => "message.created",
            Event::MessageStatus(_) => "message.status",
            Event::ConversationUpdated(_) => "conversation.updated",
        }
    }

    /// The tenant whose sockets receive it: that of the row it carries.
    pub fn tenant(&self) -> TenantId {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => TenantId::from_uuid(m.tenant_id),
            Event::ConversationUpdated(c) => TenantId::from_uuid(c.tenant_id),
        }
    }

    fn object_id(&self) -> Uuid {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => m.id,
            Event::ConversationUpdated(c) => c.id,
        }
    }

    /// The event's `data`: the object as the REST API returns it.
    pub fn data(&self) -> Value {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => message_json(m),
            Event::ConversationUpdated(c) => conversation_json(c),
        }
    }

    /// The frame sent on the socket: `{"type": …, "data": …}`.
    pub fn frame(&self) -> Frame {
        Arc::from(json!({ "type": self.kind(), "data": self.data() }).to_string())
    }
}

/// A rendered frame, shared by every socket that receives it.
pub type Frame = Arc<str>;

/// A message as `GET /api/v1/conversations/{id}/messages` returns it.
pub fn message_json(m: &Message) -> Value {
    let mut v = json!({
        "id": m.id,
        "conversation_id": m.conversation_id,
        "connection_id": m.connection_id,
        "wamid": m.wamid,
        "direction": m.direction,
        "type": m.kind,
        "text": m.text,
        "body": m.body.0,
        "status": m.status,
        "error": m.error.as_ref().map(|e| &e.0),
        "context_wamid": m.context_wamid,
        "sent_at": m.sent_at.map(rfc3339),
        "created_at": rfc3339(m.created_at),
        "status_updated_at": rfc3339(m.status_updated_at),
        "author_id": m.author_id,
    });
    if let (Some(media), Some(object)) = (&m.media, v.as_object_mut()) {
        object.insert("media".into(), media_json(media));
    }
    v
}

/// An inbound media message's file state, as the REST API shows it under `media`.
fn media_json(m: &palisade_store::media::MessageMedia) -> Value {
    let stored = m.status == "stored";
    json!({
        "status": m.status,
        "mime_type": m.mime_type,
        "size_bytes": m.size_bytes,
        "sha256": if stored { m.content_sha256.clone() } else { None },
        "filename": m.filename,
        "download_url": stored.then(|| format!("/api/v1/messages/{}/media", m.message_id)),
        "error": m.error_code.as_ref().map(|code| json!({
            "code": code,
            "message": m.error.clone().unwrap_or_default(),
        })),
    })
}

/// A conversation as `GET /api/v1/conversations/{id}` returns it.
pub fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "contact_id": c.contact_id,
        "contact_phone": c.contact_phone,
        "contact_name": c.contact_name,
        "connection_id": c.connection_id,
        "status": c.status,
        "assignee_id": c.assignee_id,
        "labels": c.labels.0,
        "last_message_at": rfc3339(c.last_message_at),
        "last_inbound_at": c.last_inbound_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// The per-node fan-out (see the module comment).
pub struct Hub {
    /// This process, so it can skip its own notifications.
    node: Uuid,
    tenants: Mutex<HashMap<TenantId, broadcast::Sender<Frame>>>,
    /// Payloads for the notifier task (PostgreSQL only).
    remote: Option<mpsc::Sender<String>>,
    remote_rx: Mutex<Option<mpsc::Receiver<String>>>,
    /// Tenants with sockets on other nodes, as announced: tenant → node → when.
    elsewhere: Mutex<HashMap<TenantId, HashMap<Uuid, Instant>>>,
    /// When a full remote queue was last reported (one warning per second at most).
    queue_full_warned: Mutex<Option<Instant>>,
    closing: watch::Sender<bool>,
    /// Open sockets on this node per owner (`PALISADE_WS_MAX_PER_USER`).
    sockets: Mutex<HashMap<SocketOwner, usize>>,
    /// Sockets one owner may hold open on this node; 0: no limit.
    max_sockets_per_owner: usize,
}

/// Whom an open socket counts against for `PALISADE_WS_MAX_PER_USER`: the signed-in user (an
/// impersonation counts against the user it acts as), or the API key (each key its own budget,
/// so one integration cannot use up its creator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketOwner {
    User(UserId),
    ApiKey(Uuid),
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        }
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
    fn heard_presence(&self, node: Uuid, tenants: impl IntoIterator<Item = TenantId>) {
        let now = Instant::now();
        let mut map = lock(&self.elsewhere);
        for t in tenants {
            map.entry(t).or_default().insert(node, now);
        }
    }

    /// Forgets announcements that have expired.
    fn prune_presence(&self) {
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
    fn announce_all(&self) {
        let tenants: Vec<TenantId> = lock(&self.tenants).keys().copied().collect();
        self.announce(&tenants);
    }

    fn send_remote(&self, payload: String) {
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

    fn has_local(&self, tenant: TenantId) -> bool {
        lock(&self.tenants).contains_key(&tenant)
    }

    /// Sends the event to the tenant's sockets on this node and (PostgreSQL) every other node.
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
            if payload.len() > NOTIFY_MAX_BYTES {
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
    fn deliver(&self, tenant: TenantId, frame: Frame) {
        if let Some(tx) = lock(&self.tenants).get(&tenant) {
            // No receiver left between the check and the send: nothing to do.
            let _ = tx.send(frame);
        }
    }

    /// Subscribes to the tenant's events on this node. The tenant must come from a verified
    /// credential (see [`authorize`]).
    pub fn subscribe(self: &Arc<Self>, tenant: TenantId) -> Subscription {
        let (rx, first) = {
            let mut map = lock(&self.tenants);
            let first = !map.contains_key(&tenant);
            let rx = map
                .entry(tenant)
                .or_insert_with(|| broadcast::channel(TENANT_BUFFER).0)
                .subscribe();
            (rx, first)
        };
        if first {
            // The other nodes start sending this tenant's events here.
            self.announce(&[tenant]);
        }
        Subscription {
            hub: self.clone(),
            tenant,
            rx: Some(rx),
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
}

/// What [`Subscription::recv`] got.
#[derive(Debug)]
pub enum Received {
    Frame(Frame),
    /// The socket fell behind and this many events were skipped.
    Lagged(u64),
}

impl Subscription {
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
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            map.remove(&self.tenant);
        }
    }
}

// ---- who may listen ----

/// The credential a socket authenticated with, kept to re-check it while the socket is open.
#[derive(Clone)]
pub enum SocketCredential {
    /// An access token (from the first message, the `Authorization` header or the cookie).
    AccessToken(String),
    /// An API key (first message or `Authorization` header; never a cookie).
    ApiKey(String),
}

impl std::fmt::Debug for SocketCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketCredential::AccessToken(_) => "AccessToken(…)",
            SocketCredential::ApiKey(_) => "ApiKey(…)",
        })
    }
}

impl SocketCredential {
    /// An API key when it has the `pal_live_` prefix, else an access token.
    pub fn from_bearer(token: &str) -> SocketCredential {
        if token.starts_with(auth::api_keys::PREFIX) {
            SocketCredential::ApiKey(token.to_owned())
        } else {
            SocketCredential::AccessToken(token.to_owned())
        }
    }
}

/// Establishes (or re-checks) who a socket listens as and for which tenant: exactly the checks
/// of an API request now (revoked or expired session or token, deleted user, suspended tenant,
/// revoked key), plus permission to read conversations. Cheap: served from the auth cache,
/// which hears of revocations on every node within a second. `usage` says whether this counts
/// as a use of an API key: once per socket, never for the per-second re-checks.
pub async fn authorize(
    s: &Services,
    credential: &SocketCredential,
    ip: Option<IpAddr>,
    usage: KeyUse,
) -> AppResult<(Principal, TenantId)> {
    let p = match credential {
        SocketCredential::AccessToken(t) => auth::authenticate(s, t).await?,
        SocketCredential::ApiKey(k) => auth::authenticate_api_key_as(s, k, ip, usage).await?,
    };
    p.require(Permission::ConversationsRead)?;
    let tenant = p.tenant_id().ok_or(AppError::Forbidden {
        code: "tenant_required",
        message: "realtime events belong to a tenant; super admins have none".into(),
    })?;
    Ok((p, tenant))
}

// ---- what the use cases publish ----

/// The events of processed inbound webhooks, in their transaction: each stored message (its
/// row as the insert returned it), each conversation it opened or moved, each message whose
/// status moved forward (read).
pub async fn inbound_events(
    s: &Services,
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: Uuid,
    mut created: Vec<Message>,
    statuses: &[(String, String)],
) -> palisade_store::Result<Vec<Event>> {
    if (created.is_empty() && statuses.is_empty()) || !s.realtime.wants(tenant) {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    if !created.is_empty() {
        // As stored by this transaction; their media rows do not exist yet (they are queued
        // after the messages), as a read here would show.
        created.sort_unstable_by_key(|m| m.id);
        let mut conversations: Vec<Uuid> = created.iter().map(|m| m.conversation_id).collect();
        conversations.sort_unstable();
        conversations.dedup();
        events.extend(created.into_iter().map(Event::MessageCreated));
        events.extend(
            rows::conversations(tx, tenant, &conversations)
                .await?
                .into_iter()
                .map(Event::ConversationUpdated),
        );
    }
    if !statuses.is_empty() {
        let wamids: Vec<String> = statuses.iter().map(|(w, _)| w.clone()).collect();
        events.extend(
            rows::messages_by_wamid(tx, tenant, connection_id, &wamids)
                .await?
                .into_iter()
                .map(Event::MessageStatus),
        );
    }
    Ok(events)
}

/// The status events of messages the sender just marked (`sent` or `failed`), read in its
/// transaction.
pub async fn sender_events(
    s: &Services,
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_ids: &[Uuid],
) -> palisade_store::Result<Vec<Event>> {
    if message_ids.is_empty() || !s.realtime.wants(tenant) {
        return Ok(Vec::new());
    }
    Ok(rows::messages(tx, tenant, message_ids)
        .await?
        .into_iter()
        .map(Event::MessageStatus)
        .collect())
}

/// The events of a message queued by an agent, read in its transaction: the message, and its
/// conversation as the insert left it (latest-message time).
pub async fn message_queued(
    s: &Services,
    tx: &mut Tx<TenantScope>,
    message: &Message,
) -> palisade_store::Result<Vec<Event>> {
    if !s.realtime.wants(tx.scope().tenant_id()) {
        return Ok(Vec::new());
    }
    let mut events = vec![Event::MessageCreated(message.clone())];
    if let Some(c) =
        palisade_store::messaging::find_conversation(tx, message.conversation_id).await?
    {
        events.push(Event::ConversationUpdated(c));
    }
    Ok(events)
}

// ---- across processes ----

/// Starts the cross-process fan-out (PostgreSQL): the listener is listening when this returns,
/// so a node serves sockets only once it hears the others. Nothing to start on SQLite.
pub async fn start(s: &Services) -> AppResult<Vec<tokio::task::JoinHandle<()>>> {
    let Some(rx) = lock(&s.realtime.remote_rx).take() else {
        return Ok(Vec::new());
    };
    let mut tasks = vec![tokio::spawn(notifier(s.clone(), rx))];
    if let Some(listener) = s.store.listen(CHANNEL).await? {
        tasks.push(tokio::spawn(listen(s.clone(), listener)));
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

async fn notifier(s: Services, mut rx: mpsc::Receiver<String>) {
    let mut batch = Vec::with_capacity(NOTIFY_BATCH);
    while rx.recv_many(&mut batch, NOTIFY_BATCH).await > 0 {
        if let Err(e) = s.store.notify(CHANNEL, &batch).await {
            tracing::warn!(error = %e, lost = batch.len(), "realtime: could not notify other nodes");
        }
        batch.clear();
    }
}

async fn listen(s: Services, mut listener: palisade_store::Listener) {
    loop {
        match listener.recv().await {
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
    if node == hub.node {
        return Ok(());
    }
    if tenant == "-" {
        // Presence: `here <tenant>,<tenant>,…` or `hello`.
        match rest.split_once(' ') {
            Some(("here", list)) => {
                let tenants = list
                    .split(',')
                    .map(|t| t.parse::<Uuid>().map(TenantId::from_uuid))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(anyhow::Error::from)?;
                hub.heard_presence(node, tenants);
            }
            None if rest == "hello" => hub.announce_all(),
            _ => return Err(anyhow::anyhow!("malformed realtime presence").into()),
        }
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
        "message.created" | "message.status" => rows::messages(&mut tx, tenant, &[id])
            .await?
            .into_iter()
            .next()
            .map(|m| {
                if kind == "message.created" {
                    Event::MessageCreated(m)
                } else {
                    Event::MessageStatus(m)
                }
            }),
        "conversation.updated" => rows::conversations(&mut tx, tenant, &[id])
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::types::Json;
    use time::OffsetDateTime;

    fn message(tenant: TenantId) -> Message {
        let now = OffsetDateTime::now_utc();
        Message {
            id: Uuid::now_v7(),
            tenant_id: tenant.as_uuid(),
            conversation_id: Uuid::now_v7(),
            connection_id: Uuid::now_v7(),
            wamid: Some("wamid.x".into()),
            direction: "inbound".into(),
            kind: "text".into(),
            body: Json(json!({"type": "text", "text": {"body": "hi"}})),
            text: Some("hi".into()),
            status: "received".into(),
            error: None,
            context_wamid: None,
            sent_at: Some(now),
            created_at: now,
            status_updated_at: now,
            author_id: None,
            media: None,
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
            SocketOwner::ApiKey(Uuid::now_v7()),
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
        assert!(first.len() <= NOTIFY_MAX_BYTES);
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
}
