//! Realtime events for the websocket (`GET /api/v1/ws`): what changed in a tenant's inbox,
//! pushed to that tenant's open sockets on every node.
//!
//! Threat: one tenant seeing another's events, or a revoked credential keeping a live feed.
//! Invariants:
//! - An event belongs to the tenant of the row it carries (`tenant_id` of the message or
//!   conversation), never to anything a client sent; a socket subscribes to the tenant of its
//!   verified credential ([`authorize`]) and receives only that tenant's channel.
//! - Events are published only after the change commits (use cases publish in the unit of
//!   work's `after_commit`), so a rolled-back change emits nothing. The rows they carry are read in the
//!   transaction of the change, so an event describes exactly what was committed.
//! - `data` is the object's one view, the type the REST API returns
//!   (`messaging::MessageView`, `messaging::ConversationView`; a web-layer test keeps them
//!   equal).
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
//! the same object. With `PALISADE_REDIS_URL` set, Redis pub/sub carries the same payloads
//! instead of `NOTIFY` (on both databases). SQLite without Redis runs as one process by
//! design: local fan-out only.
//!
//! Presence (PostgreSQL): a node sends a tenant's events to the others only while some node has
//! a socket of that tenant, so a deployment without open sockets neither loads event rows nor
//! floods `NOTIFY` (measured: at 3,600 inbound messages/s the event reads and notifications
//! were most of the database's work). Nodes announce, on the same channel, the tenants they
//! hold sockets for: right away when a tenant's first socket opens here, all of them every
//! [`PRESENCE_EVERY`], and all of them when a node starts and says hello. An announcement lasts
//! [`PRESENCE_TTL`]; a tenant whose last socket closed stops being announced and expires. A
//! tenant's first socket on a node is told `ready` once the node hears its own announcement
//! come back over the channel (every other node was sent it first), or after
//! [`ANNOUNCE_WAIT`] if it does not. What is left is a window after a node starts (until
//! the others answer its hello) in which another node's event for a tenant is not sent across;
//! a client loads what it shows after `ready`, as it does after any reconnect.
//!
//! # Where things are
//!
//! - `events.rs`: what an event is and the JSON it carries.
//! - `hub.rs`: the per-node fan-out, socket limits and presence bookkeeping.
//! - `authorize.rs`: who a socket listens as, checked at the handshake and every second.
//! - `publish.rs`: the events use cases publish, read in their transactions.
//! - `cluster.rs`: the cross-process fan-out over PostgreSQL `NOTIFY`/`LISTEN` or Redis
//!   pub/sub.

mod authorize;
mod cluster;
mod events;
mod hub;
mod publish;

pub use authorize::{authorize, SocketCredential};
pub use cluster::{start, CHANNEL, PRESENCE_EVERY, REDIS_MAX_BYTES};
pub use events::{Event, Frame};
pub use hub::{
    Hub, Received, SocketOwner, SocketSlot, Subscription, ANNOUNCE_WAIT, PRESENCE_TTL,
    TENANT_BUFFER,
};
pub use publish::{inbound_events, message_queued, sender_events};
