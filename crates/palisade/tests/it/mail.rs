//! The mail outbox worker: a real SMTP round trip to a sink on loopback, retries after a 4xx,
//! giving up on a 5xx, two workers at once, a lease that ran out, `.eml` files without SMTP,
//! and `palisade mail test`.

use palisade_core::mail::{self, worker, Mail};
use palisade_core::{SystemActor, UnitOfWork};
use palisade_domain::MailId;
use palisade_store::SystemScope;
use palisade_testkit::{spawn_app_with, Db, SmtpSink, TestApp};
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

/// Queues a mail the way a use case does (in a unit of work), with a code and a link.
async fn queue(app: &TestApp, to: &str) -> MailId {
    let s = &app.services;
    let mut uow = UnitOfWork::system(s, SystemActor::Maintenance, SystemScope::new("test.mail"))
        .await
        .unwrap();
    let m = Mail::compose("test_kind", to, "Your sign-in code")
        .paragraph("Use this code to sign in:")
        .code("482913")
        .action("Open Palisade", mail::link(s, "/sign-in", &[("u", "ann")]));
    let id = mail::queue(&mut uow, m).await.unwrap();
    uow.commit().await.unwrap();
    id
}

/// The mail's status, attempts, whether its body is gone, and its last error.
async fn row(app: &TestApp, id: MailId) -> (String, i64, bool, Option<String>) {
    use sqlx::Connection;
    const SQL: &str = "SELECT status, CAST(attempts AS BIGINT), payload = '', last_error
                       FROM mail_outbox WHERE id = $1";
    match &app.db {
        palisade_testkit::TestDb::Sqlite { url } => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_as(SQL)
                .bind(id.as_uuid())
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        palisade_testkit::TestDb::Postgres { admin_url, .. } => {
            let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
            sqlx::query_as(SQL)
                .bind(id.as_uuid())
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

/// Waits up to ten seconds for the mail's status.
async fn wait_status(
    app: &TestApp,
    id: MailId,
    status: &str,
) -> (String, i64, bool, Option<String>) {
    for _ in 0..200 {
        let r = row(app, id).await;
        if r.0 == status {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mail {id} is {:?}, not {status}", row(app, id).await);
}

async fn with_sink(db: Db, sink: &SmtpSink, worker_ms: u64) -> TestApp {
    let url = sink.url();
    spawn_app_with(db, move |c| {
        c.smtp_url = Some(url.into());
        c.mail_worker_interval_ms = worker_ms;
    })
    .await
}

async fn a_queued_mail_arrives_over_smtp_with_both_parts(db: Db) {
    let sink = SmtpSink::start().await;
    let app = with_sink(db, &sink, 1000).await;
    let id = queue(&app, "ann@example.com").await;
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.from, "no-reply@localhost");
    assert_eq!(m.to, ["ann@example.com"]);
    assert_eq!(m.header("From").unwrap(), "Palisade <no-reply@localhost>");
    assert_eq!(m.header("To").unwrap(), "ann@example.com");
    assert_eq!(m.subject(), "Your sign-in code");
    assert_eq!(m.header("Message-ID").unwrap(), format!("<{id}@localhost>"));
    assert!(m.header("Date").is_some());
    assert!(m
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(m.text().contains("482913"), "{}", m.text());
    assert!(m.text().contains("/sign-in?u=ann"), "{}", m.text());
    assert!(m.html().contains("<strong>482913</strong>"), "{}", m.html());
    let (status, attempts, empty, _) = wait_status(&app, id, "sent").await;
    assert_eq!((status.as_str(), attempts, empty), ("sent", 1, true));
}

async fn a_451_is_retried_after_the_backoff(db: Db) {
    let sink = SmtpSink::start().await;
    let app = with_sink(db, &sink, 1000).await;
    sink.refuse_next(1, 451);
    let id = queue(&app, "bob@example.com").await;
    for _ in 0..200 {
        if row(&app, id).await.1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, attempts, empty, error) = row(&app, id).await;
    assert_eq!((status.as_str(), attempts, empty), ("pending", 1, false));
    assert!(error.unwrap().contains("451"));
    // Not before the backoff (30 s and some jitter)...
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        0
    );
    assert!(sink.received().is_empty());
    // ...and once it has passed.
    app.clock.advance(time::Duration::seconds(40));
    app.services.mail_outbox.notify_one();
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0].header("Message-ID").unwrap(),
        format!("<{id}@localhost>")
    );
    let (status, attempts, empty, _) = wait_status(&app, id, "sent").await;
    assert_eq!((status.as_str(), attempts, empty), ("sent", 2, true));
    assert_eq!(sink.received().len(), 1);
}

async fn a_550_marks_the_mail_failed(db: Db) {
    let sink = SmtpSink::start().await;
    let app = with_sink(db, &sink, 1000).await;
    sink.refuse_next(1, 550);
    let id = queue(&app, "gone@example.com").await;
    let (_, attempts, empty, error) = wait_status(&app, id, "failed").await;
    assert_eq!(attempts, 1);
    assert!(empty, "the body is dropped");
    assert!(error.unwrap().contains("550"));
    let audited = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM audit_log WHERE action = 'mail.failed'")
        .await
        .unwrap();
    assert_eq!(audited, 1);
    // Never again.
    app.clock.advance(time::Duration::seconds(24 * 3600));
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        0
    );
    assert!(sink.received().is_empty());
}

async fn two_workers_never_send_a_mail_twice(db: Db) {
    let sink = SmtpSink::start().await;
    // No periodic workers: the two rounds below race each other alone.
    let app = with_sink(db, &sink, 0).await;
    let peer = app.spawn_peer().await;
    let n = 60;
    for i in 0..n {
        queue(&app, &format!("user{i}@example.com")).await;
    }
    let drain = |a: &TestApp| {
        let (s, m) = (a.services.clone(), a.mailer.clone());
        tokio::spawn(async move {
            let mut claimed = 0;
            loop {
                match worker::deliver_due(&s, &m).await.unwrap() {
                    0 => return claimed,
                    k => claimed += k,
                }
            }
        })
    };
    let (a, b) = (drain(&app), drain(&peer));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a + b, n, "each mail claimed once ({a} + {b})");
    let got = sink.received();
    let ids: HashSet<String> = got.iter().filter_map(|m| m.header("Message-ID")).collect();
    assert_eq!((got.len(), ids.len()), (n, n));
    let pending = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM mail_outbox WHERE status <> 'sent'")
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

async fn a_mail_whose_lease_ran_out_is_sent_again(db: Db) {
    let sink = SmtpSink::start().await;
    let app = with_sink(db, &sink, 0).await;
    let id = queue(&app, "carl@example.com").await;
    // A worker claims it and dies before sending.
    let now = app.services.now();
    let mut tx = app
        .services
        .store
        .begin(SystemScope::new("test.crash"))
        .await
        .unwrap();
    let claimed = palisade_store::mail_outbox::QUEUE
        .claim_due(&mut tx, now, now + worker::LEASE, 10)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1);
    // While the lease lasts, nobody else sends it.
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        0
    );
    app.clock.advance(time::Duration::seconds(4 * 60));
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        0
    );
    // Once it has run out, it is claimed again and sent.
    app.clock.advance(time::Duration::seconds(61));
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        1
    );
    assert_eq!(sink.received().len(), 1);
    assert_eq!(row(&app, id).await.0, "sent");
}

