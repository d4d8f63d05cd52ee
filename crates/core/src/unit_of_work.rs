//! One unit of work for every write.
//!
//! Every change Palisade makes ends the same way: the change, its audit record, the webhook
//! events it raises, one commit, and then the work that must only happen once the change is
//! durable (realtime pushes, cache invalidation, waking a worker, deleting a file). A
//! [`UnitOfWork`] owns those steps so no use case writes them by hand:
//!
//! ```text
//! p.require(Permission::…)?            first line of the use case, as always
//! parse the input                      (no transaction held while a 422 is built)
//! let mut uow = UnitOfWork::begin(s, p, meta).await?;
//! store::…(uow.tx(), …)                the change
//! uow.audit(uow.entry("x.created").target(…)).await?;
//! uow.emit(EventType::XCreated, &view).await?;
//! uow.after_commit(|s| s.realtime.publish(…));
//! uow.after_commit_async("…", async { … });   awaited after the commit (files to remove)
//! uow.commit().await?;                 commits, then runs the after-commit work
//! ```
//!
//! Invariants:
//! - Audit records and queued events are written in the transaction of the change, so they
//!   exist exactly when the change does. Dropping a unit of work without `commit` rolls all of
//!   it back and discards the after-commit work.
//! - The actor is always named: a [`Principal`] (a user's session, an API key acting for its
//!   creator, or a super admin impersonating a user — the audit record keeps both identities),
//!   or a [`SystemActor`] for work no request asked for (the inbound pipeline, the workers).
//! - The clock is read once, when the unit begins: every timestamp a write stores is the same
//!   instant.
//! - Events are typed ([`EventType`]); their data is the resource's one view, serialized here.

use crate::audit::{self};
use crate::auth::{Principal, RequestMeta};
use crate::{AppError, AppResult, Services};
use palisade_domain::{AuditRecordId, EventType, TenantId};
use palisade_store::audit::{self as audit_log, AuditEntry};
use palisade_store::{Scope, TenantScope, Tx};
use serde::Serialize;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use time::OffsetDateTime;

/// Work no request asked for. Its name stands where a request id would in the audit log
/// (`request_id`), so a reader can tell which part of Palisade acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemActor {
    /// Processing Meta's webhooks: new contacts, messages, statuses, consent keywords.
    InboundPipeline,
    /// Delivering outgoing webhooks (and disabling an endpoint that keeps failing).
    WebhookWorker,
    /// Sending queued WhatsApp messages.
    OutboundSender,
    /// Downloading inbound media.
    MediaWorker,
    /// Scheduled clean-up: retention, expired rows.
    Maintenance,
    /// Sending queued mails.
    MailWorker,
    /// Raising security alerts (the detection rules).
    Detections,
    /// Recording shops' order webhooks and sending their rules' templates.
    StoreIntegrations,
    /// Queuing campaigns' messages at their connection's pace, and completing campaigns.
    CampaignDispatcher,
}

impl SystemActor {
    pub const fn name(self) -> &'static str {
        match self {
            SystemActor::InboundPipeline => "whatsapp-inbound",
            SystemActor::WebhookWorker => "webhook-worker",
            SystemActor::OutboundSender => "whatsapp-sender",
            SystemActor::MediaWorker => "media-worker",
            SystemActor::Maintenance => "maintenance",
            SystemActor::MailWorker => "mail-worker",
            SystemActor::Detections => "detections",
            SystemActor::StoreIntegrations => "store-integrations",
            SystemActor::CampaignDispatcher => "campaign-dispatcher",
        }
    }
}

/// Who a unit of work acts for.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Principal(&'a Principal),
    System(SystemActor),
    /// A request from someone not signed in yet (sign-in, token refresh, registration,
    /// accepting an invitation): the record carries the request's origin and no actor unless
    /// the use case names the account it proved (see [`UnitOfWork::anonymous`]).
    Anonymous,
}

