//! `mail-outbox`: how fast the mail worker drains its outbox into a local SMTP server.
//!
//! Runs the real application in this process (the test harness's `spawn_app`: SQLite in a
//! temporary directory, or a fresh PostgreSQL database with `--postgres` and
//! `PALISADE_TEST_POSTGRES_URL`), with `PALISADE_SMTP_URL` pointing at an SMTP sink on
//! loopback (the testkit's `SmtpSink`, also in this process) and no worker of its own. It
//! queues `--mails` mails the way use cases do (a unit of work each, the body encrypted), then
//! starts the node's mail worker and times it until the sink has accepted every mail. Each
//! mail is a full SMTP transaction (MAIL FROM, RCPT TO, DATA) on the worker's pooled
//! connections, and its outcome a committed transaction.

use anyhow::{bail, Context};
use palisade_core::mail::{self, Mail};
use palisade_core::{SystemActor, UnitOfWork};
use palisade_store::SystemScope;
use palisade_testkit::{spawn_app_with, Db, SmtpSink};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mails queued before the worker starts.
    #[arg(long, default_value_t = 2000)]
    mails: usize,
    /// Use PostgreSQL (a fresh database on `PALISADE_TEST_POSTGRES_URL`) instead of SQLite.
    #[arg(long)]
    postgres: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let db = if args.postgres {
        if Db::postgres_url().is_none() {
            bail!("--postgres needs PALISADE_TEST_POSTGRES_URL");
        }
        Db::Postgres
    } else {
        Db::Sqlite
    };
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(db, move |c| {
        c.smtp_url = Some(url.into());
        c.mail_worker_interval_ms = 0;
    })
    .await;
    let s = &app.services;
    let queued = Instant::now();
    for i in 0..args.mails {
        let mut uow = UnitOfWork::system(s, SystemActor::Maintenance, SystemScope::new("bench"))
            .await
            .context("begin")?;
        let to = format!("user{i}@bench.example");
        let m = Mail::compose("bench", &to, "Your sign-in code")
            .paragraph("Use this code to sign in to Palisade:")
            .code(format!("{:06}", i % 1_000_000))
            .action(
                "Open Palisade",
                mail::link(s, "/sign-in", &[("attempt", &i.to_string())]),
            )
            .paragraph("If you did not try to sign in, change your password.");
        mail::queue(&mut uow, m).await.context("queue")?;
        uow.commit().await.context("commit")?;
    }
    println!(
        "queued {} mails in {:.2} s ({:?})",
        args.mails,
        queued.elapsed().as_secs_f64(),
        db
    );
    let started = Instant::now();
    let worker =
        mail::worker::spawn_worker(s.clone(), app.mailer.clone(), Duration::from_millis(1000));
    let deadline = started + Duration::from_secs(600);
    while sink.count() < args.mails {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} mails arrived within 600 s",
                sink.count(),
                args.mails
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let arrived = started.elapsed().as_secs_f64();
    // Done when every mail is also recorded as sent (its body dropped).
    loop {
        let pending = app
            .db
            .count_as_owner("SELECT COUNT(*) FROM mail_outbox WHERE status <> 'sent'")
            .await?;
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{pending} mails not recorded as sent within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    worker.abort();
    println!(
        "delivered and recorded {} mails in {secs:.2} s: {:.0} mails/s (all arrived after {arrived:.2} s) over {} SMTP connection(s); duplicates: {}",
        sink.count(),
        sink.count() as f64 / secs,
        sink.connections(),
        sink.count() - args.mails
    );
    Ok(())
}
