//! The server fixture: the real `palisade serve` and `palisade sim` binaries as child processes.
//!
//! Each [`Server`] gets its own temporary data directory, two free loopback ports and a fresh
//! database (a SQLite file in the data directory, or a new PostgreSQL database when the test runs
//! on [`Db::Postgres`], created like the testkit does: migrated as the owner role of
//! `PALISADE_TEST_POSTGRES_URL`, served through `palisade_test_app`, a login role without
//! SUPERUSER or BYPASSRLS). The server is configured as a developer would run it locally, with
//! the Graph API pointed at the simulator, the public URL on `http://localhost:<port>` (a secure
//! context for Chromium, so `__Host-` cookies and passkeys work over plain HTTP), mails written
//! as `.eml` files under the data directory, and rate limits off.
//!
//! Dropping the server kills both processes and drops the PostgreSQL database. When the test is
//! failing, the tail of both processes' logs is printed first.

use super::mail::Mail;
use super::paths;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Why a start failed.
enum Start {
    /// The process (`sim` or `serve`) could not bind its port: another process took it after
    /// [`free_port`] let it go.
    PortTaken(&'static str),
    /// Anything else, said in words.
    Failed(String),
}

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server for the `postgres` variant of every test (a role that may create
/// databases and roles), as in the other test suites.
pub const PG_ENV: &str = "PALISADE_TEST_POSTGRES_URL";
const PG_TEST_LOGIN_ROLE: &str = "palisade_test_app";

impl Db {
    pub fn postgres_url() -> Option<String> {
        std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
    }
}

/// A running `palisade serve` with its own `palisade sim`.
pub struct Server {
    /// `http://localhost:<port>`: what the browser opens (pages, cookies and passkeys are bound
    /// to this origin).
    pub base_url: String,
    /// The simulator's base URL (`http://127.0.0.1:<port>`), for its `/_sim/…` control API.
    pub sim_url: String,
    pub db: Db,
    data_dir: tempfile::TempDir,
    serve: Child,
    sim: Child,
    /// The PostgreSQL database to drop afterwards: (server URL, database name).
    pg: Option<(String, String)>,
    /// The server's `PALISADE_*` settings, for the CLI commands a test runs beside it.
    settings: Vec<(String, String)>,
}

/// A free loopback port: bind port 0 and let it go. Another process could take it in between
/// (tests run in parallel, each starting two processes); a start whose process then finds its
/// port taken is tried again on new ports (see [`Server::start_with`]).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Server {
    /// Starts the simulator and the server on `db` with the default test settings.
    pub async fn start(db: Db) -> Server {
        Server::start_with(db, &[]).await
    }

    /// Starts them with extra `PALISADE_*` settings for the server (later ones win), e.g.
    /// `&[("PALISADE_EMAIL_VERIFICATION", "required")]`. A start that lost one of its ports to
    /// another process between [`free_port`] and the bind is tried again, twice at most, on new
    /// ports; any other failure to start panics with both logs.
    pub async fn start_with(db: Db, env: &[(&str, &str)]) -> Server {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut server = Server::spawn_all(db, env).await;
            match server.wait_all_ready().await {
                Ok(()) => return server,
                Err(Start::PortTaken(name)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "palisade {name} found its port taken (attempt {attempt} of {ATTEMPTS}); \
                         starting again on new ports"
                    );
                    // Dropping it kills both processes and drops its PostgreSQL database.
                    drop(server);
                }
                Err(Start::PortTaken(name)) => panic!(
                    "palisade {name} found its port taken {ATTEMPTS} times\n{}",
                    server.logs()
                ),
                Err(Start::Failed(why)) => panic!("{why}\n{}", server.logs()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Spawns the simulator and the server on fresh ports, data directory and database.
    async fn spawn_all(db: Db, env: &[(&str, &str)]) -> Server {
        let bin = paths::palisade_bin();
        let data_dir = tempfile::Builder::new()
            .prefix("palisade-browser-")
            .tempdir()
            .expect("a temporary data directory");
        let sim_port = free_port();
        let port = free_port();
        let base_url = format!("http://localhost:{port}");
        let sim_url = format!("http://127.0.0.1:{sim_port}");

        let sim = spawn(
            &bin,
            &["sim", "--listen", &format!("127.0.0.1:{sim_port}")],
            &[],
            data_dir.path(),
            "sim.log",
        );

        let (database_url, migration_url, pg) = match db {
            Db::Sqlite => (
                format!(
                    "sqlite://{}",
                    data_dir.path().join("palisade.sqlite").display()
                ),
                None,
                None,
            ),
            Db::Postgres => {
                let base = Db::postgres_url()
                    .unwrap_or_else(|| panic!("set {PG_ENV} for PostgreSQL browser tests"));
                let name = format!("palisade_browser_{}", uuid::Uuid::new_v4().simple());
                create_pg_database(&base, &name).await;
                let admin = with_database(&base, &name);
                let app = with_user(&admin, PG_TEST_LOGIN_ROLE);
                (app, Some(admin), Some((base, name)))
            }
        };

        let listen = format!("127.0.0.1:{port}");
        let data = data_dir.path().display().to_string();
        let mut settings: Vec<(String, String)> = vec![
            ("PALISADE_ENV", "development"),
            ("PALISADE_LISTEN", listen.as_str()),
            ("PALISADE_DATA_DIR", data.as_str()),
            ("PALISADE_PUBLIC_URL", base_url.as_str()),
            ("PALISADE_DATABASE_URL", database_url.as_str()),
            ("PALISADE_DATABASE_MAX_CONNECTIONS", "4"),
            ("PALISADE_WHATSAPP_GRAPH_BASE_URL", sim_url.as_str()),
            ("PALISADE_HIBP_MODE", "off"),
            ("PALISADE_RATE_LIMIT_API_PER_MINUTE", "0"),
            ("PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE", "0"),
            ("PALISADE_RATE_LIMIT_REGISTER_PER_HOUR", "0"),
            ("PALISADE_RATE_LIMIT_PASSWORD_FORGOT_PER_HOUR", "0"),
            ("PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE", "0"),
            ("PALISADE_LOGIN_FAILURE_DELAY_MS", "1"),
            ("PALISADE_PASSWORD_HASH_CONCURRENCY", "2"),
            ("PALISADE_MAIL_WORKER_INTERVAL_MS", "200"),
            ("PALISADE_OUTBOUND_WORKER_INTERVAL_MS", "200"),
            ("PALISADE_MEDIA_WORKER_INTERVAL_MS", "200"),
            ("PALISADE_WEBHOOKS_WORKER_INTERVAL_MS", "200"),
            ("PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true"),
            ("PALISADE_LOG", "info,sqlx=warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(m) = &migration_url {
            settings.push(("PALISADE_DATABASE_MIGRATION_URL".into(), m.clone()));
        }
        settings.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));

        let serve = spawn(&bin, &["serve"], &settings, data_dir.path(), "serve.log");
        Server {
            settings,
            base_url,
            sim_url,
            db,
            data_dir,
            serve,
            sim,
            pg,
        }
    }

    /// Waits until the simulator and then the server answer.
    async fn wait_all_ready(&mut self) -> Result<(), Start> {
        let sim_ready = format!("{}/_sim/config", self.sim_url);
        let listen = self
            .settings
            .iter()
            .find(|(k, _)| k == "PALISADE_LISTEN")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let serve_ready = format!("http://{listen}/readyz");
        self.wait_ready(&sim_ready, "sim", "simulator listening")
            .await?;
        self.wait_ready(&serve_ready, "serve", "Palisade is listening")
            .await
    }

    /// Polls `url` until it answers 200 and the process `what` (`sim` or `serve`) has logged
    /// `bound` (it says so once it holds its port: until then a 200 could come from another
    /// process on that port). Fails if a process exits (telling a lost port from other failures
    /// by its log) or 60 s pass (the first PostgreSQL migration on a busy machine takes a while).
    async fn wait_ready(&mut self, url: &str, what: &str, bound: &str) -> Result<(), Start> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let log = self.data_dir.path().join(format!("{what}.log"));
        loop {
            let holds_port = || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(bound)
            };
            if let Ok(r) = client.get(url).send().await {
                if r.status().is_success() && holds_port() {
                    return Ok(());
                }
            }
            let exited = [("sim", &mut self.sim), ("serve", &mut self.serve)]
                .into_iter()
                .find_map(|(name, child)| child.try_wait().ok().flatten().map(|s| (name, s)));
            if let Some((name, status)) = exited {
                let log = std::fs::read_to_string(self.data_dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                if log.contains("Address already in use") {
                    return Err(Start::PortTaken(name));
                }
                return Err(Start::Failed(format!(
                    "palisade {name} exited during start-up ({status})"
                )));
            }
            if Instant::now() > deadline {
                return Err(Start::Failed(format!(
                    "palisade {what} did not answer {url} within 60 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a platform super admin with the CLI (`palisade admin create-super-admin`), on
    /// the server's database; they sign in at `/login` with `password`.
    pub async fn create_super_admin(&self, email: &str, name: &str, password: &str) {
        use tokio::io::AsyncWriteExt;
        let mut cmd = Command::new(paths::palisade_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PALISADE_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args([
                "admin",
                "create-super-admin",
                "--email",
                email,
                "--name",
                name,
            ])
            .envs(self.settings.iter().map(|(k, v)| (k, v)))
            .env(
                "PALISADE_CONFIG",
                self.data_dir.path().join("palisade.toml"),
            )
            .current_dir(self.data_dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("palisade admin create-super-admin starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{password}\n").as_bytes())
            .await
            .expect("the password is written");
        drop(stdin);
        let out = child.wait_with_output().await.expect("the CLI finishes");
        assert!(
            out.status.success(),
            "create-super-admin failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `base_url` + `path` (a path starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The server's data directory (the SQLite database, generated keys, `mail/*.eml`).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Every mail delivered to `to` so far (written as `<data dir>/mail/<id>.eml`), oldest
    /// first (outbox ids are UUID v7, so the file names sort by time).
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        Mail::read_dir(&self.data_dir.path().join("mail"), to)
    }

    /// The newest mail to `to` whose subject contains `subject`, waiting up to 10 s for the
    /// mail worker to deliver it. Use `mail.code(6)` for a one-time code, `mail.link(prefix)`
    /// for a link.
    pub async fn wait_mail(&self, to: &str, subject: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut mails = self.mails_to(to);
            mails.retain(|m| m.subject.contains(subject));
            if let Some(m) = mails.pop() {
                return m;
            }
            if Instant::now() > deadline {
                let subjects: Vec<String> =
                    self.mails_to(to).into_iter().map(|m| m.subject).collect();
                panic!("no mail to {to} with {subject:?} in its subject within 10 s; mails to {to}: {subjects:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of both processes' logs, for failure messages.
    pub fn logs(&self) -> String {
        let tail = |file: &str| {
            let text = std::fs::read_to_string(self.data_dir.path().join(file)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            lines.get(from..).unwrap_or_default().join("\n")
        };
        format!(
            "--- palisade serve (last 40 lines) ---\n{}\n--- palisade sim (last 40 lines) ---\n{}",
            tail("serve.log"),
            tail("sim.log")
        )
    }
}

/// Starts `bin args` in `dir` with only the given `PALISADE_*` settings (none inherited from the
/// developer's shell, and no `palisade.toml` from the working directory), output to `dir/log`.
fn spawn(bin: &Path, args: &[&str], env: &[(String, String)], dir: &Path, log: &str) -> Child {
    let out = std::fs::File::create(dir.join(log)).expect("a log file");
    let err = out.try_clone().expect("a log file");
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PALISADE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PALISADE_CONFIG", dir.join("palisade.toml"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {}: {e}. Build it first: cargo build -p palisade",
            bin.display()
        )
    })
}

fn with_database(url: &str, db: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("PALISADE_TEST_POSTGRES_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn with_user(url: &str, user: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("a URL");
    u.set_username(user).expect("a URL with a user");
    u.set_password(None).expect("a URL with a password");
    u.to_string()
}

/// The application's roles (as the testkit makes them; a duplicate from a parallel test is fine)
/// and a fresh database.
async fn create_pg_database(base: &str, name: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("connect to {PG_ENV}: {e}"));
    for stmt in [
        "CREATE ROLE palisade_app NOLOGIN NOSUPERUSER NOBYPASSRLS".to_owned(),
        format!("CREATE ROLE {PG_TEST_LOGIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
        format!("GRANT palisade_app TO {PG_TEST_LOGIN_ROLE}"),
    ] {
        let _ = sqlx::raw_sql(&stmt).execute(&mut c).await;
    }
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .expect("create a database");
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.serve.start_kill();
        let _ = self.sim.start_kill();
        if let Some((base, name)) = self.pg.take() {
            // Drop cannot await: a thread with its own runtime, joined, so the database is gone
            // before the next test starts.
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
                        let _ =
                            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}
