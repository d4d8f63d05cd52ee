//! The campaign dispatcher: a worker on every node that, each round,
//!
//! 1. moves scheduled campaigns whose time has come (of active tenants) to `running`;
//! 2. leases the running campaigns of active tenants (a column lease, so two nodes do not
//!    dispatch the same campaign; a suspended tenant's campaigns wait);
//! 3. per connection, takes the budget of this round from the connection's pace ([`Pacer`]:
//!    `PALISADE_CAMPAIGN_MESSAGES_PER_SECOND`, at most one second's worth; in Redis for all
//!    nodes together when `PALISADE_REDIS_URL` is set) and never more than the connection's
//!    bulk sends already waiting in the send queue leave room for under `BACKLOG_SECONDS`
//!    seconds' worth (so the queue never holds a backlog, and Meta's throughput errors, which
//!    hold those sends back, slow the dispatch down with them: while Meta refuses, a round
//!    queues only what has left the queue);
//! 4. queues one message per pending recipient, each in its own unit of work (system actor
//!    `campaign-dispatcher`): the consent is checked again (an opt-out since the start skips
//!    the recipient), the parameters resolved (`missing_parameter`), the conversation found
//!    or opened, the template queued through `messaging::queue_message_with` (bulk priority),
//!    and the recipient moved `pending → dispatched` with the message's id by an `UPDATE …
//!    WHERE status = 'pending'`. All of it commits together: a crash before the commit leaves
//!    the recipient pending (done again), after it the message is in the send queue exactly
//!    once; a second dispatcher that raced for the same recipient updates no row and rolls
//!    back;
//! 5. completes the campaigns with no pending recipient left (`campaign.completed`).
//!
//! Without Redis the pace is kept in process: with several nodes, two campaigns of one
//! connection leased by different nodes each get the node's rate, but the backlog bound (3)
//! still caps what waits in the shared queue at two seconds' worth. With Redis the nodes share
//! one budget per connection; a Redis outage falls back to the node's own (see [`Pacer`]).

use super::components;
use crate::audit::AuditEntryExt;
use crate::coordination::Redis;
use crate::messaging::{queue_message_with, Outgoing};
use crate::worker::Next;
use crate::{AppError, AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::campaign::parameter_values;
use palisade_domain::{
    CampaignId, CampaignStatus, ConnectionId, ContactId, EventType, TemplateCategory, TenantId,
};
use palisade_store::campaigns::{self as store, Campaign, Leased};
use palisade_store::send_queue::SendPriority;
use palisade_store::{SystemScope, TenantScope};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;

/// How long a leased campaign is hidden from other nodes' dispatchers.
const LEASE: Duration = Duration::seconds(30);
/// Running campaigns leased per round.
const CAMPAIGNS_PER_ROUND: i64 = 100;
/// The most campaign sends, in seconds of the pace, a connection's send queue may hold. Two,
/// not one: the sender polls every second (`PALISADE_OUTBOUND_WORKER_INTERVAL_MS`), so a
/// round's messages routinely still wait (or are being sent) when the next round comes; with
/// a bound of one second's worth each round then got only what they left, and the bucket's
/// unused tokens were lost. Measured (`bench/campaign.sh`, 10,000 recipients at 80/s, debug
/// build under load): 70.8/s, 10-second windows down to 49/s.
const BACKLOG_SECONDS: i64 = 2;

/// The pace per connection: `rate` messages a second, at most one second's worth saved.
///
/// Without Redis a token bucket per connection in this process. With Redis
/// ([`Pacer::shared`]) a round's budget is taken from the connection's GCRA in Redis
/// (`<prefix>:campaign_pace:<connection id>`, one atomic script, Redis's clock), so every
/// node's dispatcher together keeps the pace; what a round does not use goes back. When Redis
/// does not answer, the round takes its budget from the local bucket instead (counted in
/// `palisade_redis_fallbacks_total{limit="campaign_pace"}`, warned once per outage): during an
/// outage each node paces on its own, as without Redis.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    buckets: HashMap<ConnectionId, (f64, OffsetDateTime)>,
    redis: Option<Arc<Redis>>,
}

/// A round's budget for one connection, and where it was taken from (unused tokens go back
/// there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub n: i64,
    from_redis: bool,
}