async fn without_smtp_mails_are_written_as_eml_files(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let id = queue(&app, "dora@example.com").await;
    let path = app.config.data_dir.join("mail").join(format!("{id}.eml"));
    wait_status(&app, id, "sent").await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("From: Palisade <no-reply@localhost>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Message-ID: <{id}@localhost>")),
        "{text}"
    );
    // The test helpers read it back once the outbox body is gone.
    let m = app.wait_mail("dora@example.com", "test_kind").await;
    assert_eq!(m.subject, "Your sign-in code");
    assert_eq!(m.code(6).as_deref(), Some("482913"));
    assert!(m.html.contains("<strong>482913</strong>"));
    assert_eq!(app.mails_to("dora@example.com").await.len(), 1);
}

async fn old_sent_and_failed_mails_are_pruned(db: Db) {
    let app = spawn_app_with(db, |c| c.mail_worker_interval_ms = 0).await;
    let sent = queue(&app, "old@example.com").await;
    assert_eq!(
        worker::deliver_due(&app.services, &app.mailer)
            .await
            .unwrap(),
        1
    );
    app.clock.advance(time::Duration::seconds(31 * 24 * 3600));
    let pending = queue(&app, "new@example.com").await;
    assert_eq!(worker::prune(&app.services).await.unwrap(), 1);
    let left = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM mail_outbox")
        .await
        .unwrap();
    assert_eq!(left, 1, "{sent} pruned, {pending} kept");
}