/// Work queued for after the commit: run at once, or awaited (see
/// [`UnitOfWork::after_commit_async`]).
enum AfterCommit<'a> {
    Now(Box<dyn FnOnce(&Services) + Send + 'a>),
    Awaited(
        &'static str,
        Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>,
    ),
}

/// A write in progress: the transaction, who acts, where the request came from, the instant,
/// and the work to run once it commits. See the module documentation.
pub struct UnitOfWork<'a, S: Scope = TenantScope> {
    services: &'a Services,
    tx: Tx<S>,
    actor: Actor<'a>,
    meta: Cow<'a, RequestMeta>,
    tenant: Option<TenantId>,
    now: OffsetDateTime,
    after_commit: Vec<AfterCommit<'a>>,
    /// The audit records written, for the detection rules once committed.
    audited: Vec<crate::detections::AuditedEvent>,
}

impl<'a> UnitOfWork<'a, TenantScope> {
    /// A write by `p` in their own tenant. Call it after `p.require(…)` and after parsing.
    pub async fn begin(
        s: &'a Services,
        p: &'a Principal,
        meta: &'a RequestMeta,
    ) -> AppResult<Self> {
        let scope = p.tenant_scope()?;
        UnitOfWork::begin_in(s, p, meta, scope).await
    }
}

impl<'a, S: Scope> UnitOfWork<'a, S> {
    /// A write by `p` in another scope: their own user rows (`Principal::own_scope`), or a
    /// super admin's platform work (a `SystemScope`; name the tenant acted on with
    /// [`for_tenant`](Self::for_tenant)).
    pub async fn begin_in(
        s: &'a Services,
        p: &'a Principal,
        meta: &'a RequestMeta,
        scope: S,
    ) -> AppResult<Self> {
        let tenant = scope.tenant().or(p.tenant_id());
        Ok(UnitOfWork {
            tx: s.store.begin(scope).await?,
            services: s,
            actor: Actor::Principal(p),
            meta: Cow::Borrowed(meta),
            tenant,
            now: s.now(),
            after_commit: Vec::new(),
            audited: Vec::new(),
        })
    }

    /// Work no request asked for, done by `actor` in `scope`.
    pub async fn system(s: &'a Services, actor: SystemActor, scope: S) -> AppResult<Self> {
        Ok(UnitOfWork {
            tenant: scope.tenant(),
            tx: s.store.begin(scope).await?,
            services: s,
            actor: Actor::System(actor),
            meta: Cow::Owned(RequestMeta {
                request_id: actor.name().to_owned(),
                ..RequestMeta::default()
            }),
            now: s.now(),
            after_commit: Vec::new(),
            audited: Vec::new(),
        })
    }

    /// A write for an unauthenticated request (no principal exists yet): audit records carry
    /// the request's origin (`ip`, `user_agent`, `request_id`) and no actor. A use case that
    /// has just proved who the caller is (a correct password, a live refresh token) names them
    /// on the record itself.
    pub async fn anonymous(s: &'a Services, meta: &'a RequestMeta, scope: S) -> AppResult<Self> {
        Ok(UnitOfWork {
            tenant: scope.tenant(),
            tx: s.store.begin(scope).await?,
            services: s,
            actor: Actor::Anonymous,
            meta: Cow::Borrowed(meta),
            now: s.now(),
            after_commit: Vec::new(),
            audited: Vec::new(),
        })
    }

    /// The tenant this work is for, when the scope does not say (system scopes, platform
    /// work): audit records and events go to this tenant.
    pub fn for_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Changes the tenant for the next records and events (system work that spans tenants
    /// within one transaction, such as an inbound batch).
    pub fn set_tenant(&mut self, tenant: TenantId) {
        self.tenant = Some(tenant);
    }

    pub fn tx(&mut self) -> &mut Tx<S> {
        &mut self.tx
    }

    pub fn services(&self) -> &'a Services {
        self.services
    }

    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// The instant of this write (read once, when it began).
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// An audit record of `action`, stamped with the actor (both identities under
    /// impersonation, the key under an API key), the request's origin and the tenant.
    pub fn entry(&self, action: &str) -> AuditEntry {
        match self.actor {
            Actor::Principal(p) => audit::by(p, &self.meta, self.tenant, action),
            Actor::System(_) | Actor::Anonymous => audit::entry(&self.meta, self.tenant, action),
        }
    }

