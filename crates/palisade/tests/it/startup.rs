//! Start-up: production refusals, the CLI, development key generation.

use palisade::config::{Environment, RawConfig};
use palisade::{Application, Config};
use palisade_testkit::{spawn_app_with, test_config, Db, GOOD_PASSWORD};
use reqwest::StatusCode;
use secrecy::SecretString;
use std::io::Write;
use std::process::{Command, Stdio};

fn keys() -> (SecretString, SecretString) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| SecretString::from(v.to_owned()))
            .unwrap()
    };
    (
        get("PALISADE_SIGNING_KEYS"),
        get("PALISADE_ENCRYPTION_KEYS"),
    )
}

async fn build_error(raw: RawConfig) -> String {
    let config = Config::from_raw(raw).unwrap();
    match Application::build(&config).await {
        Ok(_) => panic!("production start should have been refused"),
        Err(e) => format!("{e:#}"),
    }
}

fn production(dir: &std::path::Path) -> RawConfig {
    let (s, e) = keys();
    RawConfig {
        env: Environment::Production,
        signing_keys: Some(s),
        encryption_keys: Some(e),
        ..test_config(dir)
    }
}

#[tokio::test]
async fn production_refuses_missing_weak_or_insecure_settings() {
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        signing_keys: None,
        ..production(dir.path())
    };
    let e = build_error(raw).await;
    assert!(
        e.contains("PALISADE_SIGNING_KEYS") && e.contains("keys generate"),
        "{e}"
    );
    assert!(
        !dir.path().join("keys").exists(),
        "production never generates development keys"
    );

    let weak = format!("k1:{}", "A".repeat(43));
    let raw = RawConfig {
        encryption_keys: Some(SecretString::from(weak)),
        ..production(dir.path())
    };
    let e = build_error(raw).await;
    assert!(
        e.contains("PALISADE_ENCRYPTION_KEYS") && e.contains("weak"),
        "{e}"
    );

    let raw = RawConfig {
        cookie_secure: false,
        ..production(dir.path())
    };
    let e = build_error(raw).await;
    assert!(e.contains("PALISADE_COOKIE_SECURE"), "{e}");

    // With good keys and Secure cookies, production starts on SQLite.
    let config = Config::from_raw(production(dir.path())).unwrap();
    assert!(Application::build(&config).await.is_ok());
}

#[tokio::test]
async fn production_refuses_a_superuser_database_role() {
    let Some(admin) = Db::postgres_url() else {
        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    // The harness's app role is not a superuser: production starts with it...
    let app = spawn_app_with(Db::Postgres, |_| {}).await;
    let palisade_testkit::TestDb::Postgres {
        app_url, admin_url, ..
    } = &app.db
    else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let ok = RawConfig {
        database_url: Some(app_url.clone()),
        database_migration_url: Some(admin_url.clone()),
        ..production(dir.path())
    };
    assert!(Application::build(&Config::from_raw(ok).unwrap())
        .await
        .is_ok());
    // ...but not when the login role is the superuser named by PALISADE_TEST_POSTGRES_URL.
    let _ = admin;
    let bad = RawConfig {
        database_url: Some(admin_url.clone()),
        ..production(dir.path())
    };
    let e = build_error(bad).await;
    assert!(
        e.contains("superuser") && e.contains("row-level security"),
        "{e}"
    );
}

#[tokio::test]
async fn development_keys_are_generated_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_raw(test_config(dir.path())).unwrap();
    drop(Application::build(&config).await.unwrap());
    let signing = dir.path().join("keys").join("signing.keys");
    let first = std::fs::read_to_string(&signing).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&signing).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop(Application::build(&config).await.unwrap());
    assert_eq!(
        std::fs::read_to_string(&signing).unwrap(),
        first,
        "keys survive a restart"
    );
}

fn cli(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    cli_with(dir, args, stdin, &[])
}

