//! WhatsApp Business numbers connected through Meta's Cloud API.
//!
//! - [`graph`]: the one client for Meta's Graph API (configurable base URL and pinned version,
//!   typed responses, Meta's error codes mapped to meaningful errors). The base URL is trusted
//!   operator configuration (tests point it at `palisade sim`), so it is not subject to the
//!   webhook SSRF rules; it follows no redirects and times out.
//! - [`connections`]: connecting a number (the token is verified against the Graph API first),
//!   listing, disconnecting and deleting, and the verification handshake of Meta's webhooks.
//! - [`inbound`]: Meta's webhook POSTs, verified and stored durably before the 200, then
//!   processed into contacts, conversations and messages. Unknown or disconnected connections
//!   are refused before the body is read, refusals are limited per client address, and a
//!   connection's refusals become one audit record per minute ([`webhook_refusals`]).
//! - [`media`]: inbound media downloaded in the background into the tenant's storage (media
//!   URLs are fetched only on the Graph base URL's origin or Meta's media hosts).
//! - [`retention`]: processed webhook bodies are dropped after `inbound_retention_days`.
//!
//! Secrets: the access token and app secret are stored only encrypted with the key ring, with
//! the row's identity as associated data; the verify token only as a SHA-256 hash. None of them
//! is ever returned by the API or written to a log.

pub mod connections;
pub mod graph;
pub mod inbound;
pub mod media;
pub mod outbound;
pub mod outbound_media;
pub mod retention;
pub mod webhook_refusals;
