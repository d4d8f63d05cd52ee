//! Test harness: the real application on a random port, a fresh database per test, HTTP clients.
//!
//! `spawn_app(Db::Sqlite)` runs against a new SQLite file; `Db::Postgres` against a new
//! database on the server named by `PALISADE_TEST_POSTGRES_URL`, migrated as that (owner) role
//! and served through `palisade_test_app`, a login role with no SUPERUSER and no BYPASSRLS, so
//! row-level security binds every test. Tests drive the app over HTTP like any client.
//!
//! The clock is a `ManualClock`, so expiry and lockout tests move time instead of sleeping.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mail;
pub mod smtp;
pub use mail::TestMail;
pub use smtp::SmtpSink;

use palisade::config::{Environment, RawConfig};
use palisade::{Application, Config};
use palisade_core::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::OnceCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const PG_ENV: &str = "PALISADE_TEST_POSTGRES_URL";
pub const PG_TEST_LOGIN_ROLE: &str = "palisade_test_app";

impl Db {
    pub fn postgres_url() -> Option<String> {
        std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
    }
}

/// The Redis the tests that need one use (CI sets it); those tests skip when it is unset.
pub const REDIS_ENV: &str = "PALISADE_TEST_REDIS_URL";

pub fn redis_url() -> Option<String> {
    std::env::var(REDIS_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Points a test app at the test Redis under a key prefix of its own, so tests running at once
/// never share a limit or a channel; peers (`spawn_peer`) copy the configuration and so share
/// the prefix with their first node. Panics when `PALISADE_TEST_REDIS_URL` is unset: check
/// [`redis_url`] first.
pub fn use_redis(raw: &mut RawConfig) {
    let url = redis_url().expect("set PALISADE_TEST_REDIS_URL for Redis tests");
    raw.redis_url = Some(url.into());
    raw.redis_key_prefix = format!("palisade-test-{}", uuid::Uuid::new_v4().simple());
}

/// A running application and what a test needs to poke at it.
pub struct TestApp {
    pub base_url: String,
    /// `http://<metrics listener>/metrics` when the config sets `metrics_listen`.
    pub metrics_url: Option<String>,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    pub services: palisade_core::Services,
    /// The configuration the app runs with (for starting a peer on the same database).
    pub config: RawConfig,
    /// The transport this node's mail worker sends through (for driving
    /// `palisade_core::mail::worker::deliver_due` directly).
    pub mailer: Arc<palisade_core::mail::Mailer>,
    /// Where this node and its peers write delivered mails (`<data dir>/mail/`), shared with
    /// the peers so `mails_to` finds a mail whichever node sent it.
    mail_dirs: Arc<std::sync::Mutex<Vec<std::path::PathBuf>>>,
    /// Whether dropping this app drops its PostgreSQL database (false for peers).
    owns_db: bool,
    _data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The database behind a test app, for direct inspection and fault injection.
pub enum TestDb {
    Sqlite {
        url: String,
    },
    Postgres {
        admin_url: String,
        app_url: String,
        name: String,
    },
}

impl TestDb {
    pub fn kind(&self) -> Db {
        match self {
            TestDb::Sqlite { .. } => Db::Sqlite,
            TestDb::Postgres { .. } => Db::Postgres,
        }
    }

    /// Runs SQL as the database owner (bypassing the application's role): for fault injection
    /// and for checking what is stored.
    pub async fn execute_as_owner(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            TestDb::Sqlite { url } => {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(url).await?;
                sqlx::raw_sql(sql).execute(&mut c).await?;
            }
            TestDb::Postgres { admin_url, .. } => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(admin_url).await?;
                sqlx::raw_sql(sql).execute(&mut c).await?;
            }
        }
        Ok(())
    }

    /// Counts rows as the owner (sees every tenant).
    pub async fn count_as_owner(&self, sql: &str) -> anyhow::Result<i64> {
        use sqlx::Connection;
        Ok(match self {
            TestDb::Sqlite { url } => {
                let mut c = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut c).await?
            }
            TestDb::Postgres { admin_url, .. } => {
                let mut c = sqlx::PgConnection::connect(admin_url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut c).await?
            }
        })
    }
}

static PG_ROLES: OnceCell<()> = OnceCell::const_new();

fn with_database(url: &str, db: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("PALISADE_TEST_POSTGRES_URL is not a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn with_user(url: &str, user: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("URL");
    u.set_username(user).expect("username");
    u.set_password(None).expect("password");
    u.to_string()
}

async fn ensure_pg_roles(admin: &str) {
    PG_ROLES
        .get_or_init(|| async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(admin).await.expect("connect to PALISADE_TEST_POSTGRES_URL");
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

/// Configuration for tests: everything on loopback, limits off unless a test turns them on.
pub fn test_config(data_dir: &std::path::Path) -> RawConfig {
    RawConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        env: Environment::Development,
        rate_limit_api_per_minute: 0,
        rate_limit_login_per_minute: 0,
        rate_limit_register_per_hour: 0,
        rate_limit_webhook_failures_per_minute: 0,
        login_failure_delay_ms: 1,
        database_max_connections: 4,
        password_hash_concurrency: Some(2),
        ..RawConfig::default()
    }
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Starts the application with `tweak` applied to the test configuration.
pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut RawConfig)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut raw = test_config(data_dir.path());
    let test_db = match db {
        Db::Sqlite => {
            let url = format!("sqlite://{}", data_dir.path().join("test.sqlite").display());
            raw.database_url = Some(url.clone());
            TestDb::Sqlite { url }
        }
        Db::Postgres => {
            let base =
                Db::postgres_url().expect("set PALISADE_TEST_POSTGRES_URL for PostgreSQL tests");
            ensure_pg_roles(&base).await;
            let name = format!("palisade_test_{}", uuid::Uuid::new_v4().simple());
            {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&base).await.expect("connect");
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .expect("create database");
            }
            let admin_url = with_database(&base, &name);
            let app_url = with_user(&admin_url, PG_TEST_LOGIN_ROLE);
            raw.database_url = Some(app_url.clone());
            raw.database_migration_url = Some(admin_url.clone());
            TestDb::Postgres {
                admin_url,
                app_url,
                name,
            }
        }
    };
    // Explicit keys (not generated into the data directory) so a peer node can share them.
    raw.signing_keys = Some(palisade_core::crypto::generate_ring_text().into());
    raw.encryption_keys = Some(palisade_core::crypto::generate_ring_text().into());
    tweak(&mut raw);
    start(raw, test_db, data_dir, true, Arc::default()).await
}

