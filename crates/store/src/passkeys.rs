//! Passkeys (WebAuthn credentials) and pending WebAuthn ceremonies.
//!
//! The credential itself is stored as webauthn-rs serialized it (`passkey`, JSON text); this
//! module never looks inside. Credential ids are unique across the deployment
//! (`passkeys_credential_id_key`): a second registration of the same credential comes back as
//! [`crate::StoreError::UniqueViolation`].
//!
//! Under a tenant scope every statement also binds the scope's tenant (SQLite has no row-level
//! security); a system scope (the passwordless sign-in, a super admin's rows) binds none.
//!
//! Challenges are consumed by one conditional `UPDATE … WHERE used_at IS NULL AND expires_at >
//! now … RETURNING`: of two requests presenting the same challenge, exactly one gets its state.

use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{PasskeyId, TenantId, UserId, WebauthnChallengeId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored passkey.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: PasskeyId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub name: String,
    pub credential_id: Vec<u8>,
    /// webauthn-rs's serialized `Passkey`.
    pub passkey: String,
    pub sign_count: i64,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    name: String,
    credential_id: Vec<u8>,
    passkey: String,
    sign_count: i64,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
}

impl From<PasskeyRow> for StoredPasskey {
    fn from(r: PasskeyRow) -> Self {
        StoredPasskey {
            id: r.id.into(),
            tenant_id: r.tenant_id.map(TenantId::from),
            user_id: r.user_id.into(),
            name: r.name,
            credential_id: r.credential_id,
            passkey: r.passkey,
            sign_count: r.sign_count,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

const COLUMNS: &str =
    "id, tenant_id, user_id, name, credential_id, passkey, sign_count, created_at, last_used_at";

pub async fn insert<S: Scope>(tx: &mut Tx<S>, p: &StoredPasskey) -> Result<()> {
    tx.execute(
        Query::new(format!(
            "INSERT INTO passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(p.user_id)
        .bind(p.name.as_str())
        .bind(p.credential_id.clone())
        .bind(p.passkey.as_str())
        .bind(p.sign_count)
        .bind(p.created_at)
        .bind(p.last_used_at),
    )
    .await?;
    Ok(())
}

/// The user's passkeys, oldest first.
pub async fn list_for_user<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<Vec<StoredPasskey>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<PasskeyRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1
                 AND ($2 IS NULL OR tenant_id = $2) ORDER BY created_at, id"
            ))
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(rows.into_iter().map(StoredPasskey::from).collect())
}

/// The passkey with this credential id, in any tenant: the passwordless sign-in's lookup.
pub async fn find_by_credential_id(
    tx: &mut Tx<SystemScope>,
    credential_id: &[u8],
) -> Result<Option<StoredPasskey>> {
    let row: Option<PasskeyRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
            ))
            .bind(credential_id),
        )
        .await?;
    Ok(row.map(StoredPasskey::from))
}

/// Deletes one of the user's passkeys; false when the user has no passkey with this id.
pub async fn delete_for_user<S: Scope>(
    tx: &mut Tx<S>,
    id: PasskeyId,
    user: UserId,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "DELETE FROM passkeys WHERE id = $1 AND user_id = $2
                 AND ($3 IS NULL OR tenant_id = $3)",
            )
            .bind(id)
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(n == 1)
}

/// Records a use: the updated credential, its counter and the time. Applied only while the
/// stored counter is below the new one (or the authenticator keeps no counter, 0), so of two
/// sign-ins racing with the same counter value only one is recorded; false for the other.
pub async fn record_use<S: Scope>(
    tx: &mut Tx<S>,
    id: PasskeyId,
    passkey: &str,
    sign_count: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE passkeys SET passkey = $2, sign_count = $3, last_used_at = $4
                 WHERE id = $1 AND (sign_count < $3 OR $3 = 0)
                   AND ($5 IS NULL OR tenant_id = $5)",
            )
            .bind(id)
            .bind(passkey)
            .bind(sign_count)
            .bind(now)
            .bind(tenant),
        )
        .await?;
    Ok(n == 1)
}

/// What a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// Adding a passkey to the signed-in user.
    Registration,
    /// A known user's passkeys as the second factor of a sign-in.
    Authentication,
    /// A passwordless sign-in: the credential names the user.
    Discoverable,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Registration => "registration",
            ChallengeKind::Authentication => "authentication",
            ChallengeKind::Discoverable => "discoverable",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "registration" => Some(ChallengeKind::Registration),
            "authentication" => Some(ChallengeKind::Authentication),
            "discoverable" => Some(ChallengeKind::Discoverable),
            _ => None,
        }
    }
}

