//! `palisade backup create | verify | restore` and the scheduled backups of `palisade serve`
//! (issue 15, "Backups"), on SQLite and PostgreSQL: a backup of a live server restores into an
//! empty database that a new server serves with the same data; damaged or altered archives,
//! wrong keys, non-empty targets and unencrypted backups are refused, each saying why; the
//! schedule writes archives and deletes an older one only after a newer one verified.

use crate::support::whatsapp_fixture;
use palisade_testkit::{Db, TestApp, TestDb, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const PASSPHRASE: &str = "correct horse battery staple backup";

/// The owner URL of the app's database (what the CLI is pointed at).
fn owner_url(app: &TestApp) -> String {
    match &app.db {
        TestDb::Sqlite { url } => url.clone(),
        TestDb::Postgres { admin_url, .. } => admin_url.clone(),
    }
}

/// Runs `palisade <args>` against `app`'s database and storage with `env`.
fn cli(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args)
        .current_dir(cwd.path())
        .env_remove("PALISADE_BACKUP_PASSPHRASE")
        .env_remove("PALISADE_BACKUP_RECIPIENTS")
        .env_remove("PALISADE_BACKUP_IDENTITY_FILE")
        .env("PALISADE_DATABASE_URL", owner_url(app))
        .env("PALISADE_DATA_DIR", &app.config.data_dir)
        .env("PALISADE_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    text(o)
}

#[track_caller]
fn fails(o: &Output, needle: &str) -> String {
    let t = text(o);
    assert!(!o.status.success(), "expected a failure: {t}");
    assert!(t.contains(needle), "expected {needle:?} in: {t}");
    t
}

/// A new empty database of `db`'s kind: its URL for the restore (owner) and for a server.
struct EmptyDb {
    owner_url: String,
    app_url: String,
    pg_name: Option<String>,
}

async fn empty_db(db: Db, dir: &Path) -> EmptyDb {
    match db {
        Db::Sqlite => {
            let url = format!("sqlite://{}", dir.join("restored.sqlite").display());
            EmptyDb {
                owner_url: url.clone(),
                app_url: url,
                pg_name: None,
            }
        }
        Db::Postgres => {
            use sqlx::Connection;
            let base = Db::postgres_url().unwrap();
            let name = format!("palisade_restore_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .unwrap();
            let mut owner = url::Url::parse(&base).unwrap();
            owner.set_path(&format!("/{name}"));
            let mut app = owner.clone();
            app.set_username(palisade_testkit::PG_TEST_LOGIN_ROLE)
                .unwrap();
            app.set_password(None).unwrap();
            EmptyDb {
                owner_url: owner.to_string(),
                app_url: app.to_string(),
                pg_name: Some(name),
            }
        }
    }
}

impl Drop for EmptyDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let base = Db::postgres_url().unwrap_or_default();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
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

fn storage_dir(app: &TestApp) -> PathBuf {
    app.config.data_dir.join("storage")
}

/// A file in a tenant's storage directory, as the media worker leaves them.
fn stored_file(app: &TestApp, tenant: &str, body: &[u8]) -> PathBuf {
    let dir = storage_dir(app).join(tenant.replace('-', ""));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(uuid::Uuid::now_v7().simple().to_string());
    std::fs::write(&path, body).unwrap();
    path
}

async fn conversations(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/v1/conversations", token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().cloned().unwrap_or_default()
}

async fn create_verify_restore_and_serve_the_same_data(db: Db) {
    let f = whatsapp_fixture(db).await;
    let app = &f.app;
    let owner = &f.owner;
    let contact = app
        .post(
            "/api/v1/contacts",
            Some(&owner.access_token),
            json!({"phone": "+14155550100", "name": "Grace Hopper"}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{:?}", contact.body);
    f.customer_message("text", json!({"body": "Is my order ready?"}))
        .await;
    let mut convs = Vec::new();
    for _ in 0..200 {
        convs = conversations(app, &owner.access_token).await;
        if !convs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(convs.len(), 1, "the inbound message made a conversation");
    let conv_id = convs[0]["id"].as_str().unwrap().to_owned();
    let messages = app
        .get(
            &format!("/api/v1/conversations/{conv_id}/messages"),
            &owner.access_token,
        )
        .await;
    assert_eq!(messages.status, StatusCode::OK);
    let file = stored_file(app, &owner.tenant_id, b"an attachment");

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("nightly.tar.zst.age");
    let env = [("PALISADE_BACKUP_PASSPHRASE", PASSPHRASE)];
    let out = ok(&cli(
        app,
        &["backup", "create", "--output", archive.to_str().unwrap()],
        &env,
    ));
    assert!(out.contains("1 stored file(s)"), "{out}");
    let head = std::fs::read(&archive).unwrap();
    assert!(head.starts_with(b"age-encryption.org/v1"), "age-encrypted");

    let out = ok(&cli(
        app,
        &["backup", "verify", archive.to_str().unwrap()],
        &env,
    ));
    for needle in ["backup OK", "contacts", "messages", "audit chain", "intact"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }

    let target = empty_db(db, work.path()).await;
    let restored_storage = work.path().join("restored-storage");
    let out = ok(&cli(
        app,
        &[
            "backup",
            "restore",
            archive.to_str().unwrap(),
            "--database-url",
            &target.owner_url,
            "--storage-dir",
            restored_storage.to_str().unwrap(),
        ],
        &env,
    ));
    assert!(out.contains("contacts"), "{out}");
    let rel = file.strip_prefix(storage_dir(app)).unwrap();
    assert_eq!(
        std::fs::read(restored_storage.join(rel)).unwrap(),
        b"an attachment"
    );

    // A server on the restored database (same key rings) serves the same data.
    let (app_url, owner_url) = (target.app_url.clone(), target.owner_url.clone());
    let storage = restored_storage.clone();
    let restored = app
        .spawn_peer_with(move |raw| {
            raw.database_url = Some(app_url);
            raw.database_migration_url = (db == Db::Postgres).then_some(owner_url);
            raw.storage_dir = Some(storage);
        })
        .await;
    let session = restored.login(&owner.email, GOOD_PASSWORD).await;
    let me = restored.get("/api/v1/me", &session.access_token).await;
    assert_eq!(me.status, StatusCode::OK);
    let contacts = restored
        .get("/api/v1/contacts", &session.access_token)
        .await;
    let phones: Vec<&str> = contacts.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["phone"].as_str())
        .collect();
    assert!(phones.contains(&"+14155550100"), "{phones:?}");
    assert!(phones.contains(&"+447700900123"), "{phones:?}");
    let after = conversations(&restored, &session.access_token).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], convs[0]["id"]);
    let messages_after = restored
        .get(
            &format!("/api/v1/conversations/{conv_id}/messages"),
            &session.access_token,
        )
        .await;
    assert_eq!(messages_after.body["data"], messages.body["data"]);
    // The audit chains verify on the restored database, restore record included.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    let audit = cmd
        .args(["audit", "verify"])
        .env("PALISADE_DATABASE_URL", &target.owner_url)
        .env("PALISADE_LOG", "error")
        .output()
        .unwrap();
    let out = ok(&audit);
    assert!(out.contains("intact") && !out.contains("problem"), "{out}");
    // Each operation is in the platform's audit chain: the backup and its verification in the
    // server's database, the restore in the restored one.
    for action in ["platform.backup.created", "platform.backup.verified"] {
        assert_eq!(
            crate::support::audit_count(app, action).await,
            1,
            "{action}"
        );
    }
    let restores = match db {
        Db::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&target.owner_url)
                .await
                .unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'platform.backup.restored' AND tenant_id IS NULL",
            )
            .fetch_one(&mut c)
            .await
            .unwrap()
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&target.owner_url)
                .await
                .unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'platform.backup.restored' AND tenant_id IS NULL",
            )
            .fetch_one(&mut c)
            .await
            .unwrap()
        }
    };
    assert_eq!(restores, 1);
    drop(restored);
}