async fn start(
    raw: RawConfig,
    db: TestDb,
    data_dir: tempfile::TempDir,
    owns_db: bool,
    mail_dirs: Arc<std::sync::Mutex<Vec<std::path::PathBuf>>>,
) -> TestApp {
    mail_dirs
        .lock()
        .expect("mail dirs")
        .push(raw.data_dir.join("mail"));
    let config = Config::from_raw(raw.clone()).expect("test config");
    let clock = Arc::new(ManualClock::default());
    let app = Application::build_with_clock(&config, clock.clone())
        .await
        .expect("build app");
    let addr = app.local_addr().expect("addr");
    let metrics_url = app.metrics_addr().map(|a| format!("http://{a}/metrics"));
    let services = app.services().clone();
    let mailer = app.mailer();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base_url: format!("http://{addr}"),
        metrics_url,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        clock,
        db,
        services,
        config: raw,
        mailer,
        mail_dirs,
        owns_db,
        _data_dir: data_dir,
        shutdown: Some(tx),
    }
}

impl TestApp {
    /// A second server process on the same database and keys, as another node behind a load
    /// balancer would be. Its caches are its own.
    pub async fn spawn_peer(&self) -> TestApp {
        self.spawn_peer_with(|_| {}).await
    }

    /// A peer node (or this node restarted) with `tweak` applied to its configuration, e.g. a
    /// signing key appended to the ring.
    pub async fn spawn_peer_with(&self, tweak: impl FnOnce(&mut RawConfig)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut raw = self.config.clone();
        raw.data_dir = data_dir.path().to_path_buf();
        tweak(&mut raw);
        let db = match &self.db {
            TestDb::Sqlite { url } => TestDb::Sqlite { url: url.clone() },
            TestDb::Postgres {
                admin_url,
                app_url,
                name,
            } => TestDb::Postgres {
                admin_url: admin_url.clone(),
                app_url: app_url.clone(),
                name: name.clone(),
            },
        };
        start(raw, db, data_dir, false, self.mail_dirs.clone()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (true, TestDb::Postgres { name, .. }) = (self.owns_db, &self.db) {
            let base = Db::postgres_url().unwrap_or_default();
            let name = name.clone();
            // Drop the database from a separate thread: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                            let _ = sqlx::raw_sql(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A response: status, headers and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A signed-in user as the tests see them.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
    pub password: String,
}

pub const GOOD_PASSWORD: &str = "correct-orbit-lantern-quietly";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("request")).await
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Registers a tenant and its owner; panics unless it succeeds.
    pub async fn register(&self, tenant: &str, email: &str) -> Session {
        let r = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"tenant_name": tenant, "name": "Owner Person", "email": email, "password": GOOD_PASSWORD}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "register failed: {:?}",
            r.body
        );
        Session {
            access_token: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
            session_id: r.body["session_id"].as_str().unwrap().to_owned(),
            user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
            tenant_id: r.body["tenant"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            password: GOOD_PASSWORD.to_owned(),
        }
    }

    /// Signs in; panics unless it succeeds.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login failed: {:?}", r.body);
        let me = self
            .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
            .await;
        Session {
            access_token: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
            session_id: r.body["session_id"].as_str().unwrap().to_owned(),
            user_id: me.body["id"].as_str().unwrap_or_default().to_owned(),
            tenant_id: me.body["tenant_id"].as_str().unwrap_or_default().to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Creates a user with a password in the admin's tenant and signs them in.
    pub async fn add_user(&self, admin: &Session, email: &str, role: &str) -> Session {
        let r = self
            .post(
                "/api/v1/users",
                Some(&admin.access_token),
                json!({"email": email, "name": "Team Member", "role": role, "password": GOOD_PASSWORD}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create user failed: {:?}",
            r.body
        );
        self.login(email, GOOD_PASSWORD).await
    }

    /// Creates a super admin directly in the database (as the CLI does) and signs them in.
    pub async fn super_admin(&self, email: &str) -> Session {
        use palisade_store::{users, SystemScope};
        let hash = self
            .services
            .hasher
            .hash(GOOD_PASSWORD)
            .await
            .expect("hash");
        let now = time::OffsetDateTime::now_utc();
        let user = users::User::new_super_admin(email, "Platform Operator", hash, now);
        let mut tx = self
            .services
            .store
            .begin(SystemScope::new("test.super_admin"))
            .await
            .unwrap();
        users::insert(&mut tx, &user).await.unwrap();
        tx.commit().await.unwrap();
        self.login(email, GOOD_PASSWORD).await
    }
}
