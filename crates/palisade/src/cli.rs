//! The `palisade` command line.

use crate::app::{database_settings, settings, Application};
use crate::config::Config;
use clap::{Parser, Subcommand};
use palisade_core::auth::hashing::PasswordHasher;
use palisade_core::auth::passwords::check_rules;
use palisade_domain::{EmailAddress, PasswordContext, PasswordPolicyPreset, PersonName};
use palisade_store::{audit, users, Store, SystemScope};
use std::io::{BufRead, IsTerminal};

#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Palisade: a secure multi-tenant WhatsApp CRM server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted, and check it.
    CheckConfig,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run the local WhatsApp Cloud API simulator (for development, demos and tests).
    Sim(SimArgs),
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Key material.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Mail delivery.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Encrypted backups: create, verify, restore.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent snapshot of the database and the storage directory, while the server
    /// runs, into one compressed archive encrypted with age to PALISADE_BACKUP_RECIPIENTS or
    /// PALISADE_BACKUP_PASSPHRASE.
    Create {
        /// The archive to write (must not exist). Default:
        /// `palisade-backup-<UTC time>.tar.zst.age` in PALISADE_BACKUP_DIR or the current
        /// directory.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Write the archive without encryption (refused otherwise when no key is configured).
        #[arg(long)]
        unencrypted: bool,
    },
    /// Check every hash, restore into a scratch database, check the migration level, count the
    /// rows and verify every audit hash chain; exit non-zero on any problem.
    Verify {
        /// The archive.
        file: std::path::PathBuf,
    },
    /// Restore into an empty database (and storage directory), then print the rows per table.
    Restore {
        /// The archive.
        file: std::path::PathBuf,
        /// The database to restore into (default: PALISADE_DATABASE_MIGRATION_URL or
        /// PALISADE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
        /// Where the stored files go (default: PALISADE_STORAGE_DIR).
        #[arg(long)]
        storage_dir: Option<std::path::PathBuf>,
        /// Replace the contents of a database or storage directory that is not empty.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send one test mail through the configured transport now (not through the outbox) and
    /// print the SMTP server's answer, or the path of the `.eml` file without SMTP.
    Test {
        /// The recipient.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a platform super admin. The password is read from a prompt, or from the first line
    /// of standard input when it is not a terminal — never from an argument.
    CreateSuperAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Super Admin")]
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: std::net::SocketAddr,
    /// Progress sent → delivered → read statuses by themselves (`on`) or only on request (`off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub auto_status: String,
    /// Probability (0–1) that a webhook POST is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Probability (0–1) that webhook changes are batched into one POST.
    #[arg(long, default_value_t = 0.1)]
    pub batch_rate: f64,
    /// Accept free-form sends outside the 24-hour window, then fail them with 131047.
    #[arg(long)]
    pub accept_then_fail: bool,
    /// Messages per second per number before 130429.
    #[arg(long, default_value_t = 80)]
    pub throughput: u32,
    /// Seed for the simulator's random choices (repeatable runs).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Milliseconds before a submitted template is approved (with its status webhook).
    #[arg(long, default_value_t = 1000)]
    pub template_review_delay_ms: u64,
    /// Approve submitted templates by themselves (`on`) or leave them `PENDING` until
    /// `POST /_sim/templates/{id}/status` decides (`off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub template_auto_approve: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit log's hash chains; report every edited, deleted, inserted or
    /// reordered record and exit non-zero if there is one.
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh production key set (signing and encryption rings).
    Generate,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sim(args) => run_sim(args).await,
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            println!(
                "PALISADE_SIGNING_KEYS={}",
                palisade_core::crypto::generate_ring_text()
            );
            println!(
                "PALISADE_ENCRYPTION_KEYS={}",
                palisade_core::crypto::generate_ring_text()
            );
            Ok(())
        }
        Command::CheckConfig => {
            let config = Config::load()?;
            print!("{}", config.redacted());
            match config.raw.geoip_db.as_deref().filter(|p| !p.as_os_str().is_empty()) {
                Some(_) => println!(
                    "# geographic detection rules (impossible_travel, new_country): on (PALISADE_GEOIP_DB)"
                ),
                None => println!(
                    "# geographic detection rules (impossible_travel, new_country): off (PALISADE_GEOIP_DB is not set)"
                ),
            }
            let refusals = crate::app::production_refusals(&config);
            let keys = crate::app::load_keys_checked(&config);
            let mut problems = refusals;
            if let Err(e) = keys {
                problems.push(e.0);
            }
            let scheduled = crate::config::backup_plan(&config.raw)
                .ok()
                .flatten()
                .is_some();
            if scheduled && !config.database_url.starts_with("sqlite:") {
                if let Err(e) = palisade_core::backup::PgTools::find() {
                    problems.push(format!("PALISADE_BACKUP_DIR: {e}"));
                }
            }
            if problems.is_empty() {
                println!("# configuration OK");
                Ok(())
            } else {
                anyhow::bail!("configuration problems:\n  - {}", problems.join("\n  - "))
            }
        }
        Command::Migrate => {
            let config = Config::load()?;
            if config.database_url.starts_with("sqlite:") {
                crate::config::ensure_dir(&config.raw.data_dir)?;
            }
            Store::migrate(&database_settings(&config)).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let config = Config::load()?;
            let app = Application::build(&config).await?;
            let addr = app.local_addr()?;
            tracing::info!(url = %format!("http://{addr}"), "Palisade is listening on http://{addr}");
            if let Some(addr) = app.metrics_addr() {
                tracing::info!(url = %format!("http://{addr}/metrics"), "metrics are served on http://{addr}/metrics");
            }
            app.run_until(shutdown_signal()).await
        }
        Command::Admin {
            command: AdminCommand::CreateSuperAdmin { email, name },
        } => {
            let config = Config::load()?;
            create_super_admin(&config, &email, &name).await
        }
        Command::Audit {
            command: AuditCommand::Verify { tenant },
        } => verify_audit(tenant).await,
        Command::Mail {
            command: MailCommand::Test { to },
        } => mail_test(&to).await,
        Command::Backup { command } => crate::backup_cli::run(command).await,
    }
}

