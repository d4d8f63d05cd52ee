//! The audit log: append-only, hash-chained, written in the same transaction as the change it
//! records.
//!
//! Threat: an insider or intruder with database access rewrites history. Invariants:
//! - There is no update or delete function here. On SQLite triggers refuse both; on PostgreSQL
//!   the application role has only SELECT and INSERT on the table.
//! - Each tenant's records (and the platform's, chain id nil) form a chain: record n stores
//!   `hash = SHA-256("palisade-audit-v1" ‖ hash(n-1) ‖ canonical JSON of record n)` and
//!   `prev_hash = hash(n-1)`, with contiguous `seq` numbers. `audit_chain_heads` keeps each
//!   chain's newest `seq` and hash; appending locks that row, so appends to one chain are
//!   serialised and a deleted tail is detectable.
//! - [`verify`] recomputes every chain and names each edited, deleted, inserted or reordered
//!   record.
//!
//! Times are truncated to microseconds before hashing: PostgreSQL stores no finer.

use crate::{Backend, Query, Result, Scope, StoreError, SystemScope, Tx};
use palisade_domain::{AuditRecordId, TenantId, UserId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEntry {
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<UserId>,
    pub actor_email: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: serde_json::Value,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// One record of the log, as stored: what it says happened (its [`AuditEntry`]), when, and its
/// place in its chain (`chain_id`, `seq`, `prev_hash`, `hash`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: AuditRecordId,
    pub created_at: OffsetDateTime,
    pub entry: AuditEntry,
    pub chain_id: Option<Uuid>,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// The row of `audit_log`, private to the store: read, then mapped to an [`AuditRecord`].
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    created_at: OffsetDateTime,
    actor_id: Option<Uuid>,
    actor_email: Option<String>,
    actor_role: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    metadata: sqlx::types::Json<serde_json::Value>,
    before: Option<sqlx::types::Json<serde_json::Value>>,
    after: Option<sqlx::types::Json<serde_json::Value>>,
    chain_id: Option<Uuid>,
    seq: Option<i64>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: AuditRecordId::from(r.id),
            created_at: r.created_at,
            entry: AuditEntry {
                tenant_id: r.tenant_id.map(TenantId::from),
                actor_id: r.actor_id.map(UserId::from),
                actor_email: r.actor_email,
                actor_role: r.actor_role,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                ip: r.ip,
                user_agent: r.user_agent,
                request_id: r.request_id,
                metadata: r.metadata.0,
                before: r.before.map(|v| v.0),
                after: r.after.map(|v| v.0),
            },
            chain_id: r.chain_id,
            seq: r.seq,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

fn records(rows: Vec<AuditRow>) -> Vec<AuditRecord> {
    rows.into_iter().map(AuditRecord::from).collect()
}

const COLUMNS: &str = "id, tenant_id, created_at, actor_id, actor_email, actor_role, action, \
    target_type, target_id, ip, user_agent, request_id, metadata, before, after, chain_id, seq, \
    prev_hash, hash";

/// The chain a tenant's records belong to; platform events use the nil UUID.
pub fn chain_of(tenant: Option<TenantId>) -> Uuid {
    tenant.map_or(Uuid::nil(), |t| t.as_uuid())
}

fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// The hash of a record given its predecessor's hash.
pub fn record_hash(prev_hash: &str, r: &AuditRecord) -> String {
    let e = &r.entry;
    let canonical = serde_json::json!({
        "seq": r.seq,
        "id": r.id.as_uuid(),
        "tenant_id": e.tenant_id.map(|t| t.as_uuid()),
        "created_at": micros(r.created_at).unix_timestamp_nanos().to_string(),
        "actor_id": e.actor_id.map(|a| a.as_uuid()),
        "actor_email": e.actor_email,
        "actor_role": e.actor_role,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "request_id": e.request_id,
        "metadata": e.metadata,
        "before": e.before,
        "after": e.after,
    });
    let mut h = Sha256::new();
    h.update(b"palisade-audit-v1\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[derive(sqlx::FromRow)]
struct Head {
    seq: i64,
    hash: String,
}

pub async fn append<S: Scope>(
    tx: &mut Tx<S>,
    e: &AuditEntry,
    now: OffsetDateTime,
) -> Result<AuditRecordId> {
    if let Some(scope_tenant) = tx.scope().tenant() {
        if e.tenant_id != Some(scope_tenant) {
            return Err(StoreError::Integrity(
                "audit entry outside the scope's tenant".into(),
            ));
        }
    }
    let tenant = e.tenant_id;
    let chain = chain_of(tenant);
    // Takes (and on PostgreSQL locks until commit) the chain's head row.
    let head: Head = tx
        .fetch_one(
            Query::new(
                "INSERT INTO audit_chain_heads (chain_id, tenant_id, seq, hash) VALUES ($1, $2, 0, '')
                 ON CONFLICT (chain_id) DO UPDATE SET seq = audit_chain_heads.seq
                 RETURNING seq, hash",
            )
            .bind(chain)
            .bind(tenant),
        )
        .await?;
    let metadata = if e.metadata.is_null() {
        serde_json::json!({})
    } else {
        e.metadata.clone()
    };
    let mut r = AuditRecord {
        id: AuditRecordId::new(),
        created_at: micros(now),
        entry: AuditEntry {
            metadata,
            ..e.clone()
        },
        chain_id: Some(chain),
        seq: Some(head.seq + 1),
        prev_hash: Some(head.hash.clone()),
        hash: None,
    };
    let hash = record_hash(&head.hash, &r);
    r.hash = Some(hash.clone());
    let values =
        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
    // PostgreSQL writes the record and moves the chain head in one statement (one round trip
    // fewer on every audited change); SQLite has no data-modifying CTEs, and no round trips.
    let sql = match tx.backend() {
        Backend::Postgres => format!(
            "WITH appended AS (INSERT INTO audit_log ({COLUMNS}) VALUES {values} RETURNING seq)
             UPDATE audit_chain_heads SET seq = (SELECT seq FROM appended), hash = $19 WHERE chain_id = $16"
        ),
        Backend::Sqlite => format!("INSERT INTO audit_log ({COLUMNS}) VALUES {values}"),
    };
    tx.execute(
        Query::new(sql)
            .bind(r.id)
            .bind(tenant)
            .bind(r.created_at)
            .bind(r.entry.actor_id)
            .bind(r.entry.actor_email.clone())
            .bind(r.entry.actor_role.clone())
            .bind(r.entry.action.as_str())
            .bind(r.entry.target_type.clone())
            .bind(r.entry.target_id.clone())
            .bind(r.entry.ip.clone())
            .bind(r.entry.user_agent.clone())
            .bind(r.entry.request_id.clone())
            .bind(r.entry.metadata.clone())
            .bind(r.entry.before.clone())
            .bind(r.entry.after.clone())
            .bind(chain)
            .bind(r.seq)
            .bind(r.prev_hash.clone())
            .bind(hash.as_str()),
    )
    .await?;
    if tx.backend() == Backend::Sqlite {
        tx.execute(
            Query::new("UPDATE audit_chain_heads SET seq = $2, hash = $3 WHERE chain_id = $1")
                .bind(chain)
                .bind(r.seq)
                .bind(hash),
        )
        .await?;
    }
    Ok(r.id)
}

/// What to search for. `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Narrow to one tenant (super admins); tenant scopes are always narrowed to their own.
    pub tenant: Option<TenantId>,
    /// An exact action, or a prefix when it ends in `*` (`auth.login.*`).
    pub action: Option<String>,
    pub actor_id: Option<UserId>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Free text, matched case-insensitively in action, actor email, target id and metadata.
    pub q: Option<String>,
    /// Only records older than this id (the cursor: ids are time-ordered).
    pub before_id: Option<AuditRecordId>,
    pub limit: i64,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Records matching `f`, newest first.
pub async fn search<S: Scope>(tx: &mut Tx<S>, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
    let scope_tenant = tx.scope().tenant().map(|t| t.as_uuid());
    let (action_exact, action_prefix) = match f.action.as_deref() {
        Some(a) if a.ends_with('*') => (
            None,
            Some(format!("{}%", like_escape(a.trim_end_matches('*')))),
        ),
        Some(a) => (Some(a.to_owned()), None),
        None => (None, None),
    };
    let q =
        f.q.as_deref()
            .map(|q| format!("%{}%", like_escape(&q.to_lowercase())));
    let text_match = match tx.backend() {
        Backend::Postgres => {
            "(lower(action) LIKE $9 ESCAPE '\\' OR lower(coalesce(actor_email, '')) LIKE $9 ESCAPE '\\'
              OR lower(coalesce(target_id, '')) LIKE $9 ESCAPE '\\' OR lower(metadata::text) LIKE $9 ESCAPE '\\')"
        }
        Backend::Sqlite => {
            "(lower(action) LIKE $9 ESCAPE '\\' OR lower(coalesce(actor_email, '')) LIKE $9 ESCAPE '\\'
              OR lower(coalesce(target_id, '')) LIKE $9 ESCAPE '\\' OR lower(metadata) LIKE $9 ESCAPE '\\')"
        }
    };
    let rows = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM audit_log
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR tenant_id = $2)
               AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR action LIKE $4 ESCAPE '\\')
               AND ($5 IS NULL OR actor_id = $5) AND ($6 IS NULL OR target_type = $6)
               AND ($7 IS NULL OR target_id = $7) AND ($8 IS NULL OR created_at >= $8)
               AND ($9 IS NULL OR {text_match}) AND ($10 IS NULL OR created_at < $10)
               AND ($11 IS NULL OR id < $11)
             ORDER BY id DESC LIMIT $12"
            ))
            .bind(scope_tenant)
            .bind(f.tenant)
            .bind(action_exact)
            .bind(action_prefix)
            .bind(f.actor_id)
            .bind(f.target_type.clone())
            .bind(f.target_id.clone())
            .bind(f.from)
            .bind(q)
            .bind(f.to)
            .bind(f.before_id)
            .bind(f.limit),
        )
        .await?;
    Ok(records(rows))
}

