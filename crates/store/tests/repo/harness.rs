//! A fresh, migrated database per test, and the fixtures most repositories need (a tenant, a
//! user, a connection, a conversation).
//!
//! PostgreSQL: a new database on the server named by `PALISADE_TEST_POSTGRES_URL`, migrated as
//! that (owner) role and used through `palisade_test_app`, a login role with no SUPERUSER and no
//! BYPASSRLS that switches to `palisade_app` as the application does. The same roles as
//! `palisade-testkit` creates; that crate starts the whole application, which the store's tests
//! must not depend on, so the few lines that create a database are repeated here.
//!
//! This is the one file of the store's tests that builds [`TenantScope`]s (the scan in
//! `core::auth` allows it): the scope stands for a credential the auth layer would have verified.

use palisade_domain::{
    ConnectionId, ConnectionStatus, ContactId, ConversationId, Role, TenantId, UserId,
};
use palisade_store::contacts::{upsert_contacts, Sender};
use palisade_store::conversations::touch_conversations;
use palisade_store::users::User;
use palisade_store::whatsapp_connections::Connection;
use palisade_store::{tenants, users, whatsapp_connections};
use palisade_store::{DatabaseSettings, Store, SystemScope, TenantScope, Tx};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio::sync::OnceCell;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

const PG_ENV: &str = "PALISADE_TEST_POSTGRES_URL";
const PG_TEST_LOGIN_ROLE: &str = "palisade_test_app";

impl Db {
    pub fn postgres_url() -> Option<String> {
        std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
    }
}

/// A fixed instant, so that what is read back can be compared with what was written
/// (PostgreSQL keeps microseconds; this has none finer).
pub fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-03-02 10:00:00 UTC)
}

/// The scope a verified credential of `tenant` would give.
pub fn scope(tenant: TenantId) -> TenantScope {
    TenantScope::from_verified_credential(tenant)
}

enum Owner {
    Sqlite { url: String },
    Postgres { admin_url: String, name: String },
}

/// A migrated database and the store on it.
pub struct TestStore {
    pub store: Store,
    pub db: Db,
    owner: Owner,
    _dir: tempfile::TempDir,
}

static PG_ROLES: OnceCell<()> = OnceCell::const_new();

fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("PALISADE_TEST_POSTGRES_URL is not a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn with_user(url: &str, user: &str) -> String {
    let mut u = url::Url::parse(url).expect("URL");
    u.set_username(user).expect("username");
    u.set_password(None).expect("password");
    u.to_string()
}

async fn ensure_pg_roles(admin: &str) {
    PG_ROLES
        .get_or_init(|| async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(admin)
                .await
                .expect("connect to PALISADE_TEST_POSTGRES_URL");
            // Several test processes may race here; a duplicate is fine.
            for stmt in [
                "CREATE ROLE palisade_app NOLOGIN NOSUPERUSER NOBYPASSRLS".to_owned(),
                format!("CREATE ROLE {PG_TEST_LOGIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
                format!("GRANT palisade_app TO {PG_TEST_LOGIN_ROLE}"),
            ] {
                let _ = sqlx::raw_sql(&stmt).execute(&mut c).await;
            }
        })
        .await;
}

