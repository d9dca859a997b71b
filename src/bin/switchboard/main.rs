//! The `switchboard` command line: a thin layer over the library.

mod client_args;
mod publish;
// The library's own error wording, compiled into the binary too (it is
// crate-private there, and the binary needs the same words).
#[path = "../../report.rs"]
mod report;
mod send;
mod tail;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use switchboard::config::{Config, SinkType};
use switchboard::server::HubService;

use crate::publish::PublishOptions;
use crate::report::with_sources;
use crate::send::SendOptions;
use crate::tail::TailOptions;

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
        /// HTTP worker threads, overriding `server.workers` (default: one
        /// per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Where ingested data goes, overriding `sink.type`.
        #[arg(long, value_enum)]
        sink: Option<SinkArg>,
        /// NATS server URL, overriding `sink.url`.
        #[arg(long)]
        nats_url: Option<String>,
        /// Serve the dashboard at /dashboard (unless `server.dashboard`
        /// names another path).
        #[arg(long)]
        dashboard: bool,
    },
    /// Connect, join topics, print every push and connect event; reconnect
    /// until stopped (exit 2 at once when no dial can succeed as given).
    Tail(TailOptions),
    /// Send N data envelopes to an ingest endpoint, wait for every ack, print a JSON summary.
    Publish(PublishOptions),
    /// Join a topic, push one event, print the reply: exit 0 ok, 1 error, 2 timeout or no connection.
    Send(SendOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The client commands print results on stdout; keep their logs to warnings.
    let level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        // Colours on a terminal only: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve {
            config,
            listen,
            workers,
            sink,
            nats_url,
            dashboard,
        } => serve(
            config,
            Overrides {
                listen,
                workers,
                sink,
                nats_url,
                dashboard,
            },
        ),
        Command::Tail(options) => tail(options),
        Command::Publish(options) => publish(options),
        Command::Send(options) => send(options),
    }
}

fn tail(options: TailOptions) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(async move {
        tokio::select! {
            tailed = tail::tail(options, std::io::stdout()) => tailed,
            signal = wait_for_signal() => signal.map_err(tail::TailError::Output),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn publish(options: PublishOptions) -> ExitCode {
    match actix_web::rt::System::new().block_on(publish::publish(options)) {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            ExitCode::from(summary.exit_code())
        }
        Err(error) => {
            eprintln!("switchboard: no connection: {error}");
            ExitCode::from(2)
        }
    }
}

fn send(options: SendOptions) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(send::send(options));
    println!("{}", outcome.to_json());
    ExitCode::from(outcome.exit_code())
}

/// `--sink`: the config file's spelling of [`SinkType`] (`in-process` is
/// taken too).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SinkArg {
    /// In the hub's own process.
    #[value(name = "in_process", alias = "in-process")]
    InProcess,
    /// NATS core publish.
    Nats,
    /// NATS JetStream.
    Jetstream,
}

impl From<SinkArg> for SinkType {
    fn from(arg: SinkArg) -> SinkType {
        match arg {
            SinkArg::InProcess => SinkType::InProcess,
            SinkArg::Nats => SinkType::Nats,
            SinkArg::Jetstream => SinkType::Jetstream,
        }
    }
}

/// Command-line values that override the config file.
struct Overrides {
    listen: Option<String>,
    workers: Option<usize>,
    sink: Option<SinkArg>,
    nats_url: Option<String>,
    dashboard: bool,
}

/// Where `serve --dashboard` puts the dashboard when the config names none.
const DASHBOARD_PATH: &str = "/dashboard";

fn load_config(path: Option<PathBuf>, overrides: Overrides) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => Config::load(&path).map_err(|e| with_sources(&e))?,
        None => Config::default(),
    };
    if let Some(listen) = overrides.listen {
        config.server.listen = listen;
    }
    if let Some(workers) = overrides.workers {
        config.server.workers = Some(workers);
    }
    if let Some(sink) = overrides.sink {
        config.sink.kind = sink.into();
    }
    if let Some(url) = overrides.nats_url {
        config.sink.url = url;
    }
    if overrides.dashboard && config.server.dashboard.is_none() {
        config.server.dashboard = Some(DASHBOARD_PATH.to_owned());
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn serve(path: Option<PathBuf>, overrides: Overrides) -> ExitCode {
    let config = match load_config(path, overrides) {
        Ok(config) => config,
        Err(message) => return invalid(&message),
    };
    // Secrets and the snapshot file are checked before anything connects.
    if let Err(error) = HubService::builder(&config).check() {
        return invalid(&with_sources(&error));
    }
    switchboard::install_prometheus_recorder();
    let outcome = actix_web::rt::System::new().block_on(async move {
        let sink = switchboard::sink::from_config(&config.sink)
            .await
            .map_err(|e| {
                format!(
                    "sink {:?} at {}: {}",
                    config.sink.kind,
                    config.sink.url,
                    with_sources(&e)
                )
            })?;
        let hub = HubService::builder(&config)
            .sink(sink)
            .start()
            .map_err(|e| with_sources(&e))?;
        let mut started =
            serde_json::json!({"listening": hub.addr().to_string(), "socket": hub.socket_url()});
        if let Some(path) = &config.server.dashboard {
            // Where to open it: the socket's scheme and address, over HTTP.
            let scheme = if hub.socket_url().starts_with("wss:") {
                "https"
            } else {
                "http"
            };
            let path = format!("/{}", path.trim_matches('/'));
            started["dashboard"] = format!("{scheme}://{}{path}", hub.addr()).into();
        }
        println!("{started}");
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

/// Exit 2: the configuration cannot make a hub.
fn invalid(message: &str) -> ExitCode {
    eprintln!("switchboard: invalid configuration: {message}");
    ExitCode::from(2)
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