    /// Appends `entry` to the audit log, in this transaction.
    pub async fn audit(&mut self, entry: AuditEntry) -> AppResult<()> {
        self.audit_record(entry).await.map(|_| ())
    }

    /// Appends `entry` to the audit log, in this transaction, and returns the record's id (for
    /// an alert's evidence).
    pub async fn audit_record(&mut self, entry: AuditEntry) -> AppResult<AuditRecordId> {
        let id = audit_log::append(&mut self.tx, &entry, self.now).await?;
        if crate::detections::watches(&entry.action) {
            self.audited
                .push(crate::detections::AuditedEvent { id, entry });
        }
        Ok(id)
    }

    /// The id of the last audit record this unit wrote that a detection rule watches.
    pub fn last_watched_audit_id(&self) -> Option<AuditRecordId> {
        self.audited.last().map(|e| e.id)
    }

    /// Queues `event` with `data` (the resource's view) for every endpoint of the tenant that
    /// subscribes to it, in this transaction. Returns how many deliveries were queued.
    pub async fn emit<T: Serialize + ?Sized>(
        &mut self,
        event: EventType,
        data: &T,
    ) -> AppResult<usize> {
        self.emit_all(event, std::slice::from_ref(&data)).await
    }

    /// Queues `event` once with each of `data` (in order) for every endpoint of the tenant that
    /// subscribes to it, in this transaction, reading the subscribers once. Returns how many
    /// deliveries were queued.
    pub async fn emit_all<T: Serialize>(
        &mut self,
        event: EventType,
        data: &[T],
    ) -> AppResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let tenant = self.event_tenant(event)?;
        let data = data
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::Internal(e.into()))?;
        crate::webhooks::enqueue(&mut self.tx, tenant, event, data, self.now).await
    }

    /// Whether any active endpoint of the tenant subscribes to `event`: for a use case whose
    /// event data costs a read it would not make otherwise.
    pub async fn is_subscribed(&mut self, event: EventType) -> AppResult<bool> {
        let tenant = self.event_tenant(event)?;
        let hooks = crate::webhooks::subscribers(&mut self.tx, tenant, event).await?;
        Ok(!hooks.is_empty())
    }

    fn event_tenant(&self, event: EventType) -> AppResult<TenantId> {
        self.tenant
            .ok_or_else(|| anyhow::anyhow!("event {event} raised outside a tenant").into())
    }

    /// Runs `f` once the transaction has committed (never if it does not).
    pub fn after_commit(&mut self, f: impl FnOnce(&Services) + Send + 'a) {
        self.after_commit.push(AfterCommit::Now(Box::new(f)));
    }

    /// Awaits `work` once the transaction has committed (never if it does not), in order with
    /// the other after-commit work, before [`commit`](Self::commit) returns: for work that must
    /// be done when the answer goes out, such as removing files. The change is durable by then,
    /// so a failure cannot undo it: it is logged as a warning, `what` first, not returned.
    pub fn after_commit_async(
        &mut self,
        what: &'static str,
        work: impl Future<Output = anyhow::Result<()>> + Send + 'a,
    ) {
        self.after_commit
            .push(AfterCommit::Awaited(what, Box::pin(work)));
    }

    /// Commits the change, its audit records and events, then runs the after-commit work in
    /// the order it was added.
    pub async fn commit(self) -> AppResult<()> {
        self.tx.commit().await?;
        crate::detections::spawn_evaluation(self.services, self.audited);
        for work in self.after_commit {
            match work {
                AfterCommit::Now(f) => f(self.services),
                AfterCommit::Awaited(what, work) => {
                    if let Err(e) = work.await {
                        tracing::warn!(error = format!("{e:#}"), "{what}");
                    }
                }
            }
        }
        Ok(())
    }
}