impl Pacer {
    /// This node's own pace (no Redis).
    pub fn new(per_second: u32) -> Self {
        Self::shared(per_second, None)
    }

    /// The pace shared through `redis` by every node, with this node's bucket as the fallback.
    pub fn shared(per_second: u32, redis: Option<Arc<Redis>>) -> Self {
        Pacer {
            rate: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
            redis,
        }
    }

    fn emission(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.rate)
    }

    fn key(connection: ConnectionId) -> String {
        format!("campaign_pace:{connection}")
    }

    /// Takes up to `want` messages of `connection`'s budget at `now` (this node's clock, for the
    /// local bucket; Redis uses its own).
    pub async fn take(
        &mut self,
        connection: ConnectionId,
        want: i64,
        now: OffsetDateTime,
    ) -> Budget {
        if want <= 0 {
            return Budget {
                n: 0,
                from_redis: false,
            };
        }
        if let Some(redis) = &self.redis {
            let want32 = u32::try_from(want).unwrap_or(u32::MAX);
            let burst = self.per_second_u32();
            match redis
                .gcra_take(&Self::key(connection), self.emission(), burst, want32)
                .await
            {
                Some(Ok(n)) => {
                    return Budget {
                        n: i64::from(n),
                        from_redis: true,
                    }
                }
                Some(Err(_)) => {
                    return Budget {
                        n: 0,
                        from_redis: true,
                    }
                }
                None => crate::metrics::redis_fallback("campaign_pace"),
            }
        }
        let n = self.available(connection, now).min(want);
        self.take_local(connection, n);
        Budget {
            n,
            from_redis: false,
        }
    }

    /// Gives `unused` messages of `budget` back to where they were taken from.
    pub async fn give_back(&mut self, connection: ConnectionId, budget: Budget, unused: i64) {
        let unused = unused.clamp(0, budget.n);
        if unused == 0 {
            return;
        }
        match (&self.redis, budget.from_redis) {
            (Some(redis), true) => {
                let n = u32::try_from(unused).unwrap_or(0);
                redis
                    .gcra_give_back(&Self::key(connection), self.emission(), n)
                    .await;
            }
            _ => {
                let rate = self.rate;
                if let Some((tokens, _)) = self.buckets.get_mut(&connection) {
                    *tokens = (*tokens + unused as f64).min(rate);
                }
            }
        }
    }

    /// The whole messages `connection` may queue at `now` from the local bucket.
    fn available(&mut self, connection: ConnectionId, now: OffsetDateTime) -> i64 {
        let rate = self.rate;
        let (tokens, last) = self.buckets.entry(connection).or_insert((rate, now));
        let elapsed = (now - *last).as_seconds_f64().max(0.0);
        *tokens = (*tokens + elapsed * rate).min(rate);
        *last = now;
        // Whole tokens only; the fraction is kept for the next round.
        tokens.floor() as i64
    }

    fn take_local(&mut self, connection: ConnectionId, n: i64) {
        if let Some((tokens, _)) = self.buckets.get_mut(&connection) {
            *tokens = (*tokens - n as f64).max(0.0);
        }
    }

    /// The rate, as a whole count (the most a connection's queue may hold in bulk sends).
    pub fn per_second(&self) -> i64 {
        self.rate as i64
    }

    fn per_second_u32(&self) -> u32 {
        u32::try_from(self.per_second()).unwrap_or(u32::MAX).max(1)
    }
}

/// The dispatcher: a round every `every` (at most a second, so the pace is kept).
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let pacer = Arc::new(Mutex::new(Pacer::shared(
        s.settings.campaign_messages_per_second,
        s.redis.clone(),
    )));
    crate::worker::spawn_periodic("campaign dispatch round failed", every, None, move || {
        let s = s.clone();
        let pacer = pacer.clone();
        async move {
            let mut pacer = pacer.lock().await;
            dispatch_round(&s, &mut pacer).await.map(|_| Next::Wait)
        }
    })
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Messages queued.
    pub queued: usize,
    /// Recipients skipped at dispatch (consent, parameters).
    pub skipped: usize,
    /// Campaigns completed.
    pub completed: usize,
}