fn cli_with(
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .envs(env.iter().copied())
        .env("PALISADE_DATA_DIR", dir)
        .env_remove("PALISADE_DATABASE_URL")
        .env("PALISADE_LOG", "warn")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn cli_creates_a_super_admin_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let weak = cli(
        dir.path(),
        &[
            "admin",
            "create-super-admin",
            "--email",
            "root@platform.example",
        ],
        "password\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("not acceptable"));
    // The platform's alert webhook: one request, answered 200, its body kept.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/alerts", hook.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        use std::io::Read;
        let (mut conn, _) = hook.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .unwrap();
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    });
    let ok = cli_with(
        dir.path(),
        &[
            "admin",
            "create-super-admin",
            "--email",
            "root@platform.example",
        ],
        &format!("{GOOD_PASSWORD}\n"),
        &[
            ("PALISADE_SECURITY_ALERT_EMAIL", "soc@platform.example"),
            ("PALISADE_SECURITY_ALERT_WEBHOOK", &hook_url),
            (
                "PALISADE_SECURITY_ALERT_WEBHOOK_SECRET",
                "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The webhook was called before the command returned, signed as a `security.alert`.
    let request = received.join().unwrap();
    assert!(request.starts_with("POST /alerts"), "{request}");
    assert!(request.contains("\"security.alert\""), "{request}");
    assert!(request.contains("privilege_escalation"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("webhook-signature: v1,"),
        "{request}"
    );
    let dup = cli(
        dir.path(),
        &[
            "admin",
            "create-super-admin",
            "--email",
            "root@platform.example",
        ],
        &format!("{GOOD_PASSWORD}\n"),
    );
    assert!(
        !dup.status.success(),
        "a second account with the same email is refused"
    );

    let db_url = format!("sqlite://{}", dir.path().join("palisade.sqlite").display());
    let app = spawn_app_with(Db::Sqlite, |raw| raw.database_url = Some(db_url)).await;
    let root = app.login("root@platform.example", GOOD_PASSWORD).await;
    let me = app.get("/api/v1/me", &root.access_token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["role"], "super_admin");
    assert!(me.body["tenant"].is_null());
    // The new super admin is a critical platform alert, with the audit record as evidence.
    let alerts = app
        .get(
            "/api/v1/security/alerts?rule=privilege_escalation",
            &root.access_token,
        )
        .await;
    assert_eq!(alerts.status, StatusCode::OK, "{:?}", alerts.body);
    let a = &alerts.body["data"][0];
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["tenant_id"], serde_json::Value::Null);
    assert_eq!(a["subject"]["label"], "root@platform.example");
    assert_eq!(a["evidence"].as_array().unwrap().len(), 1);
    // Its mail waits in the outbox for a running server's mail worker.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("palisade.sqlite").display()
    ))
    .await
    .unwrap();
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox
         WHERE to_address = 'soc@platform.example' AND kind = 'security_alert'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(queued, 1);
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = keys();
    let secret = secrecy::ExposeSecret::expose_secret(&s).to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_SIGNING_KEYS", &secret)
        .env(
            "PALISADE_DATABASE_URL",
            "postgres://app:hunter2@db.example/palisade",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let key_part = secret.split_once(':').unwrap().1;
    assert!(!text.contains(key_part), "the key leaked: {text}");
    assert!(
        !text.contains("hunter2"),
        "the database password leaked: {text}"
    );
    assert!(text.contains("[redacted: 1 key(s)]"));
    assert!(
        text.contains("rate_limit_webhook_failures_per_minute = 60"),
        "the webhook refusal limit and its default: {text}"
    );
    assert!(
        text.contains("geographic detection rules (impossible_travel, new_country): off"),
        "without PALISADE_GEOIP_DB the geographic rules are off, and check-config says so: {text}"
    );
    assert!(text.contains("detect_export_rows = 10000"), "{text}");

    // A GeoIP database that is not one is refused by name.
    let not_a_db = dir.path().join("city.mmdb");
    std::fs::write(&not_a_db, b"not a MaxMind database").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_SIGNING_KEYS", &secret)
        .env("PALISADE_GEOIP_DB", &not_a_db)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PALISADE_GEOIP_DB"));

    let bad = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_ENV", "production")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PALISADE_SIGNING_KEYS"));
}

#[test]
fn email_verification_is_optional_by_default_and_only_takes_its_two_values() {
    let dir = tempfile::tempdir().unwrap();
    let run = |value: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
        c.arg("check-config")
            .env("PALISADE_DATA_DIR", dir.path())
            .env_remove("PALISADE_EMAIL_VERIFICATION")
            .current_dir(dir.path());
        if let Some(v) = value {
            c.env("PALISADE_EMAIL_VERIFICATION", v);
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(None);
    assert!(ok, "{text}");
    assert!(text.contains("email_verification = \"optional\""), "{text}");
    assert!(
        text.contains("rate_limit_password_forgot_per_hour = 5"),
        "{text}"
    );
    let (ok, text) = run(Some("required"));
    assert!(ok, "{text}");
    assert!(text.contains("email_verification = \"required\""), "{text}");
    let (ok, text) = run(Some("sometimes"));
    assert!(!ok, "an unknown mode is refused at start: {text}");
    assert!(
        text.contains("sometimes") || text.contains("email_verification"),
        "{text}"
    );
}

#[tokio::test]
async fn palisade_sim_serves_the_simulator() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--auto-status",
            "off",
        ])
        .env("PALISADE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut created = None;
    for _ in 0..100 {
        if let Ok(r) = client
            .post(format!("http://127.0.0.1:{port}/_sim/phone-numbers"))
            .json(&serde_json::json!({}))
            .send()
            .await
        {
            created = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = created.expect("the simulator never answered");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["phone_number_id"].is_string() && body["app_secret"].is_string());
    // The Graph API refuses a request without a token with Meta's error 190.
    let r = client
        .post(format!(
            "http://127.0.0.1:{port}/v21.0/{}/messages",
            body["phone_number_id"].as_str().unwrap()
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], 190);
    let bad = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["sim", "--batch-rate", "2"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    child.kill().unwrap();
    let _ = child.wait();
}