/// A pending ceremony.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: WebauthnChallengeId,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub kind: ChallengeKind,
    /// webauthn-rs's serialized ceremony state.
    pub state: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// For a passkey as a second factor: the password sign-in's challenge it completes.
    pub mfa_challenge_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct ChallengeRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Option<Uuid>,
    kind: String,
    state: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    mfa_challenge_id: Option<Uuid>,
}

impl ChallengeRow {
    fn into_challenge(self) -> Option<Challenge> {
        Some(Challenge {
            id: self.id.into(),
            tenant_id: self.tenant_id.map(TenantId::from),
            user_id: self.user_id.map(UserId::from),
            kind: ChallengeKind::parse(&self.kind)?,
            state: self.state,
            created_at: self.created_at,
            expires_at: self.expires_at,
            mfa_challenge_id: self.mfa_challenge_id,
        })
    }
}

const CHALLENGE_COLUMNS: &str =
    "id, tenant_id, user_id, kind, state, created_at, expires_at, mfa_challenge_id";

pub async fn insert_challenge<S: Scope>(tx: &mut Tx<S>, c: &Challenge) -> Result<()> {
    tx.execute(
        Query::new(format!(
            "INSERT INTO webauthn_challenges ({CHALLENGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.user_id)
        .bind(c.kind.as_str())
        .bind(c.state.as_str())
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.mfa_challenge_id),
    )
    .await?;
    Ok(())
}

/// Drops the user's pending registrations (a new one replaces them: one at a time per user).
pub async fn delete_registrations<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<u64> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "DELETE FROM webauthn_challenges WHERE user_id = $1 AND kind = 'registration'
             AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(user)
        .bind(tenant),
    )
    .await
}

/// Consumes challenge `id` of one of `kinds` if it is unused and unexpired; `None` otherwise
/// (unknown, used, expired, or of another kind). One statement, so it is single-use under
/// concurrency on both databases.
pub async fn consume<S: Scope>(
    tx: &mut Tx<S>,
    id: WebauthnChallengeId,
    kinds: &[ChallengeKind],
    now: OffsetDateTime,
) -> Result<Option<Challenge>> {
    let tenant = tx.scope().tenant();
    let a = kinds.first().map_or("", |k| k.as_str());
    let b = kinds.get(1).map_or(a, |k| k.as_str());
    let row: Option<ChallengeRow> = tx
        .fetch_optional(
            Query::new(format!(
                "UPDATE webauthn_challenges SET used_at = $2
                 WHERE id = $1 AND used_at IS NULL AND expires_at > $2 AND kind IN ($3, $4)
                   AND ($5 IS NULL OR tenant_id = $5)
                 RETURNING {CHALLENGE_COLUMNS}"
            ))
            .bind(id)
            .bind(now)
            .bind(a)
            .bind(b)
            .bind(tenant),
        )
        .await?;
    Ok(row.and_then(ChallengeRow::into_challenge))
}

/// Consumes the user's pending registration (the newest, should two starts have raced).
pub async fn consume_registration<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    now: OffsetDateTime,
) -> Result<Option<Challenge>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<ChallengeRow> = tx
        .fetch_all(
            Query::new(format!(
                "UPDATE webauthn_challenges SET used_at = $2
                 WHERE user_id = $1 AND kind = 'registration' AND used_at IS NULL
                   AND expires_at > $2 AND ($3 IS NULL OR tenant_id = $3)
                 RETURNING {CHALLENGE_COLUMNS}"
            ))
            .bind(user)
            .bind(now)
            .bind(tenant),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(ChallengeRow::into_challenge)
        .max_by_key(|c| (c.created_at, c.id)))
}

/// Deletes challenges that expired before `before` (used or not): housekeeping, in bounded
/// batches so no statement holds the table long.
pub async fn prune_expired(tx: &mut Tx<SystemScope>, before: OffsetDateTime) -> Result<u64> {
    tx.execute(
        Query::new(
            "DELETE FROM webauthn_challenges WHERE id IN (
                 SELECT id FROM webauthn_challenges WHERE expires_at < $1 LIMIT 500)",
        )
        .bind(before),
    )
    .await
}
