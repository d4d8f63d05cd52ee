//! Meta's webhook POSTs: verify, store durably with their effects, acknowledge.
//!
//! [`admit`] refuses a POST for an unknown or disconnected connection before its body is read;
//! [`receive`] then authenticates the request (HMAC-SHA256 of the exact bytes with the
//! connection's app secret, compared in constant time, before any parsing) and hands the body
//! to this node's [`Pipeline`]. Refusals are limited per client address (`429` past
//! `PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE`, counting refusals only, so Meta's
//! correctly signed bursts always pass) and recorded once per connection and minute
//! ([`super::webhook_refusals`]).
//!
//! One task takes whatever POSTs are waiting (up to [`BATCH_EVENTS`]) and, in one transaction,
//! stores each body verbatim in `whatsapp_inbound_events` together with what it means:
//! contacts, conversations, messages, status changes, consent keywords and media jobs. The
//! handler answers 200 only after that commit, so the acknowledgement always follows
//! a durable write, and under load many POSTs share one commit (one writer pass on SQLite
//! instead of a store, a claim and a finish per POST).
//!
//! When a batch fails on the database, its bodies are stored unprocessed in a second
//! transaction (still before the 200) and processed one by one ([`process_event`]); a worker on
//! every node ([`spawn_worker`]) picks up whatever is left unprocessed (a crash loses nothing,
//! and a poisonous body cannot block the others: its attempts are counted and it is given up).
//!
//! Processing turns every change of a (possibly batched) payload into contacts, conversations
//! and messages. It is idempotent: a message is keyed by its wamid per connection, so Meta's
//! redeliveries and duplicates change nothing; statuses only move a message forward
//! (`sent → delivered → read`, or `failed` with Meta's error), never back. Media messages
//!
//! The parts: [`receive`] (admitting and verifying a POST), [`pipeline`] (batching, storing,
//! the retry worker), [`payload`] (Meta's payload as typed structs, read leniently with [`lenient`]) and [`apply`] (writing
//! a batch's changes and its follow-ups).

mod apply;
mod lenient;
mod payload;
mod pipeline;
mod receive;

pub use pipeline::{
    process_event, process_pending, spawn_pipeline, spawn_process, spawn_worker, Pipeline,
    BATCH_EVENTS, CONNECTION_TTL, PG_PIPELINES,
};
pub use receive::{admit, receive, signature_valid, Admitted, MAX_BODY_BYTES};