/// One round (see the module documentation).
pub async fn dispatch_round(s: &Services, pacer: &mut Pacer) -> AppResult<Round> {
    let mut round = Round::default();
    start_due(s).await?;
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::CampaignDispatcher,
        SystemScope::new("campaigns.dispatch.lease"),
    )
    .await?;
    let now = uow.now();
    let leased = store::lease_running(uow.tx(), now, now + LEASE, CAMPAIGNS_PER_ROUND).await?;
    uow.commit().await?;
    let mut by_connection: BTreeMap<ConnectionId, Vec<Leased>> = BTreeMap::new();
    for l in leased {
        by_connection.entry(l.connection_id).or_default().push(l);
    }
    for (connection, campaigns) in by_connection {
        let result = dispatch_connection(s, pacer, connection, &campaigns, &mut round).await;
        // The leases go back whatever happened, so the next round (here or elsewhere) goes on.
        let mut tx = s
            .store
            .begin(SystemScope::new("campaigns.dispatch.release"))
            .await?;
        for c in &campaigns {
            store::release(&mut tx, c.id).await?;
        }
        tx.commit().await?;
        result?;
    }
    Ok(round)
}

/// Scheduled campaigns whose time has come start running (audited, by the dispatcher).
async fn start_due(s: &Services) -> AppResult<()> {
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::CampaignDispatcher,
        SystemScope::new("campaigns.dispatch.due"),
    )
    .await?;
    let now = uow.now();
    let due = store::start_due(uow.tx(), now).await?;
    for (tenant, id) in due {
        uow.set_tenant(tenant);
        uow.audit(
            uow.entry("campaign.running")
                .target("campaign", id)
                .metadata(json!({ "from": "scheduled", "to": "running" })),
        )
        .await?;
    }
    uow.commit().await
}