async fn mail_test(to: &str) -> anyhow::Result<()> {
    use palisade_core::mail::{Delivered, Mail};
    let config = Config::load()?;
    let to = EmailAddress::parse("to", to)
        .map_err(|_| anyhow::anyhow!("--to {to:?} is not an email address"))?;
    let mailer = crate::app::mailer(&config)?;
    let mail = Mail::compose("test", to.as_str(), "Palisade test mail")
        .paragraph("This is a test mail from `palisade mail test`: mail delivery works.")
        .paragraph("Nothing to do; you can delete it.");
    let id = palisade_domain::MailId::new();
    let message = mailer
        .message(
            id,
            to.as_str(),
            &mail.content,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match mailer.send(id, &message).await {
        Ok(Delivered::Smtp { code, message }) => {
            println!("sent through {}: {code} {message}", mailer.describe());
            Ok(())
        }
        Ok(Delivered::File(path)) => {
            println!(
                "no PALISADE_SMTP_URL: the mail was written to {}",
                path.display()
            );
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "the mail was not sent through {} ({}): {}",
            mailer.describe(),
            if e.permanent {
                "refused"
            } else {
                "temporary failure"
            },
            e.message
        ),
    }
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    for (name, rate) in [
        ("--duplicate-rate", args.duplicate_rate),
        ("--batch-rate", args.batch_rate),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "{name} must be between 0 and 1"
        );
    }
    let config = palisade_wa_sim::SimConfig {
        listen: args.listen,
        auto_status: args.auto_status == "on",
        duplicate_rate: args.duplicate_rate,
        batch_rate: args.batch_rate,
        accept_then_fail: args.accept_then_fail,
        throughput_per_second: args.throughput,
        seed: args.seed,
        template_review_delay_ms: args.template_review_delay_ms,
        template_auto_approve: args.template_auto_approve == "on",
        ..palisade_wa_sim::SimConfig::default()
    };
    let sim = palisade_wa_sim::build(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(
        url = %sim.base_url(),
        "WhatsApp Cloud API simulator on {} (control API under /_sim)",
        sim.base_url()
    );
    Ok(sim.run_until(shutdown_signal()).await?)
}

async fn verify_audit(tenant: Option<uuid::Uuid>) -> anyhow::Result<()> {
    let config = Config::load()?;
    let db = database_settings(&config);
    Store::migrate(&db).await?;
    let store = Store::connect(&db).await?;
    let reports =
        palisade_core::audit::log::verify(&store, tenant.map(palisade_domain::TenantId::from))
            .await?;
    store.close().await;
    let mut bad = 0usize;
    for r in &reports {
        let name = if r.chain_id.is_nil() {
            "platform".to_owned()
        } else {
            format!("chain {}", r.chain_id)
        };
        if r.problems.is_empty() {
            println!("{name}: {} records, intact", r.records);
        } else {
            bad += r.problems.len();
            println!(
                "{name}: {} records, {} problem(s)",
                r.records,
                r.problems.len()
            );
            for p in &r.problems {
                println!("  - {p}");
            }
        }
    }
    if reports.is_empty() {
        println!("no audit records");
    }
    anyhow::ensure!(
        bad == 0,
        "the audit log has been tampered with ({bad} problem(s))"
    );
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == again, "the passwords do not match");
        Ok(first)
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn create_super_admin(config: &Config, email: &str, name: &str) -> anyhow::Result<()> {
    let email = EmailAddress::parse("email", email)?;
    let name = PersonName::parse("name", name)?;
    let password = read_password()?;
    let ctx = PasswordContext {
        email: email.as_str(),
        name: name.as_str(),
        tenant_name: "",
    };
    check_rules(
        &PasswordPolicyPreset::Modern.policy(),
        "password",
        &password,
        &ctx,
    )
    .map_err(|e| match e {
        palisade_core::AppError::Validation { fields, .. } => anyhow::anyhow!(
            "the password is not acceptable: {}",
            fields
                .values()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    let s = settings(config);
    let keys = crate::app::load_keys(config)?;
    let hash = PasswordHasher::new(s.password_hash_concurrency, 1)
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.database_url.starts_with("sqlite:") {
        crate::config::ensure_dir(&config.raw.data_dir)?;
    }
    let db = database_settings(config);
    Store::migrate(&db).await?;
    let store = Store::connect(&db).await?;
    let services = palisade_core::Services::new(
        store.clone(),
        std::sync::Arc::new(palisade_core::SystemClock),
        s,
        keys,
    );
    let now = time::OffsetDateTime::now_utc();
    let user = users::User::new_super_admin(email.as_str(), name.as_str(), hash, now);
    let mut tx = store
        .begin(SystemScope::new("cli.create_super_admin"))
        .await?;
    users::insert(&mut tx, &user).await.map_err(|e| {
        if e.is_unique_violation_on("users", "email") {
            anyhow::anyhow!("a user with email {} already exists", email.as_str())
        } else {
            anyhow::anyhow!(e)
        }
    })?;
    let entry = audit::AuditEntry {
        action: "platform.super_admin.created".into(),
        actor_role: Some("cli".into()),
        target_type: Some("user".into()),
        target_id: Some(user.id.to_string()),
        metadata: serde_json::json!({ "email": user.email }),
        ..audit::AuditEntry::default()
    };
    let record = audit::append(&mut tx, &entry, now).await?;
    // No server runs the detection rules here: the alert is written with the record (listed by
    // `GET /api/v1/security/alerts`), and its mail to `PALISADE_SECURITY_ALERT_EMAIL` and its
    // delivery to `PALISADE_SECURITY_ALERT_WEBHOOK` are queued in the same transaction. The
    // webhook is tried once before the command returns; if the receiver does not take it, a
    // running server's worker retries it (as its mail worker sends the mail).
    let alert = palisade_store::security_alerts::NewAlert {
        tenant_id: None,
        rule: palisade_domain::AlertRule::PrivilegeEscalation,
        severity: palisade_domain::AlertSeverity::Critical,
        subject_type: "user".into(),
        subject_id: user.id.to_string(),
        subject_label: Some(user.email.clone()),
        summary: "A super admin was created (command line)".into(),
        evidence: vec![record],
    };
    let raised = palisade_store::security_alerts::raise(&mut tx, &alert, now).await?;
    let mut hook_queued = false;
    if raised.opened {
        palisade_core::detections::platform_mail_in(&services, &mut tx, &raised.alert)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hook_queued =
            palisade_core::detections::platform_webhook_in(&services, &mut tx, &raised.alert, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    tx.commit().await?;
    if hook_queued {
        let tried = palisade_core::detections::webhook_outbox::deliver_due(&services).await;
        let mut tx = store
            .begin(SystemScope::new("cli.create_super_admin"))
            .await?;
        let pending =
            palisade_store::alert_webhook_outbox::is_pending(&mut tx, raised.alert.id).await?;
        tx.commit().await?;
        if tried.is_err() || pending {
            eprintln!(
                "warning: PALISADE_SECURITY_ALERT_WEBHOOK did not accept the alert yet (see the log); a running server retries it"
            );
        }
    }
    store.close().await;
    println!("created super admin {} ({})", user.email, user.id);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