/// A backup taken while requests keep writing is one moment of the database: restored, it
/// holds every contact created before the backup began, none created after it ended, and
/// exactly the audit records of the contacts it holds (the rows and the audit chain come from
/// one snapshot); the chains verify; the webhooks come back as they were (URL, events, status);
/// a server on it answers the same pages as the original for what both hold.
async fn a_backup_taken_under_writes_restores_one_consistent_moment(db: Db) {
    let app =
        palisade_testkit::spawn_app_with(db, |c| c.webhooks_allow_private_targets = true).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = owner.access_token.clone();
    let hook = app
        .post(
            "/api/v1/webhooks",
            Some(&t),
            json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let create = |i: usize| {
        let (client, url, t) = (app.client.clone(), app.url("/api/v1/contacts"), t.clone());
        async move {
            let r = client
                .post(url)
                .bearer_auth(t)
                .json(&json!({"phone": format!("+1415555{i:04}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    };
    for i in 0..20 {
        create(i).await;
    }

    // A writer creates contacts one after another while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(20));
    let writer = {
        let (stop, created) = (stop.clone(), created.clone());
        let (client, url, t) = (app.client.clone(), app.url("/api/v1/contacts"), t.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let i = created.load(std::sync::atomic::Ordering::SeqCst);
                let r = client
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&json!({"phone": format!("+1415555{i:04}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = created.load(std::sync::atomic::Ordering::SeqCst);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("under-load.tar.zst.age");
    let (url, data_dir, path) = (
        owner_url(&app),
        app.config.data_dir.clone(),
        archive.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["backup", "create", "--output", path.to_str().unwrap()])
            .env_remove("PALISADE_BACKUP_RECIPIENTS")
            .env_remove("PALISADE_BACKUP_IDENTITY_FILE")
            .env("PALISADE_BACKUP_PASSPHRASE", PASSPHRASE)
            .env("PALISADE_DATABASE_URL", url)
            .env("PALISADE_DATA_DIR", data_dir)
            .env("PALISADE_LOG", "error")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let after = created.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    ok(&out);
    assert!(after > before, "contacts were written during the backup");

    let env = [("PALISADE_BACKUP_PASSPHRASE", PASSPHRASE)];
    let target = empty_db(db, work.path()).await;
    let storage = work.path().join("restored-storage");
    ok(&cli(
        &app,
        &[
            "backup",
            "restore",
            archive.to_str().unwrap(),
            "--database-url",
            &target.owner_url,
            "--storage-dir",
            storage.to_str().unwrap(),
        ],
        &env,
    ));
    let (app_url, owner_db) = (target.app_url.clone(), target.owner_url.clone());
    let restored = app
        .spawn_peer_with(move |raw| {
            raw.database_url = Some(app_url);
            raw.database_migration_url = (db == Db::Postgres).then_some(owner_db);
            raw.storage_dir = Some(storage);
        })
        .await;
    let session = restored.login(&owner.email, GOOD_PASSWORD).await;
    let rt = session.access_token.clone();

    // Every contact, paged.
    let mut phones = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=200&cursor={c}"),
            None => "/api/v1/contacts?limit=200".to_owned(),
        };
        let page = restored.get(&path, &rt).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for c in page.body["data"].as_array().unwrap() {
            phones.push(c["phone"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let held = phones.len();
    assert!(
        (before..=after).contains(&held),
        "the snapshot holds {held} contacts: between {before} (when it began) and {after}"
    );
    // The contacts held are exactly the first ones written (one writer, in order).
    phones.sort();
    let expected: Vec<String> = (0..held).map(|i| format!("+1415555{i:04}")).collect();
    assert_eq!(phones, expected);
    // Each has its audit record in the same snapshot, and no record of a contact it lacks.
    let mut audited = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit-logs?action=contact.created&limit=200&cursor={c}"),
            None => "/api/v1/audit-logs?action=contact.created&limit=200".to_owned(),
        };
        let page = restored.get(&path, &rt).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        audited += page.body["data"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        audited, held,
        "one contact.created record per restored contact"
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["audit", "verify"])
        .env("PALISADE_DATABASE_URL", &target.owner_url)
        .env("PALISADE_LOG", "error")
        .output()
        .unwrap();
    let out = ok(&verify);
    assert!(out.contains("intact") && !out.contains("problem"), "{out}");

    // The webhook as it was, and the same contact page on both servers.
    let hooks = |body: &Value| -> Vec<(Value, Value, Value, Value)> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["id"].clone(),
                    w["url"].clone(),
                    w["events"].clone(),
                    w["status"].clone(),
                )
            })
            .collect()
    };
    let original = app.get("/api/v1/webhooks", &t).await;
    let copy = restored.get("/api/v1/webhooks", &rt).await;
    assert_eq!(copy.status, StatusCode::OK, "{:?}", copy.body);
    assert_eq!(hooks(&copy.body), hooks(&original.body));
    // The newest contacts the snapshot holds read the same on both servers.
    let page = restored.get("/api/v1/contacts?limit=20", &rt).await;
    for c in page.body["data"].as_array().unwrap() {
        let path = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
        let (a, b) = (app.get(&path, &t).await, restored.get(&path, &rt).await);
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, b.body);
    }
    drop(restored);
}

/// Decrypts, edits and re-encrypts an archive's manifest (as an attacker holding the
/// passphrase, or a bug, might): every entry is kept, the manifest's first hash changed.
fn rewrite_manifest(archive: &Path, out: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let identity = age::scrypt::Identity::new(PASSPHRASE.to_owned().into());
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let tar_bytes = zstd::decode_all(plain.as_slice()).unwrap();
    let mut input = tar::Archive::new(tar_bytes.as_slice());
    let mut builder = tar::Builder::new(Vec::new());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        if name == "manifest.json" {
            let mut m: Value = serde_json::from_slice(&body).unwrap();
            m["parts"][0]["sha256"] = json!("00".repeat(32));
            body = serde_json::to_vec(&m).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        builder.append_data(&mut h, &name, body.as_slice()).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let compressed = zstd::encode_all(tar_bytes.as_slice(), 3).unwrap();
    let encryptor = age::Encryptor::with_user_passphrase(PASSPHRASE.to_owned().into());
    let mut w = encryptor
        .wrap_output(std::fs::File::create(out).unwrap())
        .unwrap();
    w.write_all(&compressed).unwrap();
    w.finish().unwrap();
}

async fn damaged_altered_or_wrongly_keyed_archives_fail_verify_saying_why(db: Db) {
    let app = palisade_testkit::spawn_app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("a.tar.zst.age");
    let env = [("PALISADE_BACKUP_PASSPHRASE", PASSPHRASE)];
    ok(&cli(
        &app,
        &["backup", "create", "--output", archive.to_str().unwrap()],
        &env,
    ));

    // One flipped byte in the encrypted payload.
    let flipped = work.path().join("flipped.tar.zst.age");
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&flipped, &bytes).unwrap();
    fails(
        &cli(&app, &["backup", "verify", flipped.to_str().unwrap()], &env),
        "damaged or was modified",
    );

    // A manifest whose hash does not match its part.
    let altered = work.path().join("altered.tar.zst.age");
    rewrite_manifest(&archive, &altered);
    let part = if db == Db::Sqlite {
        "database.sqlite"
    } else {
        "database.pgdump"
    };
    fails(
        &cli(&app, &["backup", "verify", altered.to_str().unwrap()], &env),
        &format!("{part}: SHA-256"),
    );
    // …and such an archive is not restored.
    let target = empty_db(db, work.path()).await;
    fails(
        &cli(
            &app,
            &[
                "backup",
                "restore",
                altered.to_str().unwrap(),
                "--database-url",
                &target.owner_url,
                "--storage-dir",
                work.path().join("s").to_str().unwrap(),
            ],
            &env,
        ),
        "does not match its manifest",
    );

    // The wrong passphrase, or none.
    fails(
        &cli(
            &app,
            &["backup", "verify", archive.to_str().unwrap()],
            &[("PALISADE_BACKUP_PASSPHRASE", "not the passphrase at all")],
        ),
        "wrong passphrase",
    );
    fails(
        &cli(&app, &["backup", "verify", archive.to_str().unwrap()], &[]),
        "set PALISADE_BACKUP_PASSPHRASE",
    );

    // Recipients: the right identity verifies, another one is named wrong.
    use age::secrecy::ExposeSecret;
    let right = age::x25519::Identity::generate();
    let wrong = age::x25519::Identity::generate();
    let right_file = work.path().join("right.key");
    let wrong_file = work.path().join("wrong.key");
    std::fs::write(&right_file, right.to_string().expose_secret()).unwrap();
    std::fs::write(&wrong_file, wrong.to_string().expose_secret()).unwrap();
    let recipients = format!(
        "{}, {}",
        right.to_public(),
        age::x25519::Identity::generate().to_public()
    );
    let keyed = work.path().join("keyed.tar.zst.age");
    ok(&cli(
        &app,
        &["backup", "create", "--output", keyed.to_str().unwrap()],
        &[("PALISADE_BACKUP_RECIPIENTS", &recipients)],
    ));
    ok(&cli(
        &app,
        &["backup", "verify", keyed.to_str().unwrap()],
        &[(
            "PALISADE_BACKUP_IDENTITY_FILE",
            right_file.to_str().unwrap(),
        )],
    ));
    fails(
        &cli(
            &app,
            &["backup", "verify", keyed.to_str().unwrap()],
            &[(
                "PALISADE_BACKUP_IDENTITY_FILE",
                wrong_file.to_str().unwrap(),
            )],
        ),
        "wrong identity",
    );
    fails(
        &cli(&app, &["backup", "verify", keyed.to_str().unwrap()], &[]),
        "set PALISADE_BACKUP_IDENTITY_FILE",
    );
}

async fn restore_refuses_a_database_that_is_not_empty_without_force(db: Db) {
    let app = palisade_testkit::spawn_app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("a.tar.zst.age");
    let env = [("PALISADE_BACKUP_PASSPHRASE", PASSPHRASE)];
    ok(&cli(
        &app,
        &["backup", "create", "--output", archive.to_str().unwrap()],
        &env,
    ));
    let target = empty_db(db, work.path()).await;
    let restore = |storage: &str, force: bool| {
        let storage = work.path().join(storage);
        let mut args = vec![
            "backup".to_owned(),
            "restore".into(),
            archive.to_str().unwrap().into(),
            "--database-url".into(),
            target.owner_url.clone(),
            "--storage-dir".into(),
            storage.to_str().unwrap().into(),
        ];
        if force {
            args.push("--force".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&app, &args, &env)
    };
    ok(&restore("s1", false));
    // The server's own database, and the one just restored, are not empty.
    fails(
        &cli(
            &app,
            &["backup", "restore", archive.to_str().unwrap()],
            &env,
        ),
        "not empty",
    );
    fails(&restore("s2", false), "not empty");
    let out = ok(&restore("s3", true));
    assert!(out.contains("users"), "{out}");
}

async fn an_unencrypted_backup_needs_the_flag(db: Db) {
    let app = palisade_testkit::spawn_app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("plain.tar.zst");
    fails(
        &cli(
            &app,
            &["backup", "create", "--output", archive.to_str().unwrap()],
            &[],
        ),
        "--unencrypted",
    );
    assert!(!archive.exists(), "nothing is written");
    ok(&cli(
        &app,
        &[
            "backup",
            "create",
            "--unencrypted",
            "--output",
            archive.to_str().unwrap(),
        ],
        &[],
    ));
    let out = ok(&cli(
        &app,
        &["backup", "verify", archive.to_str().unwrap()],
        &[],
    ));
    assert!(
        out.contains("NOT encrypted") && out.contains("backup OK"),
        "{out}"
    );
    // An existing file is never overwritten.
    fails(
        &cli(
            &app,
            &[
                "backup",
                "create",
                "--unencrypted",
                "--output",
                archive.to_str().unwrap(),
            ],
            &[],
        ),
        "already exists",
    );
}

fn archives(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("palisade-backup-") && !n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Moves the app's clock one second past the next `at` UTC.
fn past_next(app: &TestApp, at: time::Time) {
    let now = app.services.now();
    let today = now.replace_time(at);
    let next = if today > now {
        today
    } else {
        today + time::Duration::days(1)
    };
    app.clock.advance(next - now + time::Duration::seconds(1));
}

/// Advances the app's clock past the next `at` UTC (its schedule's time) and waits for the
/// scheduled run's audit record `action`.
async fn run_schedule(app: &TestApp, at: time::Time, dir: &Path, action: &str, want_records: i64) {
    past_next(app, at);
    for _ in 0..600 {
        if crate::support::audit_count(app, action).await >= want_records {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {action} record after the scheduled time; archives: {:?}",
        archives(dir)
    );
}

async fn scheduled_backups_write_verify_and_prune_only_after_a_verified_one(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    // First: encrypted to a recipient, with no identity on the server: nothing can verify the
    // new archive, so the old one stays.
    let path = dir.path().to_path_buf();
    let app = palisade_testkit::spawn_app_with(db, move |raw| {
        raw.backup_dir = Some(path);
        raw.backup_recipients = recipient;
    })
    .await;
    app.register("Acme", "owner@acme.example").await;
    let old_at = app.services.now() - time::Duration::days(40);
    let old = palisade_core::backup::archive_name(old_at, true);
    std::fs::write(dir.path().join(&old), b"an old archive").unwrap();
    let unrelated = dir.path().join("notes.txt");
    std::fs::write(&unrelated, b"not an archive").unwrap();

    run_schedule(
        &app,
        time::macros::time!(02:00),
        dir.path(),
        "platform.backup.created",
        1,
    )
    .await;
    let now = archives(dir.path());
    assert_eq!(now.len(), 2, "a new archive beside the old one: {now:?}");
    assert!(now.contains(&old), "kept: the new one is not verified");
    assert_eq!(
        crate::support::audit_count(&app, "platform.backup.verified").await,
        0
    );
    drop(app);

    // Then: with the identity, the new archive verifies and the old one (40 days) goes; the
    // unverified one from the first run (recent) and other files stay.
    let path = dir.path().to_path_buf();
    let id_file = dir.path().join("identity.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&id_file, identity.to_string().expose_secret()).unwrap();
    }
    let recipient = identity.to_public().to_string();
    let app = palisade_testkit::spawn_app_with(db, move |raw| {
        raw.backup_dir = Some(path);
        raw.backup_recipients = recipient;
        raw.backup_identity_file = Some(id_file);
        // Half an hour later than the first run's (whose archive has the same day).
        raw.backup_schedule = "30 2 * * *".into();
        raw.metrics_listen = "127.0.0.1:0".into();
    })
    .await;
    app.register("Acme", "owner@acme.example").await;
    let before = archives(dir.path());
    run_schedule(
        &app,
        time::macros::time!(02:30),
        dir.path(),
        "platform.backup.verified",
        1,
    )
    .await;
    // The retention runs right after the verification is recorded.
    let mut after = archives(dir.path());
    for _ in 0..50 {
        if !after.contains(&old) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = archives(dir.path());
    }
    assert!(
        !after.contains(&old),
        "the 40-day-old archive is deleted: {after:?}"
    );
    assert_eq!(after.len(), 2, "{before:?} → {after:?}");
    assert!(unrelated.exists());
    let newest = after.last().unwrap();
    assert_eq!(
        crate::support::audit_count(&app, "platform.backup.failed").await,
        0
    );
    // The archive the schedule wrote restores like any other.
    let out = ok(&cli(
        &app,
        &[
            "backup",
            "verify",
            dir.path().join(newest).to_str().unwrap(),
        ],
        &[(
            "PALISADE_BACKUP_IDENTITY_FILE",
            dir.path().join("identity.key").to_str().unwrap(),
        )],
    ));
    assert!(out.contains("backup OK"), "{out}");
    // …and the success shows in /metrics (read from the platform's audit chain, so every node
    // reports it; 0 would mean never).
    let metrics = crate::metrics::scrape(&app).await.text;
    let last: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("palisade_backup_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no backup gauge in {metrics}"));
    assert!(last > 1.0e9, "the last backup's time, not {last}");
}

async fn a_failed_scheduled_backup_is_recorded_and_counted(db: Db) {
    // The backup directory's place is taken by a file: no archive can be written there.
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("backups");
    std::fs::write(&blocked, b"a file, not a directory").unwrap();
    let path = blocked.clone();
    let app = palisade_testkit::spawn_app_with(db, move |raw| {
        raw.backup_dir = Some(path);
        raw.backup_passphrase = Some(PASSPHRASE.to_owned().into());
        raw.metrics_listen = "127.0.0.1:0".into();
    })
    .await;
    run_schedule(
        &app,
        time::macros::time!(02:00),
        dir.path(),
        "platform.backup.failed",
        1,
    )
    .await;
    assert_eq!(
        crate::support::audit_count(&app, "platform.backup.created").await,
        0
    );
    let metrics = crate::metrics::scrape(&app).await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("palisade_backup_failures_total{reason=\"failed\"}")),
        "{metrics}"
    );
    // …and raised as the platform alert the super admin sees (mail and webhook follow it).
    let root = app.super_admin("root@platform.example").await;
    let alerts = app
        .get(
            "/api/v1/security/alerts?rule=backup_failed",
            &root.access_token,
        )
        .await;
    assert_eq!(alerts.status, reqwest::StatusCode::OK, "{:?}", alerts.body);
    let data = alerts.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["severity"], "high");
    assert_eq!(data[0]["tenant_id"], serde_json::Value::Null);
    assert_eq!(data[0]["subject"]["id"], "failed");
}

/// Both nodes of a cluster see the same occurrence come due; the one that claims it first in
/// the database writes the archive, the other leaves it.
async fn two_nodes_on_one_database_write_each_scheduled_backup_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let a = palisade_testkit::spawn_app_with(db, move |raw| {
        raw.backup_dir = Some(path);
        raw.backup_passphrase = Some(PASSPHRASE.to_owned().into());
    })
    .await;
    let b = a.spawn_peer().await;
    a.register("Acme", "owner@acme.example").await;
    // Both clocks past the same 02:00; B's moved first, then A's through run_schedule.
    past_next(&b, time::macros::time!(02:00));
    run_schedule(
        &a,
        time::macros::time!(02:00),
        dir.path(),
        "platform.backup.created",
        1,
    )
    .await;
    // Both nodes look at the clock every second: three seconds give the other node its turns.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        crate::support::audit_count(&a, "platform.backup.created").await,
        1,
        "one archive for the occurrence: {:?}",
        archives(dir.path())
    );
    assert_eq!(archives(dir.path()).len(), 1, "{:?}", archives(dir.path()));
    assert_eq!(
        crate::support::audit_count(&a, "platform.backup.failed").await,
        0
    );
}

/// The cluster's last claimed backup is three days old (every node was down since): the
/// first node to start catches up at once, without waiting for the next 02:00, and raises
/// `backup_failed` (reason `missed`) when the occurrence it catches up is more than 15 minutes
/// past; a second node starting beside it does not run it again.
async fn a_backup_missed_while_every_node_was_down_is_raised_and_caught_up_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let first = palisade_testkit::spawn_app(db).await;
    first.register("Acme", "owner@acme.example").await;
    let now = first.services.now();
    let three_days_ago = (now - time::Duration::days(3)).replace_time(time::macros::time!(02:00));
    {
        let mut tx = first
            .services
            .store
            .begin(palisade_store::SystemScope::new("test"))
            .await
            .unwrap();
        let claimed = palisade_store::scheduled_runs::claim(
            &mut tx,
            palisade_core::backup::schedule::JOB,
            three_days_ago,
            "an-old-node",
            three_days_ago,
        )
        .await
        .unwrap();
        assert!(claimed);
        tx.commit().await.unwrap();
    }
    let path = dir.path().to_path_buf();
    let passphrase = PASSPHRASE.to_owned();
    let tweak = move |raw: &mut palisade::config::RawConfig| {
        raw.backup_dir = Some(path);
        raw.backup_passphrase = Some(passphrase.into());
    };
    let a = first.spawn_peer_with(tweak.clone()).await;
    let b = first.spawn_peer_with(tweak).await;
    for _ in 0..600 {
        if crate::support::audit_count(&a, "platform.backup.created").await >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        crate::support::audit_count(&a, "platform.backup.created").await,
        1,
        "one catch-up archive: {:?}",
        archives(dir.path())
    );
    // The occurrence caught up: the latest 02:00 at or before the start.
    let today = now.replace_time(time::macros::time!(02:00));
    let missed = if today > now {
        today - time::Duration::days(1)
    } else {
        today
    };
    let root = a.super_admin("root@platform.example").await;
    let alerts = b
        .get(
            "/api/v1/security/alerts?rule=backup_failed",
            &root.access_token,
        )
        .await;
    assert_eq!(alerts.status, StatusCode::OK, "{:?}", alerts.body);
    let data = alerts.body["data"].as_array().unwrap();
    if now - missed > palisade_core::backup::schedule::MISSED_AFTER {
        assert_eq!(data.len(), 1, "{data:?}");
        assert_eq!(data[0]["subject"]["id"], "missed");
        assert_eq!(data[0]["severity"], "medium");
        assert_eq!(data[0]["occurrences"], 1, "raised by one node: {data:?}");
    } else {
        // Started within 15 minutes of 02:00: a late start, not a missed one.
        assert!(data.is_empty(), "{data:?}");
    }
}

/// `check-config` (and the start) refuse backup settings that cannot work, saying which.
#[test]
fn check_config_names_bad_backup_settings() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.arg("check-config")
            .current_dir(dir.path())
            .env("PALISADE_DATA_DIR", dir.path())
            .env("PALISADE_LOG", "error");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    fails(
        &run(&[("PALISADE_BACKUP_RECIPIENTS", "age1notakey")]),
        "PALISADE_BACKUP_RECIPIENTS: \"age1notakey\" is not an age X25519 public key",
    );
    fails(
        &run(&[
            ("PALISADE_BACKUP_PASSPHRASE", "words"),
            ("PALISADE_BACKUP_SCHEDULE", "every night"),
        ]),
        "PALISADE_BACKUP_SCHEDULE=\"every night\" is not a cron schedule",
    );
    fails(
        &run(&[("PALISADE_BACKUP_IDENTITY_FILE", "/nonexistent/backup.key")]),
        "PALISADE_BACKUP_IDENTITY_FILE: cannot read /nonexistent/backup.key",
    );
    fails(
        &run(&[("PALISADE_BACKUP_DIR", dir.path().to_str().unwrap())]),
        "they are always encrypted",
    );
    let id = age::x25519::Identity::generate();
    fails(
        &run(&[
            ("PALISADE_BACKUP_PASSPHRASE", "words"),
            ("PALISADE_BACKUP_RECIPIENTS", &id.to_public().to_string()),
        ]),
        "not both",
    );
    let out = ok(&run(&[
        ("PALISADE_BACKUP_DIR", dir.path().to_str().unwrap()),
        ("PALISADE_BACKUP_PASSPHRASE", "correct horse"),
    ]));
    assert!(
        out.contains("# backups: scheduled (\"0 2 * * *\", UTC)"),
        "{out}"
    );
    assert!(out.contains("backup_passphrase = \"[redacted]\"") && !out.contains("correct horse"));
}

both!(
    create_verify_restore_and_serve_the_same_data,
    a_backup_taken_under_writes_restores_one_consistent_moment,
    damaged_altered_or_wrongly_keyed_archives_fail_verify_saying_why,
    restore_refuses_a_database_that_is_not_empty_without_force,
    an_unencrypted_backup_needs_the_flag,
    scheduled_backups_write_verify_and_prune_only_after_a_verified_one,
    a_failed_scheduled_backup_is_recorded_and_counted,
    two_nodes_on_one_database_write_each_scheduled_backup_once,
    a_backup_missed_while_every_node_was_down_is_raised_and_caught_up_once,
);
