//! What the secrets mailed to a user for one use have in common (email verification codes and
//! password reset tokens, see migration 0017): a row per secret with the user, the tenant
//! (none for a platform user), when it was sent and when it was used; a newer one voids the
//! older, the sending limits count those sent lately, and rows long dead are pruned. The
//! tables' own modules ([`crate::email_codes`], [`crate::password_resets`]) keep what differs:
//! how a secret is stored, found and spent.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::UserId;
use time::OffsetDateTime;

/// The tables of mailed one-time secrets (a closed list: the name goes into the SQL).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    EmailCodes,
    PasswordResets,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::EmailCodes => "email_codes",
            Table::PasswordResets => "password_resets",
        }
    }
}

#[derive(sqlx::FromRow)]
struct SentRow {
    created_at: OffsetDateTime,
}

/// Ends every unused secret of the user; returns how many.
pub(crate) async fn void_all<S: Scope>(
    tx: &mut Tx<S>,
    table: Table,
    user: UserId,
    now: OffsetDateTime,
) -> Result<u64> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(format!(
            "UPDATE {} SET used_at = $3
             WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL",
            table.name()
        ))
        .bind(user)
        .bind(tenant)
        .bind(now),
    )
    .await
}

/// When the user's secrets were sent since `since` (only those sent for `reason`, when given),
/// newest first.
pub(crate) async fn sent_since<S: Scope>(
    tx: &mut Tx<S>,
    table: Table,
    user: UserId,
    reason: Option<&str>,
    since: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>> {
    let tenant = tx.scope().tenant();
    let for_reason = if reason.is_some() {
        "AND reason = $4"
    } else {
        ""
    };
    let mut q = Query::new(format!(
        "SELECT created_at FROM {}
         WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND created_at > $3 {for_reason}
         ORDER BY created_at DESC",
        table.name()
    ))
    .bind(user)
    .bind(tenant)
    .bind(since);
    if let Some(r) = reason {
        q = q.bind(r);
    }
    let rows: Vec<SentRow> = tx.fetch_all(q).await?;
    Ok(rows.into_iter().map(|r| r.created_at).collect())
}

/// Deletes rows sent before `before` (long dead: they live minutes, and the sending limits
/// look back an hour). Returns how many.
pub(crate) async fn prune<S: Scope>(
    tx: &mut Tx<S>,
    table: Table,
    before: OffsetDateTime,
) -> Result<u64> {
    tx.execute(
        Query::new(format!(
            "DELETE FROM {} WHERE created_at < $1",
            table.name()
        ))
        .bind(before),
    )
    .await
}
