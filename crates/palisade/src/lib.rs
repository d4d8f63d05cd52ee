//! The Palisade server: configuration, wiring and the command line.

pub mod app;
mod backup_cli;
pub mod cli;
pub mod config;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