/// When the platform's chain last recorded `action` (e.g. `platform.backup.created`), if ever:
/// one probe of the `(tenant_id, action, id)` index (ids are time-ordered).
pub async fn last_platform_action(
    tx: &mut Tx<SystemScope>,
    action: &str,
) -> Result<Option<OffsetDateTime>> {
    #[derive(sqlx::FromRow)]
    struct At {
        created_at: OffsetDateTime,
    }
    let row: Option<At> = tx
        .fetch_optional(
            Query::new(
                "SELECT created_at FROM audit_log WHERE tenant_id IS NULL AND action = $1
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(action.to_owned()),
        )
        .await?;
    Ok(row.map(|r| r.created_at))
}

/// The scope's newest records.
pub async fn recent<S: Scope>(tx: &mut Tx<S>, limit: i64) -> Result<Vec<AuditRecord>> {
    search(
        tx,
        &AuditFilter {
            limit,
            ..AuditFilter::default()
        },
    )
    .await
}

/// One chain's verification result.
#[derive(Debug, Clone)]
pub struct ChainReport {
    pub chain_id: Uuid,
    pub records: u64,
    /// Empty when the chain is intact.
    pub problems: Vec<String>,
}

/// Recomputes every chain (or only `tenant`'s) and reports what does not add up.
pub async fn verify(
    tx: &mut Tx<SystemScope>,
    tenant: Option<TenantId>,
) -> Result<Vec<ChainReport>> {
    #[derive(sqlx::FromRow)]
    struct ChainId {
        chain_id: Uuid,
    }
    let filter = tenant.map(|t| chain_of(Some(t)));
    let mut chains: Vec<Uuid> = tx
        .fetch_all::<ChainId>(
            Query::new(
                "SELECT chain_id FROM audit_chain_heads WHERE ($1 IS NULL OR chain_id = $1)
                 UNION SELECT chain_id FROM audit_log WHERE chain_id IS NOT NULL AND ($1 IS NULL OR chain_id = $1)",
            )
            .bind(filter),
        )
        .await?
        .into_iter()
        .map(|c| c.chain_id)
        .collect();
    chains.sort();
    chains.dedup();
    let mut reports = Vec::new();
    for chain in chains {
        reports.push(verify_chain(tx, chain).await?);
    }
    // Records that carry no chain position were not written by the application.
    let stray: Vec<AuditRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM audit_log WHERE (chain_id IS NULL OR seq IS NULL)
                 AND ($1 IS NULL OR tenant_id = $1)"
            ))
            .bind(tenant),
        )
        .await?;
    if !stray.is_empty() {
        reports.push(ChainReport {
            chain_id: Uuid::max(),
            records: stray.len() as u64,
            problems: stray
                .iter()
                .map(|r| {
                    format!(
                        "record {} ({}) has no chain position: inserted outside the application",
                        r.id, r.action
                    )
                })
                .collect(),
        });
    }
    Ok(reports)
}