both!(
    a_queued_mail_arrives_over_smtp_with_both_parts,
    a_451_is_retried_after_the_backoff,
    a_550_marks_the_mail_failed,
    two_workers_never_send_a_mail_twice,
    a_mail_whose_lease_ran_out_is_sent_again,
    without_smtp_mails_are_written_as_eml_files,
    old_sent_and_failed_mails_are_pruned,
);

fn palisade(dir: &std::path::Path, smtp: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args)
        .env("PALISADE_DATA_DIR", dir)
        .env("PALISADE_LOG", "warn")
        .env_remove("PALISADE_SMTP_URL")
        .env_remove("PALISADE_MAIL_FROM")
        .current_dir(dir);
    if let Some(url) = smtp {
        cmd.env("PALISADE_SMTP_URL", url);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palisade_mail_test_sends_one_mail_and_reports_the_answer() {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = sink.url();
    let run = |smtp: Option<String>, args: Vec<&'static str>| {
        let d = d.clone();
        tokio::task::spawn_blocking(move || palisade(&d, smtp.as_deref(), &args))
    };
    let test = vec!["mail", "test", "--to", "ops@example.com"];

    let (ok, out, err) = run(Some(url.clone()), test.clone()).await.unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains("250"), "the SMTP answer: {out}");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].to, ["ops@example.com"]);
    assert_eq!(got[0].subject(), "Palisade test mail");

    sink.refuse_next(1, 550);
    let (ok, out, err) = run(Some(url.clone()), test.clone()).await.unwrap();
    assert!(!ok, "{out}{err}");
    assert!(err.contains("550") && err.contains("refused"), "{err}");

    // Nothing listening: a clear transient failure.
    let closed = format!("smtp://127.0.0.1:{}", free_port());
    let (ok, _, err) = run(Some(closed), test.clone()).await.unwrap();
    assert!(!ok);
    assert!(err.contains("temporary failure"), "{err}");

    // The password never shows.
    let (ok, _, err) = run(
        Some(format!("smtp://bob:hunter2@127.0.0.1:{}", free_port())),
        test.clone(),
    )
    .await
    .unwrap();
    assert!(!ok && !err.contains("hunter2"), "{err}");

    let (ok, out, err) = run(None, test.clone()).await.unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains(".eml"), "{out}");
    let files = std::fs::read_dir(dir.path().join("mail")).unwrap().count();
    assert_eq!(files, 1);

    let (ok, _, err) = run(None, vec!["mail", "test", "--to", "not-an-address"])
        .await
        .unwrap();
    assert!(!ok && err.contains("--to"), "{err}");
}

#[test]
fn a_bad_mail_from_fails_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_MAIL_FROM", "Palisade <nobody>")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PALISADE_MAIL_FROM"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env("PALISADE_DATA_DIR", dir.path())
        .env(
            "PALISADE_SMTP_URL",
            "smtp://mailer:hunter2@mail.example.com:587?tls=required",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("hunter2") && text.contains("mailer:***@mail.example.com"),
        "{text}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
