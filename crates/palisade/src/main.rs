use clap::Parser;
use palisade::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = if matches!(cli.command, Command::Keys { .. }) {
        None
    } else {
        let json = palisade::telemetry::json_logs();
        // Traces are for the server only. Its configuration is read here too, before logging
        // starts; a configuration that does not load is reported by `serve` itself.
        let otlp = match cli.command {
            Command::Serve => palisade::Config::load().ok().and_then(|c| c.otlp),
            _ => None,
        };
        match palisade::telemetry::init(json, otlp.as_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    };
    let outcome = palisade::cli::run(cli).await;
    // After `serve` has drained: the last requests' spans are flushed to the collector.
    if let Some(t) = telemetry {
        t.shutdown().await;
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
