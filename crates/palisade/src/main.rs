use clap::Parser;
use palisade::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn init_tracing(production: bool) {
    let filter = EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("PALISADE_LOG_FORMAT").map_or(production, |f| f == "json");
    // Colours only for a person at a terminal: a pipe (a log shipper, a file) gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let production = std::env::var("PALISADE_ENV").is_ok_and(|e| e == "production");
    if !matches!(cli.command, Command::Keys { .. }) {
        init_tracing(production);
    }
    match palisade::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
