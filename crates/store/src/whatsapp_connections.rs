//! Connected WhatsApp Business numbers. Secrets arrive here already encrypted by `core`.
//!
//! A number (Meta's `phone_number_id`) has at most one row per tenant, active or disconnected,
//! and at most one ACTIVE row across all tenants (both are unique indexes, migration 0014): a
//! disconnected number is connected again by reactivating its row ([`reactivate`]), which keeps
//! its id, its webhook URL and its conversations. Nothing looks a connection up by its number:
//! Meta's webhooks name the connection id in the URL.

use crate::{Backend, Query, Result, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{ConnectionId, ConnectionStatus, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub display_name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub access_token_ciphertext: String,
    pub app_secret_ciphertext: String,
    pub verify_token_hash: Vec<u8>,
    pub status: ConnectionStatus,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub disconnected_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    phone_number_id: String,
    waba_id: String,
    display_phone_number: Option<String>,
    verified_name: Option<String>,
    access_token_ciphertext: String,
    app_secret_ciphertext: String,
    verify_token_hash: Vec<u8>,
    status: String,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    disconnected_at: Option<OffsetDateTime>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;
    fn try_from(r: ConnectionRow) -> Result<Self> {
        Ok(Connection {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            display_name: r.display_name,
            phone_number_id: r.phone_number_id,
            waba_id: r.waba_id,
            display_phone_number: r.display_phone_number,
            verified_name: r.verified_name,
            access_token_ciphertext: r.access_token_ciphertext,
            app_secret_ciphertext: r.app_secret_ciphertext,
            verify_token_hash: r.verify_token_hash,
            status: StoreError::parse_stored(&r.status)?,
            created_by: r.created_by.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            disconnected_at: r.disconnected_at,
        })
    }
}

fn one(row: Option<ConnectionRow>) -> Result<Option<Connection>> {
    row.map(Connection::try_from).transpose()
}

const COLUMNS: &str =
    "id, tenant_id, display_name, phone_number_id, waba_id, display_phone_number, \
    verified_name, access_token_ciphertext, app_secret_ciphertext, verify_token_hash, status, \
    created_by, created_at, updated_at, disconnected_at";

pub async fn insert(tx: &mut Tx<TenantScope>, c: &Connection) -> Result<()> {
    same_tenant(tx, c)?;
    tx.execute(
        Query::new(format!(
            "INSERT INTO whatsapp_connections ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.display_name.as_str())
        .bind(c.phone_number_id.as_str())
        .bind(c.waba_id.as_str())
        .bind(c.display_phone_number.clone())
        .bind(c.verified_name.clone())
        .bind(c.access_token_ciphertext.as_str())
        .bind(c.app_secret_ciphertext.as_str())
        .bind(c.verify_token_hash.clone())
        .bind(c.status.as_str())
        .bind(c.created_by)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.disconnected_at),
    )
    .await?;
    Ok(())
}

pub async fn list(tx: &mut Tx<TenantScope>) -> Result<Vec<Connection>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<ConnectionRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_connections WHERE tenant_id = $1 ORDER BY created_at, id"
            ))
            .bind(tenant),
        )
        .await?;
    rows.into_iter().map(Connection::try_from).collect()
}

pub async fn find(tx: &mut Tx<TenantScope>, id: ConnectionId) -> Result<Option<Connection>> {
    find_locked(tx, id, "").await
}

/// [`find`], locking the row until the transaction ends, for a read-modify-write
/// ([`update_credentials`] writes the name and both secrets together): on PostgreSQL a change
/// would otherwise write back what it read before a concurrent one committed. On SQLite write
/// transactions already run one at a time.
pub async fn find_for_update(
    tx: &mut Tx<TenantScope>,
    id: ConnectionId,
) -> Result<Option<Connection>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE",
        Backend::Sqlite => "",
    };
    find_locked(tx, id, lock).await
}