async fn verify_chain(tx: &mut Tx<SystemScope>, chain: Uuid) -> Result<ChainReport> {
    let mut problems = Vec::new();
    let mut expected_seq: i64 = 1;
    let mut prev_hash = String::new();
    let mut count: u64 = 0;
    let mut after: i64 = 0;
    loop {
        let page: Vec<AuditRecord> = records(
            tx.fetch_all(
                Query::new(format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000"
                ))
                .bind(chain)
                .bind(after),
            )
            .await?,
        );
        let Some(last) = page.last() else { break };
        after = last.seq.unwrap_or(after + 1);
        for r in &page {
            count += 1;
            let seq = r.seq.unwrap_or(0);
            if seq > expected_seq {
                problems.push(format!(
                    "records {expected_seq}..{} are missing: deleted",
                    seq - 1
                ));
            }
            let stored_prev = r.prev_hash.clone().unwrap_or_default();
            if stored_prev != prev_hash {
                problems.push(format!(
                    "record {seq} ({}) does not follow record {}: inserted or reordered",
                    r.id,
                    seq - 1
                ));
            }
            let recomputed = record_hash(&stored_prev, r);
            if Some(&recomputed) != r.hash.as_ref() {
                problems.push(format!(
                    "record {seq} ({}, {}) was edited: its hash does not match",
                    r.id, r.entry.action
                ));
            }
            prev_hash = r.hash.clone().unwrap_or_default();
            expected_seq = seq + 1;
        }
    }
    let head: Option<Head> = tx
        .fetch_optional(
            Query::new("SELECT seq, hash FROM audit_chain_heads WHERE chain_id = $1").bind(chain),
        )
        .await?;
    match head {
        Some(h) if h.seq != expected_seq - 1 || h.hash != prev_hash => problems.push(format!(
            "the chain ends at record {} but its head says {}: newest records deleted or the head was altered",
            expected_seq - 1,
            h.seq
        )),
        None if count > 0 => problems.push("the chain's head record is missing".into()),
        _ => {}
    }
    Ok(ChainReport {
        chain_id: chain,
        records: count,
        problems,
    })
}
