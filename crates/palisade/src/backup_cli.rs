//! `palisade backup create | verify | restore`: the operator's side of `core::backup`.

use crate::app::{backup_context, database_settings, settings};
use crate::cli::BackupCommand;
use crate::config::{ensure_dir, Config};
use palisade_core::backup::{self, RestoreTarget};
use palisade_store::Store;
use std::path::Path;

pub async fn run(command: BackupCommand) -> anyhow::Result<()> {
    let config = Config::load()?;
    match command {
        BackupCommand::Create {
            output,
            unencrypted,
        } => create(&config, output, unencrypted).await,
        BackupCommand::Verify { file } => verify(&config, &file).await,
        BackupCommand::Restore {
            file,
            database_url,
            storage_dir,
            force,
        } => {
            let ctx = backup_context(&config, "cli")?;
            let target = RestoreTarget {
                database_url: database_url
                    .filter(|u| !u.trim().is_empty())
                    .unwrap_or_else(|| {
                        ctx.database
                            .migration_url
                            .clone()
                            .unwrap_or_else(|| ctx.database.url.clone())
                    }),
                storage_dir: storage_dir.unwrap_or_else(|| settings(&config).storage_dir),
                force,
            };
            let report = backup::restore(&ctx, &file, &target, now()).await?;
            println!(
                "restored {} (taken {}, {} database at migration {}) and {} stored file(s)",
                file.display(),
                report.manifest.created_at,
                report.manifest.database,
                report.manifest.migration_level,
                report.storage_files
            );
            print_tables(&report.inventory);
            Ok(())
        }
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The server's database, migrated (as every CLI command that writes does), for the audit
/// record of the operation.
async fn live_store(config: &Config) -> anyhow::Result<Store> {
    if config.database_url.starts_with("sqlite:") {
        ensure_dir(&config.raw.data_dir)?;
    }
    let db = database_settings(config);
    Store::migrate(&db).await?;
    Ok(Store::connect(&db).await?)
}

async fn create(
    config: &Config,
    output: Option<std::path::PathBuf>,
    unencrypted: bool,
) -> anyhow::Result<()> {
    let ctx = backup_context(config, "cli")?;
    let at = now();
    if ctx.encryption.is_none() && !unencrypted {
        // Refused before anything is read or written.
        anyhow::bail!(
            "refusing to write an unencrypted backup: set PALISADE_BACKUP_RECIPIENTS (age public keys) or PALISADE_BACKUP_PASSPHRASE, or pass --unencrypted"
        );
    }
    let out = output.unwrap_or_else(|| {
        let dir = config
            .raw
            .backup_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| ".".into());
        dir.join(backup::archive_name(at, !ctx.encryption.is_none()))
    });
    let store = live_store(config).await?;
    let created = backup::create(&ctx, &store, &out, unencrypted, at).await;
    let result = match created {
        Ok(manifest) => {
            let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            backup::record(
                &store,
                ctx.actor,
                "platform.backup.created",
                serde_json::json!({
                    "file": backup::file_name(&out), "bytes": bytes, "database": manifest.database,
                    "migration_level": manifest.migration_level, "parts": manifest.parts.len(),
                    "encrypted": !ctx.encryption.is_none(),
                }),
                now(),
            )
            .await?;
            println!(
                "wrote {} ({bytes} bytes; {} database at migration {}, {} stored file(s); encryption: {})",
                out.display(),
                manifest.database,
                manifest.migration_level,
                manifest.parts.len().saturating_sub(1),
                backup::describe_encryption(&ctx.encryption)
            );
            Ok(())
        }
        Err(e) => {
            let _ = backup::record(
                &store,
                ctx.actor,
                "platform.backup.failed",
                serde_json::json!({ "stage": "create", "error": e.0 }),
                now(),
            )
            .await;
            Err(anyhow::anyhow!(e))
        }
    };
    store.close().await;
    result
}

async fn verify(config: &Config, file: &Path) -> anyhow::Result<()> {
    let ctx = backup_context(config, "cli")?;
    let outcome = backup::verify(&ctx, file).await;
    let problems: Vec<String> = match &outcome {
        Ok(report) => {
            let m = &report.manifest;
            println!(
                "{}: {} backup taken {} by Palisade {}, migration {}, {}",
                file.display(),
                m.database,
                m.created_at,
                m.palisade_version,
                m.migration_level,
                if report.encrypted {
                    "encrypted"
                } else {
                    "NOT encrypted"
                }
            );
            println!(
                "{} part(s) checked against the manifest ({} stored file(s))",
                m.parts.len(),
                report.storage_files
            );
            print_tables(&report.inventory);
            for c in &report.chains {
                let name = if c.chain_id.is_nil() {
                    "platform".to_owned()
                } else {
                    format!("chain {}", c.chain_id)
                };
                println!(
                    "audit {name}: {} records, {}",
                    c.records,
                    if c.problems.is_empty() {
                        "intact".to_owned()
                    } else {
                        format!("{} problem(s)", c.problems.len())
                    }
                );
            }
            report.problems.clone()
        }
        Err(e) => vec![e.0.clone()],
    };
    // The verification is recorded in the server's own database.
    match live_store(config).await {
        Ok(store) => {
            let recorded = backup::record(
                &store,
                ctx.actor,
                "platform.backup.verified",
                serde_json::json!({
                    "file": backup::file_name(file), "ok": problems.is_empty(), "problems": problems,
                }),
                now(),
            )
            .await;
            store.close().await;
            if let Err(e) = recorded {
                eprintln!("warning: the verification was not recorded in the audit log: {e}");
            }
        }
        Err(e) => eprintln!("warning: the verification was not recorded in the audit log: {e}"),
    }
    if problems.is_empty() {
        println!("backup OK");
        Ok(())
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        anyhow::bail!("the backup does not verify: {}", problems.join("; "))
    }
}

fn print_tables(inv: &palisade_store::backup::Inventory) {
    println!("migration level {}", inv.migration_level);
    for (table, rows) in &inv.tables {
        println!("  {table:<32} {rows:>10}");
    }
    println!("  {:<32} {:>10}", "total", inv.rows());
}