async fn find_locked(
    tx: &mut Tx<TenantScope>,
    id: ConnectionId,
    lock: &str,
) -> Result<Option<Connection>> {
    let tenant = tx.scope().tenant_id();
    one(tx
        .fetch_optional::<ConnectionRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_connections WHERE id = $1 AND tenant_id = $2 {lock}"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?)
}

/// The tenant's connection of a number (active or disconnected), if any.
pub async fn find_by_phone_number_id(
    tx: &mut Tx<TenantScope>,
    phone_number_id: &str,
) -> Result<Option<Connection>> {
    let tenant = tx.scope().tenant_id();
    one(tx
        .fetch_optional::<ConnectionRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_connections WHERE tenant_id = $1 AND phone_number_id = $2"
            ))
            .bind(tenant)
            .bind(phone_number_id),
        )
        .await?)
}

/// A write of `c` only in its own tenant's scope.
fn same_tenant(tx: &Tx<TenantScope>, c: &Connection) -> Result<()> {
    if tx.scope().tenant_id() != c.tenant_id {
        return Err(StoreError::Integrity(
            "connection outside the scope's tenant".into(),
        ));
    }
    Ok(())
}

/// Makes a disconnected connection active again with `c`'s details and secrets (same id).
/// Returns false when the row is no longer disconnected (a concurrent reconnect won) or gone.
/// A number another tenant's active connection holds is a unique violation
/// (`whatsapp_connections_active_phone_number_id_key`).
pub async fn reactivate(tx: &mut Tx<TenantScope>, c: &Connection) -> Result<bool> {
    same_tenant(tx, c)?;
    Ok(tx
        .execute(
            Query::new(
                "UPDATE whatsapp_connections SET display_name = $3, waba_id = $4,
                    display_phone_number = $5, verified_name = $6, access_token_ciphertext = $7,
                    app_secret_ciphertext = $8, verify_token_hash = $9, status = 'active',
                    disconnected_at = NULL, updated_at = $10
                 WHERE id = $1 AND tenant_id = $2 AND status = 'disconnected'",
            )
            .bind(c.id)
            .bind(c.tenant_id)
            .bind(c.display_name.as_str())
            .bind(c.waba_id.as_str())
            .bind(c.display_phone_number.clone())
            .bind(c.verified_name.clone())
            .bind(c.access_token_ciphertext.as_str())
            .bind(c.app_secret_ciphertext.as_str())
            .bind(c.verify_token_hash.clone())
            .bind(c.updated_at),
        )
        .await?
        > 0)
}

/// Replaces the display name, the details from Meta and the (encrypted) secrets of `c`, in
/// whatever status it is. Returns false when the row is gone.
pub async fn update_credentials(tx: &mut Tx<TenantScope>, c: &Connection) -> Result<bool> {
    same_tenant(tx, c)?;
    Ok(tx
        .execute(
            Query::new(
                "UPDATE whatsapp_connections SET display_name = $3, display_phone_number = $4,
                    verified_name = $5, access_token_ciphertext = $6, app_secret_ciphertext = $7,
                    updated_at = $8
                 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(c.id)
            .bind(c.tenant_id)
            .bind(c.display_name.as_str())
            .bind(c.display_phone_number.clone())
            .bind(c.verified_name.clone())
            .bind(c.access_token_ciphertext.as_str())
            .bind(c.app_secret_ciphertext.as_str())
            .bind(c.updated_at),
        )
        .await?
        > 0)
}

/// A connection by id alone: Meta's webhook requests name the connection in the URL and carry
/// no credential of ours, so the lookup is system work; the caller authenticates the request
/// (verify token or signature) before trusting anything.
pub async fn find_any(tx: &mut Tx<SystemScope>, id: ConnectionId) -> Result<Option<Connection>> {
    one(tx
        .fetch_optional::<ConnectionRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_connections WHERE id = $1"
            ))
            .bind(id),
        )
        .await?)
}

pub async fn set_status(
    tx: &mut Tx<TenantScope>,
    id: ConnectionId,
    status: ConnectionStatus,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    let disconnected_at = (status == ConnectionStatus::Disconnected).then_some(now);
    Ok(tx
        .execute(
            Query::new(
                "UPDATE whatsapp_connections SET status = $3, disconnected_at = $4, updated_at = $5
                 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(tenant)
            .bind(status.as_str())
            .bind(disconnected_at)
            .bind(now),
        )
        .await?
        > 0)
}

pub async fn delete(tx: &mut Tx<TenantScope>, id: ConnectionId) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new("DELETE FROM whatsapp_connections WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant),
        )
        .await?
        > 0)
}