impl TestStore {
    pub async fn new(db: Db) -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let (settings, owner) = match db {
            Db::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
                let settings = DatabaseSettings {
                    url: url.clone(),
                    migration_url: None,
                    max_connections: 4,
                };
                (settings, Owner::Sqlite { url })
            }
            Db::Postgres => {
                let base = Db::postgres_url().expect("set PALISADE_TEST_POSTGRES_URL");
                ensure_pg_roles(&base).await;
                let name = format!("palisade_store_{}", Uuid::new_v4().simple());
                {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&base).await.expect("connect");
                    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                        .execute(&mut c)
                        .await
                        .expect("create database");
                }
                let admin_url = with_database(&base, &name);
                let settings = DatabaseSettings {
                    url: with_user(&admin_url, PG_TEST_LOGIN_ROLE),
                    migration_url: Some(admin_url.clone()),
                    max_connections: 4,
                };
                (settings, Owner::Postgres { admin_url, name })
            }
        };
        Store::migrate(&settings).await.expect("migrate");
        let store = Store::connect(&settings).await.expect("connect");
        assert_eq!(
            store.unsafe_role_reason().await.unwrap(),
            None,
            "the tests must run as a role that row-level security binds"
        );
        TestStore {
            store,
            db,
            owner,
            _dir: dir,
        }
    }

    /// SQLite: the database file (without its WAL); `None` on PostgreSQL.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.owner {
            Owner::Sqlite { url } => url.strip_prefix("sqlite://").map(Into::into),
            Owner::Postgres { .. } => None,
        }
    }

    /// A write transaction for system work.
    pub async fn system(&self) -> Tx<SystemScope> {
        self.store
            .begin(SystemScope::new("store tests"))
            .await
            .unwrap()
    }

    /// A write transaction for `tenant`.
    pub async fn tenant(&self, tenant: TenantId) -> Tx<TenantScope> {
        self.store.begin(scope(tenant)).await.unwrap()
    }

    /// Runs SQL as the database's owner, past the application's role (fault injection).
    pub async fn execute_as_owner(&self, sql: &str) {
        use sqlx::Connection;
        match &self.owner {
            Owner::Sqlite { url } => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Owner::Postgres { admin_url, .. } => {
                let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// PostgreSQL only: runs `setup` (any statements) and then `query` on one connection as the
    /// database's owner, and returns the first column of `query`'s rows, one line each (e.g.
    /// `setup` prepares a statement and `query` is `EXPLAIN EXECUTE` of it).
    pub async fn lines_as_owner(&self, setup: &str, query: &str) -> String {
        use sqlx::Connection;
        let Owner::Postgres { admin_url, .. } = &self.owner else {
            panic!("lines_as_owner is for PostgreSQL");
        };
        let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
        sqlx::raw_sql(setup).execute(&mut c).await.unwrap();
        let lines: Vec<String> = sqlx::query_scalar(query).fetch_all(&mut c).await.unwrap();
        lines.join("\n")
    }

    /// A new active tenant, committed.
    pub async fn new_tenant(&self, name: &str) -> TenantId {
        let id = TenantId::new();
        let mut tx = self.tenant(id).await;
        tenants::insert(&mut tx, name, now()).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// A new admin of `tenant`, committed.
    pub async fn new_user(&self, tenant: TenantId, email: &str) -> User {
        let u = user(tenant, email);
        let mut tx = self.tenant(tenant).await;
        users::insert(&mut tx, &u).await.unwrap();
        tx.commit().await.unwrap();
        u
    }

    /// A new active connection of `tenant` for `phone_number_id`, created by `by`, committed.
    pub async fn new_connection(
        &self,
        tenant: TenantId,
        by: UserId,
        phone_number_id: &str,
    ) -> Connection {
        let c = connection(tenant, by, phone_number_id);
        let mut tx = self.tenant(tenant).await;
        whatsapp_connections::insert(&mut tx, &c).await.unwrap();
        tx.commit().await.unwrap();
        c
    }

    /// The conversation inbound processing opens for a message from `phone` on `connection`
    /// (the contact created with it), committed. Returns (contact id, conversation id).
    pub async fn new_conversation(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
        phone: &str,
    ) -> (ContactId, ConversationId) {
        let mut tx = self.system().await;
        let sender = Sender {
            phone: phone.to_owned(),
            wa_id: phone.trim_start_matches('+').to_owned(),
            profile_name: Some("Ana".into()),
        };
        let contacts = upsert_contacts(&mut tx, tenant, &[sender], now())
            .await
            .unwrap();
        let contact = contacts.ids[phone];
        let latest = HashMap::from([(contact, now())]);
        let conversations = touch_conversations(&mut tx, tenant, connection, &latest, now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (contact, conversations[&contact].id())
    }

    /// Tenant, admin, active connection and one conversation: what message tests start from.
    pub async fn conversation_fixture(&self, phone_number_id: &str) -> Fixture {
        let tenant = self.new_tenant("Acme").await;
        let admin = self
            .new_user(tenant, &format!("admin-{phone_number_id}@acme.example"))
            .await;
        let connection = self.new_connection(tenant, admin.id, phone_number_id).await;
        let (contact, conversation) = self
            .new_conversation(tenant, connection.id, "+15550001111")
            .await;
        Fixture {
            tenant,
            admin,
            connection: connection.id,
            contact,
            conversation,
        }
    }
}

pub struct Fixture {
    pub tenant: TenantId,
    pub admin: User,
    pub connection: ConnectionId,
    #[allow(dead_code)]
    pub contact: ContactId,
    pub conversation: ConversationId,
}

/// An admin of `tenant` (not inserted).
pub fn user(tenant: TenantId, email: &str) -> User {
    User {
        id: UserId::new(),
        tenant_id: Some(tenant),
        email: email.to_owned(),
        name: "Admin".into(),
        role: Role::Admin,
        is_owner: false,
        password_hash: Some("$argon2id$stub".into()),
        password_changed_at: Some(now()),
        created_at: now(),
        updated_at: now(),
        deleted_at: None,
        deleted_by: None,
        email_verified_at: None,
    }
}

/// An active connection (not inserted).
pub fn connection(tenant: TenantId, by: UserId, phone_number_id: &str) -> Connection {
    Connection {
        id: ConnectionId::new(),
        tenant_id: tenant,
        display_name: "Support".into(),
        phone_number_id: phone_number_id.to_owned(),
        waba_id: "waba-1".into(),
        display_phone_number: Some("+1 555 000 0000".into()),
        verified_name: None,
        access_token_ciphertext: "sealed-token".into(),
        app_secret_ciphertext: "sealed-secret".into(),
        verify_token_hash: vec![7; 32],
        status: ConnectionStatus::Active,
        created_by: by,
        created_at: now(),
        updated_at: now(),
        disconnected_at: None,
    }
}

/// Counts rows with a query the test writes (`SELECT COUNT(*) AS n …`), in `tx`'s scope.
pub async fn count<S: palisade_store::Scope>(tx: &mut Tx<S>, sql: &str) -> i64 {
    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }
    let n: N = tx
        .fetch_one(palisade_store::Query::new(sql.to_owned()))
        .await
        .unwrap();
    n.n
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Owner::Postgres { name, .. } = &self.owner else {
            return;
        };
        let base = Db::postgres_url().unwrap_or_default();
        let name = name.clone();
        // Drop cannot await: drop the database from a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}
