//! Running a hub as a server of its own (what `switchboard serve` does).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};

use super::auth::Credentials;
use super::channel::ChannelRouter;
use super::service::HubService;
use crate::config::Config;

/// How long a shutdown waits for drained sockets to go before stopping anyway.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A secret named in the config is missing.
    #[error(transparent)]
    Secret(#[from] super::auth::MissingSecret),
    /// The listen address could not be bound.
    #[error("cannot listen on {listen}: {source}")]
    Bind {
        /// The configured address.
        listen: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A hub serving on its own HTTP server.
pub struct RunningHub {
    service: HubService,
    addr: SocketAddr,
    handle: ServerHandle,
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// Starts a hub on `config.server.listen` (port 0 picks a free port).
/// Call inside a running actix system.
pub fn start(config: &Config, router: ChannelRouter) -> Result<RunningHub, StartError> {
    let service = HubService::new(config, router)?;
    start_service(config, service)
}

/// Starts a hub whose credentials the application supplies.
pub fn start_with(
    config: &Config,
    router: ChannelRouter,
    credentials: Credentials,
) -> Result<RunningHub, StartError> {
    start_service(
        config,
        HubService::with_credentials(config, router, credentials),
    )
}

/// Runs an already built hub (custom sink, credentials) on its own server.
/// Call inside a running actix system.
pub fn start_service(config: &Config, service: HubService) -> Result<RunningHub, StartError> {
    let listen = config.server.listen.clone();
    let app_service = service.clone();
    let server = HttpServer::new(move || App::new().configure(|cfg| app_service.configure(cfg)))
        .disable_signals()
        .shutdown_timeout(2)
        .bind(&listen)
        .map_err(|source| StartError::Bind {
            listen: listen.clone(),
            source,
        })?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Bind {
            listen: listen.clone(),
            source: std::io::Error::other("no address bound"),
        })?;
    let server = server.run();
    let handle = server.handle();
    tracing::info!(%addr, path = %config.server.path, "hub listening");
    Ok(RunningHub {
        service,
        addr,
        handle,
        server: actix_web::rt::spawn(server),
    })
}

impl RunningHub {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, for broadcasting and reading counters.
    pub fn service(&self) -> &HubService {
        &self.service
    }

    /// `ws://addr/path?vsn=2.0.0`, the URL phoenix.js connects to (it adds `vsn` itself).
    pub fn socket_url(&self) -> String {
        format!("ws://{}{}", self.addr, self.service.config().path)
    }

    /// Graceful stop: refuse new sockets, close open ones with 1012 in
    /// batches, wait (bounded) for them to go, then stop the HTTP server.
    pub async fn shutdown(self) {
        if let Some(report) = self.service.drain_all(DRAIN_WAIT).await {
            tracing::info!(
                delivered = report.delivered,
                undelivered = report.undelivered,
                "ingest queue drained"
            );
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        while self.service.registry().connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.service.registry().connections();
        if left > 0 {
            tracing::warn!(left, "sockets still open after the drain; stopping anyway");
        }
        self.handle.stop(true).await;
        let _ = self.server.await;
    }

    /// Abrupt stop: the HTTP server stops at once, sockets drop without a close frame.
    pub async fn kill(self) {
        self.handle.stop(false).await;
        let _ = self.server.await;
    }
}
