//! The `switchboard` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::Config;
use switchboard::server::{self, ChannelRouter, Credentials};

/// Supervised, typed WebSocket messaging.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a hub: Phoenix endpoint, /health and /metrics.
    Serve {
        /// TOML or JSON config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding `server.listen`.
        #[arg(long)]
        listen: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
    }
}

fn load_config(path: Option<PathBuf>, listen: Option<String>) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => Config::load(&path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
        config.validate().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

fn serve(path: Option<PathBuf>, listen: Option<String>) -> ExitCode {
    let loaded = load_config(path, listen).and_then(|config| {
        let credentials = Credentials::from_config(&config.auth).map_err(|e| e.to_string())?;
        Ok((config, credentials))
    });
    let (config, credentials) = match loaded {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("switchboard: invalid configuration: {message}");
            return ExitCode::from(2);
        }
    };
    let outcome = actix_web::rt::System::new().block_on(async move {
        let hub = server::start_with(&config, ChannelRouter::rooms(), credentials)
            .map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::json!({"listening": hub.addr().to_string(), "socket": hub.socket_url()})
        );
        wait_for_signal().await.map_err(|e| e.to_string())?;
        tracing::info!("signal received: draining");
        hub.shutdown().await;
        Ok::<(), String>(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::from(1)
        }
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