async fn dispatch_connection(
    s: &Services,
    pacer: &mut Pacer,
    connection: ConnectionId,
    campaigns: &[Leased],
    round: &mut Round,
) -> AppResult<()> {
    let now = s.clock.now();
    let mut tx = s
        .store
        .begin_read(SystemScope::new("campaigns.dispatch.backlog"))
        .await?;
    let backlog = palisade_store::send_queue::bulk_backlog(&mut tx, connection).await?;
    drop(tx);
    // Never more than the queue has room for; what the campaigns do not use goes back.
    let room = (pacer.per_second() * BACKLOG_SECONDS - backlog).max(0);
    let budget = pacer.take(connection, room, now).await;
    let mut left = budget.n;
    let mut result = Ok(());
    for l in campaigns {
        let (queued, skipped, finished) = match dispatch_campaign(s, l, left).await {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        left -= queued;
        round.queued += usize::try_from(queued).unwrap_or(0);
        round.skipped += skipped;
        if finished {
            match complete(s, l.tenant_id, l.id).await {
                Ok(true) => round.completed += 1,
                Ok(false) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    pacer.give_back(connection, budget, left).await;
    result
}

/// Queues up to `budget` messages of one campaign. Returns (queued, skipped, whether no
/// pending recipient was left to take).
async fn dispatch_campaign(s: &Services, l: &Leased, budget: i64) -> AppResult<(i64, usize, bool)> {
    // The tenant comes from the campaign leased above (see the review note in `auth`).
    let scope = TenantScope::from_verified_credential(l.tenant_id);
    let mut tx = s.store.begin_read(scope).await?;
    let Some(campaign) = store::find(&mut tx, l.id).await? else {
        return Ok((0, 0, false));
    };
    if campaign.status != CampaignStatus::Running {
        return Ok((0, 0, false));
    }
    let template = palisade_store::templates::find_by_name(
        &mut tx,
        campaign.connection_id,
        &campaign.template_name,
    )
    .await?
    .into_iter()
    .find(|t| t.language == campaign.template_language);
    let (header, marketing) = template.map_or((0, true), |t| {
        (t.header_params, t.category == TemplateCategory::Marketing)
    });
    // Skipped recipients cost no budget: take a few more than the budget so a round is not
    // spent on them alone.
    let want = if budget > 0 { budget + 50 } else { 0 };
    let pending = store::pending(&mut tx, l.id, want).await?;
    drop(tx);
    let exhausted = i64::try_from(pending.len()).unwrap_or(i64::MAX) < want || want == 0;
    let mut queued = 0;
    let mut skipped = 0;
    for contact in pending {
        if queued >= budget {
            return Ok((queued, skipped, false));
        }
        match dispatch_one(s, l.tenant_id, &campaign, contact, header, marketing).await? {
            Dispatched::Queued => queued += 1,
            Dispatched::Skipped => skipped += 1,
            Dispatched::Raced => {}
            Dispatched::Blocked(why) => {
                tracing::warn!(campaign = %campaign.id, reason = %why, "campaign cannot send; it is paused and its recipients wait");
                let scope = TenantScope::from_verified_credential(l.tenant_id);
                super::pause_blocked(s, scope, campaign.id, &why).await?;
                return Ok((queued, skipped, false));
            }
        }
    }
    // With no budget this round nothing was looked at: not finished.
    Ok((queued, skipped, exhausted && budget > 0))
}

enum Dispatched {
    Queued,
    Skipped,
    /// Another dispatcher took the recipient.
    Raced,
    /// The send path refuses the campaign's messages now (connection disconnected, template
    /// no longer approved): the recipient stays pending and the campaign is paused
    /// ([`super::pause_blocked`]).
    Blocked(String),
}

/// One recipient in one unit of work (see the module documentation).
async fn dispatch_one(
    s: &Services,
    tenant: TenantId,
    campaign: &Campaign,
    contact_id: ContactId,
    header: i64,
    marketing: bool,
) -> AppResult<Dispatched> {
    let scope = TenantScope::from_verified_credential(tenant);
    let mut uow = UnitOfWork::system(s, SystemActor::CampaignDispatcher, scope).await?;
    let now = uow.now();
    let contact = palisade_store::contacts::find(uow.tx(), contact_id).await?;
    let skip = match &contact {
        None => Some("contact_deleted"),
        Some(c) if c.consent.is_opted_out() => Some("opted_out"),
        Some(c) if marketing && !c.consent.marketing_opt_in() => Some("no_marketing_consent"),
        Some(_) => None,
    };
    let values = contact
        .as_ref()
        .and_then(|c| parameter_values(&campaign.parameters, c));
    let (Some(contact), None, Some(values)) = (contact, skip, values) else {
        let reason = skip.unwrap_or("missing_parameter");
        if !store::skip_recipient(uow.tx(), campaign.id, contact_id, reason, now).await? {
            return Ok(Dispatched::Raced);
        }
        uow.commit().await?;
        return Ok(Dispatched::Skipped);
    };
    let conversation = palisade_store::conversations::open_for_outbound(
        uow.tx(),
        contact.id,
        campaign.connection_id,
        now,
    )
    .await?;
    let out = Outgoing::Template {
        name: campaign.template_name.clone(),
        language: Value::String(campaign.template_language.clone()),
        components: components(&values, header),
    };
    let m = match queue_message_with(&mut uow, conversation, out, None, SendPriority::Bulk).await {
        Ok(m) => m,
        Err(
            e @ (AppError::Validation { .. }
            | AppError::Unprocessable { .. }
            | AppError::Conflict { .. }
            | AppError::NotFound(_)),
        ) => return Ok(Dispatched::Blocked(e.to_string())),
        Err(e) => return Err(e),
    };
    if !store::claim_recipient(uow.tx(), campaign.id, contact_id, m.id, now).await? {
        // Dropped without commit: the message and its queue row are rolled back.
        return Ok(Dispatched::Raced);
    }
    uow.commit().await?;
    Ok(Dispatched::Queued)
}

/// Completes the campaign if it is running with no pending recipient left.
async fn complete(s: &Services, tenant: TenantId, id: CampaignId) -> AppResult<bool> {
    let scope = TenantScope::from_verified_credential(tenant);
    let mut uow = UnitOfWork::system(s, SystemActor::CampaignDispatcher, scope).await?;
    let now = uow.now();
    if !store::complete_if_done(uow.tx(), id, now).await? {
        return Ok(false);
    }
    let Some(c) = store::find(uow.tx(), id).await? else {
        return Ok(false);
    };
    uow.audit(
        uow.entry("campaign.completed")
            .target("campaign", id)
            .metadata(json!({ "from": "running", "to": "completed" })),
    )
    .await?;
    uow.emit(EventType::CampaignCompleted, &super::CampaignView::from(&c))
        .await?;
    uow.commit().await?;
    Ok(true)
}
